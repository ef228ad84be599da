"""nuscenes2bag on the tiny nuScenes dataset (real devkit), read back with rosbags' AnyReader."""

from __future__ import annotations

import numpy as np
import pytest

from mapdistill_core.data.drive_folder import DriveFolder
from mapdistill_core.data.nuscenes import NuScenesSource
from mapdistill_core.data.sample import CAMERA_NAMES
from mapdistill_ros import messages, topics
from mapdistill_ros.bags.bag2samples import bags_to_samples
from mapdistill_ros.bags.nuscenes2bag import write_nuscenes_bag
from mapdistill_ros.cli import main
from tests.nuscenes_fixture import SCENES, VERSION, build_nuscenes
from tests.test_bags import read_bag

SCENE_NAMES = [scene.name for scene in SCENES]
KEY_FRAMES = sum(scene.frames for scene in SCENES)


@pytest.fixture(scope="module")
def dataroot(tmp_path_factory):
    return build_nuscenes(tmp_path_factory.mktemp("nuscenes")).dataroot


@pytest.fixture(scope="module")
def samples(dataroot):
    source = NuScenesSource(dataroot, VERSION)
    return [source.sample(token) for name in SCENE_NAMES for token in source.sample_tokens(name)]


@pytest.fixture(scope="module", params=["mcap", "sqlite3"])
def key_frame_bag(request, dataroot, tmp_path_factory):
    path = tmp_path_factory.mktemp(request.param) / "bag"
    counts = write_nuscenes_bag(dataroot, VERSION, SCENE_NAMES, path, storage=request.param)
    return read_bag(path), counts


def test_key_frame_topics_and_counts(key_frame_bag):
    (bag, types), counts = key_frame_bag
    assert {t: len(v) for t, v in bag.items()} == counts
    for cam in CAMERA_NAMES:
        assert counts[topics.image_topic(cam)] == counts[topics.camera_info_topic(cam)] == KEY_FRAMES
        assert types[topics.image_topic(cam)] == "sensor_msgs/msg/CompressedImage"
    assert counts[topics.LIDAR] == counts[topics.GT_ELEMENTS] == counts[topics.GT_MARKERS] == KEY_FRAMES
    assert counts[topics.TF] == 7 * KEY_FRAMES  # one ego pose per sensor reading
    assert counts[topics.TF_STATIC] == len(SCENES)
    assert types[topics.GT_ELEMENTS] == "mapdistill_ros/msg/MapElementArray"


def test_images_are_the_original_jpeg_bytes_with_the_samples_intrinsics(key_frame_bag, dataroot, samples):
    (bag, _), _ = key_frame_bag
    source = NuScenesSource(dataroot, VERSION)
    for c, cam in enumerate(CAMERA_NAMES):
        for sample, (t, image), (_, info) in zip(
            samples, bag[topics.image_topic(cam)], bag[topics.camera_info_topic(cam)], strict=True
        ):
            record = source.nusc.get("sample_data", source.nusc.get("sample", sample.token)["data"][cam])
            assert image.data.tobytes() == (dataroot / record["filename"]).read_bytes()
            assert t == messages.stamp_ns(image.header.stamp) == record["timestamp"] * 1000
            assert image.header.frame_id == info.header.frame_id == cam
            np.testing.assert_allclose(info.k.reshape(3, 3), sample.intrinsics[c], rtol=1e-6)
            assert (info.height, info.width) == sample.images.shape[1:3]


def test_tf_chain_gives_the_samples_camera_extrinsics(key_frame_bag, samples):
    """base_link(lidar time) <- map <- base_link(camera time) <- camera, from /tf and /tf_static."""
    (bag, _), _ = key_frame_bag
    poses = {
        messages.stamp_ns(tf.header.stamp): messages.transform_matrix(tf.transform)
        for _, message in bag[topics.TF]
        for tf in message.transforms
    }
    _, static = bag[topics.TF_STATIC][0]
    sensors = {t.child_frame_id: messages.transform_matrix(t.transform) for t in static.transforms}
    assert set(sensors) == {*CAMERA_NAMES, topics.LIDAR_FRAME}
    sample = samples[0]
    lidar_pose = poses[sample.timestamp_ns]
    np.testing.assert_allclose(lidar_pose, sample.ego_to_world, atol=1e-9)
    for c, cam in enumerate(CAMERA_NAMES):
        (_, image) = bag[topics.image_topic(cam)][0]
        camera_pose = poses[messages.stamp_ns(image.header.stamp)]
        cam_to_ego = np.linalg.inv(lidar_pose) @ camera_pose @ sensors[cam]
        np.testing.assert_allclose(cam_to_ego, sample.cam_to_ego[c], atol=1e-5)


