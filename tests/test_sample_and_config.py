"""Sample files, strict YAML configs, the synthetic dataset and its commands."""

import dataclasses
import json

import matplotlib.image
import numpy as np
import pytest

from mapdistill_core.cli import main
from mapdistill_core.config import load_config
from mapdistill_core.data.sample import Sample, load_sample, save_sample
from mapdistill_core.data.synthetic.config import SyntheticConfig
from mapdistill_core.data.synthetic.dataset import SyntheticDataset
from mapdistill_core.data.synthetic.generate import generate_split
from mapdistill_core.errors import ConfigError, SampleFileError
from mapdistill_core.map_elements import MapElement

TINY = SyntheticConfig(image_height=32, image_width=88, lidar_azimuth_steps=180, samples_per_scene=2)


def make_sample() -> Sample:
    rng = np.random.default_rng(0)
    return Sample(
        images=rng.integers(0, 255, (6, 8, 12, 3), dtype=np.uint8),
        intrinsics=np.tile(np.eye(3, dtype=np.float32), (6, 1, 1)),
        cam_to_ego=np.tile(np.eye(4, dtype=np.float32), (6, 1, 1)),
        lidar=rng.normal(size=(10, 4)).astype(np.float32),
        ego_to_world=np.eye(4),
        ground_truth=(MapElement(0, np.zeros((3, 2))), MapElement(1, np.ones((5, 2)))),
        timestamp_ns=123,
        scene="s",
        token="s-000",
    )


def test_sample_round_trip(tmp_path):
    original = make_sample()
    save_sample(original, tmp_path / "x.npz")
    loaded = load_sample(tmp_path / "x.npz")
    for name in ("images", "intrinsics", "cam_to_ego", "lidar", "ego_to_world"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(original, name))
    assert [e.class_id for e in loaded.ground_truth] == [0, 1]
    np.testing.assert_array_equal(loaded.ground_truth[1].points, original.ground_truth[1].points)
    assert (loaded.timestamp_ns, loaded.scene, loaded.token) == (123, "s", "s-000")
    empty = dataclasses.replace(make_sample(), ground_truth=())
    save_sample(empty, tmp_path / "e.npz")
    assert load_sample(tmp_path / "e.npz").ground_truth == ()


def test_a_sample_is_frozen_and_checked_when_made():
    sample = make_sample()
    with pytest.raises(dataclasses.FrozenInstanceError):
        sample.token = "other"
    with pytest.raises(ValueError, match=r"field 'intrinsics' is float64 \[6, 3, 3\], expected float32 \[6, 3, 3\]"):
        dataclasses.replace(sample, intrinsics=sample.intrinsics.astype(np.float64))
    with pytest.raises(ValueError, match=r"field 'lidar' is list, expected float32 \[\*, 4\]"):
        dataclasses.replace(sample, lidar=[])
    with pytest.raises(ValueError, match="field 'ground_truth' must hold MapElements"):
        dataclasses.replace(sample, ground_truth=[(0, np.zeros((3, 2)))])
    live = Sample(sample.images, sample.intrinsics, sample.cam_to_ego)  # as the online pipeline makes them
    assert live.lidar.shape == (0, 4) and live.ego_to_world is None and live.ground_truth == ()
    with pytest.raises(ValueError, match="without ego_to_world cannot be saved"):
        save_sample(live, "unused.npz")


