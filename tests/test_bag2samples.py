"""Recorded drives as unlabelled training samples: ``mapdistill bag2samples`` gives back what the bag
recorded (images, calibration, rig, the scan in base_link) and no map, and training reads the folder
only as drives nobody annotated."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from mapdistill_core.checkpoint import save_model
from mapdistill_core.config import load_config
from mapdistill_core.data.batch import collate
from mapdistill_core.data.drive_folder import DriveFolder, drive_sample_path, read_drive_index
from mapdistill_core.data.sample import CAMERA_NAMES, save_sample
from mapdistill_core.errors import BagError, OptionError, SampleFileError
from mapdistill_core.models.model import build_model
from mapdistill_core.training.config import ExperimentConfig
from mapdistill_core.training.datasets import build_train_set
from mapdistill_core.training.trainer import Trainer
from mapdistill_ros.bags.bag2samples import bags_to_samples
from mapdistill_ros.bags.bag_writer import MapBagWriter
from mapdistill_ros.bags.synthetic2bag import LIDAR_TO_EGO, bag_samples, sample_frame, write_synthetic_bag
from mapdistill_ros.cli import main
from tests.model_fixtures import STUDENT, TEACHER, WORLD, experiment_yaml

SAMPLES = 3


@pytest.fixture(scope="module")
def recorded():
    return next(bag_samples(WORLD, "test", 1, SAMPLES))


@pytest.fixture(scope="module")
def drive_bag(tmp_path_factory):
    path = tmp_path_factory.mktemp("bags") / "drive-a"
    write_synthetic_bag(WORLD, "test", 1, path, samples=SAMPLES, image_format="png")
    return path


def write_bag(path, samples, skip=lambda sample, camera: False, lidar=True):
    """A drive bag of ``samples`` without the images ``skip`` names (and, unless ``lidar``, no scans)."""
    with MapBagWriter(path) as writer:
        rig = dict(zip(CAMERA_NAMES, samples[0].cam_to_ego, strict=True))
        writer.write_static(samples[0].timestamp_ns, {**rig, "LIDAR_TOP": LIDAR_TO_EGO})
        for i, sample in enumerate(samples):
            frame = sample_frame(sample, "png")
            cameras = [c for c in frame.cameras if not skip(i, c.name)]
            writer.write_frame(dataclasses.replace(frame, cameras=cameras, lidar=frame.lidar if lidar else None))


def test_a_drive_comes_back_as_recorded_without_its_map(drive_bag, recorded, tmp_path):
    (drive,) = bags_to_samples([drive_bag], tmp_path / "drives")
    assert (drive.name, drive.samples, sum(drive.dropped.values())) == ("drive-a", SAMPLES, 0)
    assert read_drive_index(tmp_path / "drives")["drives"] == [
        {"name": "drive-a", "samples": SAMPLES, "source": str(drive_bag.resolve())}
    ]
    folder = DriveFolder(tmp_path / "drives")
    assert len(folder) == SAMPLES
    for sample, original in zip(folder, recorded, strict=True):
        assert not sample.labeled and sample.ground_truth == () and sample.ego_to_world is None
        assert sample.timestamp_ns == original.timestamp_ns and sample.scene == "drive-a"
        np.testing.assert_array_equal(sample.images, original.images)  # PNG: lossless
        np.testing.assert_allclose(sample.intrinsics, original.intrinsics, rtol=1e-6)
        np.testing.assert_allclose(sample.cam_to_ego, original.cam_to_ego, atol=1e-6)
        np.testing.assert_allclose(sample.lidar, original.lidar, atol=1e-5)  # LIDAR_TOP -> base_link again
    with np.load(drive_sample_path(tmp_path / "drives", "drive-a", 0), allow_pickle=False) as data:
        assert not [name for name in data.files if name.startswith("vector_")] and "ego_to_world" not in data.files


def test_a_smaller_image_size_scales_the_intrinsics_with_the_images(drive_bag, recorded, tmp_path):
    height, width = WORLD.image_height // 2, WORLD.image_width // 2
    bags_to_samples([drive_bag], tmp_path / "drives", image_size=(height, width))
    sample = DriveFolder(tmp_path / "drives")[0]
    assert sample.images.shape == (6, height, width, 3)
    np.testing.assert_allclose(sample.intrinsics[:, :2], recorded[0].intrinsics[:, :2] / 2, rtol=1e-6)


def test_an_incomplete_capture_is_dropped_counted_and_logged(recorded, tmp_path, caplog):
    write_bag(tmp_path / "gap", recorded, skip=lambda i, camera: i == 1 and camera == "CAM_BACK")
    (drive,) = bags_to_samples([tmp_path / "gap"], tmp_path / "drives")
    assert drive.samples == SAMPLES - 1 and dict(drive.dropped) == {"too_few_cameras": 1}
    assert "dropped the capture at" in caplog.text and "CAM_BACK" in caplog.text
    stamps = [s.timestamp_ns for s in DriveFolder(tmp_path / "drives")]
    assert stamps == [recorded[0].timestamp_ns, recorded[2].timestamp_ns]


def test_drives_are_added_replaced_only_with_force_and_checked_before_any_work(drive_bag, recorded, tmp_path):
    out = tmp_path / "drives"
    write_bag(tmp_path / "drive-b", recorded[:2])
    bags_to_samples([drive_bag], out)
    bags_to_samples([tmp_path / "drive-b"], out)
    assert [d["name"] for d in read_drive_index(out)["drives"]] == ["drive-a", "drive-b"]
    assert len(DriveFolder(out)) == SAMPLES + 2
    with pytest.raises(OptionError, match="already holds the drive"):
        bags_to_samples([tmp_path / "drive-b"], out)
    write_bag(tmp_path / "other" / "drive-a", recorded[:1])
    bags_to_samples([tmp_path / "other" / "drive-a"], out, replace=True)
    assert [(d["name"], d["samples"]) for d in read_drive_index(out)["drives"]] == [("drive-b", 2), ("drive-a", 1)]
    assert sorted(p.name for p in (out / "drive-a").iterdir()) == ["000000.npz"]  # the old files are gone
    with pytest.raises(OptionError, match="two bags are named drive-a"):
        bags_to_samples([drive_bag, tmp_path / "other" / "drive-a"], tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_a_bag_without_lidar_or_a_camera_is_one_line(recorded, tmp_path, capsys):
    write_bag(tmp_path / "no_lidar", recorded, lidar=False)
    write_bag(tmp_path / "five", recorded, skip=lambda i, camera: camera == "CAM_FRONT_LEFT")
    assert main(["bag2samples", str(tmp_path / "no_lidar"), "--out", str(tmp_path / "d")]) == 2
    assert main(["bag2samples", str(tmp_path / "five"), "--out", str(tmp_path / "d")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    assert "no_lidar: no /LIDAR_TOP; the teacher labels a drive from its cameras and its LiDAR" in lines[0]
    assert "five: no image topic for CAM_FRONT_LEFT; a training sample needs all six cameras" in lines[1]
    with pytest.raises(BagError, match="not a readable rosbag2"):
        bags_to_samples([tmp_path / "absent"], tmp_path / "d")


def test_a_drive_folder_refuses_a_file_with_a_map(recorded, tmp_path, drive_bag):
    bags_to_samples([drive_bag], tmp_path / "drives")
    save_sample(recorded[0], drive_sample_path(tmp_path / "drives", "drive-a", 1))  # labelled
    folder = DriveFolder(tmp_path / "drives")
    assert not folder[0].labeled
    with pytest.raises(SampleFileError, match="000001.npz: carries a map"):
        folder[1]
    with pytest.raises(SampleFileError, match="index.json: no such file"):
        DriveFolder(tmp_path)
    index = tmp_path / "drives" / "index.json"
    index.write_text('{"kind": "mapdistill drives", "drives": [{"name": "drive-a", "samples": -1}]}')
    with pytest.raises(SampleFileError, match="index.json: field 'drives' must list"):
        DriveFolder(tmp_path / "drives")
    index.write_text('{"split": "train", "scenes": 1}')  # a synthetic split's index
    with pytest.raises(SampleFileError, match="not a drive folder's index"):
        DriveFolder(tmp_path / "drives")


def test_training_reads_the_drives_as_unlabelled_beside_the_labelled_split(drive_bag, tmp_path):
    bags_to_samples([drive_bag], tmp_path / "drives")
    path = experiment_yaml(tmp_path)
    text = path.read_text().replace("  val_scenes: 1", f"  val_scenes: 1\n  unlabeled_dir: {tmp_path / 'drives'}")
    path.write_text(text)
    with pytest.raises(Exception, match="unlabeled_dir needs a distill section"):
        load_config(ExperimentConfig, path)
    teacher_file = tmp_path / "teacher.safetensors"
    torch.manual_seed(0)
    save_model(teacher_file, build_model(TEACHER))
    path.write_text(text + f"distill: {{teacher: {teacher_file}, pseudo_threshold: 0.001}}\n")
    config = load_config(ExperimentConfig, path)
    train_set = build_train_set(config.data)
    assert [s.labeled for s in train_set] == [True] * 8 + [False] * SAMPLES
    batch = collate([train_set[0], train_set[8]], STUDENT.image_size, build_model(STUDENT).grid, 20)
    assert batch["labeled"].tolist() == [True, False] and batch["targets"][1] is None
    Trainer(config, tmp_path / "run", "cpu", max_steps=2, progress=False).run()
    assert (tmp_path / "run" / "last.safetensors").exists()
    both = text.replace("  unlabeled_dir:", "  unlabeled_scenes: 1\n  unlabeled_dir:")
    path.write_text(both + f"distill: {{teacher: {teacher_file}}}\n")
    with pytest.raises(Exception, match="data.unlabeled_dir .* goes without data.unlabeled_scenes"):
        load_config(ExperimentConfig, path)