def test_lidar_in_its_own_frame_and_ground_truth_equal_to_the_loaders(key_frame_bag, samples):
    (bag, _), _ = key_frame_bag
    _, static = bag[topics.TF_STATIC][0]
    lidar_to_ego = {t.child_frame_id: messages.transform_matrix(t.transform) for t in static.transforms}["LIDAR_TOP"]
    for sample, (_, cloud), (_, array) in zip(samples, bag[topics.LIDAR], bag[topics.GT_ELEMENTS], strict=True):
        assert cloud.header.frame_id == topics.LIDAR_FRAME
        points = np.frombuffer(cloud.data, dtype="<f4").reshape(-1, 4)
        in_ego = points[:, :3] @ lidar_to_ego[:3, :3].T + lidar_to_ego[:3, 3]
        np.testing.assert_allclose(in_ego, sample.lidar[:, :3], atol=1e-4)
        assert messages.stamp_ns(array.header.stamp) == sample.timestamp_ns
        elements = messages.elements_from_message(array)
        assert [e.class_id for e in elements] == [e.class_id for e in sample.ground_truth]
        for element, points in zip(elements, (e.points for e in sample.ground_truth), strict=True):
            np.testing.assert_allclose(element.points, points, atol=1e-5)


def test_sweeps_add_the_intermediate_camera_images(dataroot, tmp_path):
    counts = write_nuscenes_bag(dataroot, VERSION, SCENE_NAMES, tmp_path / "bag", sweeps=True)
    assert all(counts[topics.image_topic(cam)] > KEY_FRAMES for cam in CAMERA_NAMES)
    assert counts[topics.GT_ELEMENTS] == KEY_FRAMES
    bag, _ = read_bag(tmp_path / "bag")
    stamps = [t for _, messages_ in bag.items() for t, _ in messages_]
    assert len(stamps) == sum(counts.values())


def test_unknown_scene_lists_the_valid_ones(dataroot, tmp_path, capsys):
    argv = ["nuscenes2bag", "--dataroot", str(dataroot), "--version", VERSION, "--scene", "scene-9999"]
    assert main([*argv, "--out", str(tmp_path / "bag")]) == 2
    error = capsys.readouterr().err
    assert "scene-9999" in error and all(name in error for name in SCENE_NAMES)
    assert not (tmp_path / "bag").exists()


def test_bag2samples_gives_back_the_key_frames_the_devkit_reads(dataroot, samples, tmp_path):
    """A nuScenes bag as a recorded drive: the key frames' images, intrinsics and scans come back as
    the devkit's samples have them, without their map. The rig is the static one the node uses, so
    cam_to_ego lacks the devkit's compensation of the ego's motion between camera and LiDAR times."""
    write_nuscenes_bag(dataroot, VERSION, SCENE_NAMES, tmp_path / "drive")
    (drive,) = bags_to_samples([tmp_path / "drive"], tmp_path / "drives")
    assert drive.samples == KEY_FRAMES and not drive.dropped
    source = NuScenesSource(dataroot, VERSION)
    for sample, original in zip(DriveFolder(tmp_path / "drives"), samples, strict=True):
        assert sample.timestamp_ns == original.timestamp_ns and not sample.labeled and sample.ground_truth == ()
        np.testing.assert_array_equal(sample.images, original.images)
        np.testing.assert_allclose(sample.intrinsics, original.intrinsics, rtol=1e-6)
        np.testing.assert_allclose(sample.lidar, original.lidar, atol=1e-4)
        for c, cam in enumerate(CAMERA_NAMES):
            record = source.nusc.get("sample_data", source.nusc.get("sample", original.token)["data"][cam])
            np.testing.assert_allclose(sample.cam_to_ego[c], source.sensor_to_ego(record), atol=1e-6)