def test_bad_sample_files(tmp_path):
    save_sample(make_sample(), tmp_path / "x.npz")
    data = (tmp_path / "x.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(SampleFileError, match="cut.npz: not a readable sample file"):
        load_sample(tmp_path / "cut.npz")
    with pytest.raises(SampleFileError, match="no such file"):
        load_sample(tmp_path / "none.npz")
    arrays = dict(np.load(tmp_path / "x.npz"))
    np.savez(tmp_path / "shape.npz", **{**arrays, "intrinsics": np.zeros((5, 3, 3), np.float32)})
    with pytest.raises(
        SampleFileError, match=r"field 'intrinsics' is float32 \[5, 3, 3\], expected float32 \[6, 3, 3\]"
    ):
        load_sample(tmp_path / "shape.npz")
    del arrays["token"]
    np.savez(tmp_path / "missing.npz", **arrays)
    with pytest.raises(SampleFileError, match="missing field 'token'"):
        load_sample(tmp_path / "missing.npz")
    np.savez(tmp_path / "pickle.npz", images=np.array([object()], dtype=object))
    with pytest.raises(SampleFileError):
        load_sample(tmp_path / "pickle.npz")


def test_config_errors_name_the_file_and_key(tmp_path):
    path = tmp_path / "world.yaml"
    path.write_text("image_height: 64\nimage_widht: 100\n")
    with pytest.raises(ConfigError, match=r"world.yaml: unknown key 'image_widht'"):
        load_config(SyntheticConfig, path)
    path.write_text("image_height: tall\n")
    with pytest.raises(ConfigError, match=r"world.yaml.image_height: expected int, got 'tall'"):
        load_config(SyntheticConfig, path)
    path.write_text("curb_height_range: [0.1]\n")
    with pytest.raises(ConfigError, match=r"curb_height_range: expected 2 items"):
        load_config(SyntheticConfig, path)
    path.write_text("conditions: {noon: 1.0}\n")
    with pytest.raises(ConfigError, match=r"world.yaml: conditions must weight"):
        load_config(SyntheticConfig, path)
    path.write_text("image_height: [1\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(SyntheticConfig, path)
    path.write_text("lidar_range_m: 50\nscenes: {train: 3}\n")
    config = load_config(SyntheticConfig, path)
    assert config.lidar_range_m == 50.0 and isinstance(config.lidar_range_m, float) and config.scenes == {"train": 3}


def test_shipped_config_loads():
    assert load_config(SyntheticConfig, "config/synthetic.yaml") == SyntheticConfig()


def test_generated_folder_matches_on_the_fly(tmp_path):
    generate_split(TINY, "val", tmp_path / "val", scenes=2)
    on_disk = SyntheticDataset(None, "val", root=tmp_path / "val")
    live = SyntheticDataset(TINY, "val", scenes=2)
    assert len(on_disk) == len(live) == 4
    for i in (0, 3):
        a, b = on_disk[i], live[i]
        assert a.token == b.token
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.lidar, b.lidar)
    index = json.loads((tmp_path / "val" / "index.json").read_text())
    assert index["split"] == "val" and index["scenes"] == 2 and "git_revision" in index["meta"]
    with pytest.raises(SampleFileError, match="holds split 'val', not 'train'"):
        SyntheticDataset(None, "train", root=tmp_path / "val")
    with pytest.raises(SampleFileError, match="index.json: no such file"):
        SyntheticDataset(None, "val", root=tmp_path)


def test_generate_with_workers_writes_the_same_samples_and_counts_each(tmp_path, capsys):
    generate_split(TINY, "val", tmp_path / "val", scenes=2, workers=2)
    assert "4/4" in capsys.readouterr().err
    live = SyntheticDataset(TINY, "val", scenes=2)
    on_disk = SyntheticDataset(None, "val", root=tmp_path / "val")
    for i in range(4):
        np.testing.assert_array_equal(on_disk[i].images, live[i].images)


def test_generate_and_show_sample_commands(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text("image_height: 32\nimage_width: 88\nlidar_azimuth_steps: 180\nsamples_per_scene: 2\n")
    assert (
        main(["generate", "--config", str(config), "--split", "test", "--scenes", "1", "--out", str(tmp_path / "data")])
        == 0
    )
    assert "wrote 2 samples of 1 scenes" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "data" / "synthetic-test-00000").iterdir()) == ["000.npz", "001.npz"]
    png = tmp_path / "sample.png"
    assert main(["show-sample", "--file", str(tmp_path / "data/synthetic-test-00000/001.npz"), "--out", str(png)]) == 0
    assert matplotlib.image.imread(png).shape[1] > 800
    assert main(["show-sample", "--config", str(config), "--split", "val", "--out", str(png)]) == 0
    other = tmp_path / "other.yaml"
    other.write_text("image_height: 40\nimage_width: 88\nlidar_azimuth_steps: 180\nsamples_per_scene: 2\n")
    index = (tmp_path / "data" / "index.json").read_text()
    args = ["generate", "--config", str(other), "--split", "test", "--scenes", "1", "--out", str(tmp_path / "data")]
    assert main(args) == 2
    assert "generated from another world config" in capsys.readouterr().err
    assert (tmp_path / "data" / "index.json").read_text() == index  # refused, not rewritten
    config.write_text("image_hieght: 32\n")
    assert main(["generate", "--config", str(config), "--split", "test", "--out", str(tmp_path / "x")]) == 2
    assert "unknown key 'image_hieght'" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["synthetic_student", "synthetic_teacher", "nuscenes_student", "nuscenes_teacher"])
def test_shipped_experiment_configs_load(name):
    from mapdistill_core.training.config import ExperimentConfig

    config = load_config(ExperimentConfig, f"config/{name}.yaml")
    assert config.model.kind == name.split("_")[1]
    assert (config.model.lidar is not None) == (config.model.kind == "teacher")


def test_atomic_output_keeps_the_old_file_when_writing_fails(tmp_path):
    from mapdistill_core.atomic import atomic_output

    target = tmp_path / "result.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash while writing")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]
    with atomic_output(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and list(tmp_path.iterdir()) == [target]
