"""rosbag2 written by synthetic2bag, read back with rosbags' AnyReader (a reader that knows nothing of
this package: the custom message definitions must come from the bag itself)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import yaml
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from mapdistill_core.data.sample import CAMERA_NAMES
from mapdistill_core.data.synthetic.config import SyntheticConfig
from mapdistill_core.data.synthetic.world import SyntheticScene
from mapdistill_ros import messages, topics
from mapdistill_ros.bags.bag_writer import MapBagWriter
from mapdistill_ros.bags.synthetic2bag import LIDAR_TO_EGO, bag_samples, encode_image, write_synthetic_bag

WORLD = SyntheticConfig(image_height=32, image_width=88, lidar_azimuth_steps=180, samples_per_scene=2)


def read_bag(path):
    """{topic: [(receive time, message)]} and {topic: msgtype}, decoded with a plain Humble typestore."""
    out, types = {}, {}
    with AnyReader([path], default_typestore=get_typestore(Stores.ROS2_HUMBLE)) as reader:
        for connection in reader.connections:
            types[connection.topic] = connection.msgtype
        for connection, t, raw in reader.messages():
            out.setdefault(connection.topic, []).append((t, reader.deserialize(raw, connection.msgtype)))
    return out, types


@pytest.fixture(scope="module", params=["mcap", "sqlite3"])
def synthetic_bag(request, tmp_path_factory):
    path = tmp_path_factory.mktemp(request.param) / "bag"
    counts = write_synthetic_bag(WORLD, "test", 2, path, storage=request.param)
    samples = [s for drive in bag_samples(WORLD, "test", 2) for s in drive]
    return path, counts, samples, request.param


def test_metadata_version_and_storage(synthetic_bag):
    path, counts, _, storage = synthetic_bag
    info = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["version"] == 8
    assert info["storage_identifier"] == storage
    assert info["message_count"] == sum(counts.values())


def test_topics_types_and_counts(synthetic_bag):
    path, counts, samples, _ = synthetic_bag
    bag, types = read_bag(path)
    expected = {
        topics.TF_STATIC: "tf2_msgs/msg/TFMessage",
        topics.TF: "tf2_msgs/msg/TFMessage",
        topics.LIDAR: "sensor_msgs/msg/PointCloud2",
        topics.GT_ELEMENTS: "mapdistill_ros/msg/MapElementArray",
        topics.GT_MARKERS: "visualization_msgs/msg/MarkerArray",
    }
    for cam in CAMERA_NAMES:
        expected[topics.image_topic(cam)] = "sensor_msgs/msg/CompressedImage"
        expected[topics.camera_info_topic(cam)] = "sensor_msgs/msg/CameraInfo"
    assert types == expected
    assert {t: len(v) for t, v in bag.items()} == counts
    assert counts[topics.TF_STATIC] == 2  # once per scene
    assert all(counts[t] == len(samples) for t in expected if t != topics.TF_STATIC)


def test_stamps_frames_and_camera_info(synthetic_bag):
    path, _, samples, _ = synthetic_bag
    bag, _ = read_bag(path)
    stamps = [s.timestamp_ns for s in samples]
    for c, cam in enumerate(CAMERA_NAMES):
        infos = bag[topics.camera_info_topic(cam)]
        images = bag[topics.image_topic(cam)]
        assert [t for t, _ in infos] == stamps
        assert [messages.stamp_ns(m.header.stamp) for _, m in images] == stamps
        for sample, (_, info), (_, image) in zip(samples, infos, images, strict=True):
            assert info.header.frame_id == image.header.frame_id == cam
            np.testing.assert_allclose(info.k.reshape(3, 3), sample.intrinsics[c])
            assert (info.width, info.height) == (WORLD.image_width, WORLD.image_height)
            assert image.format == "jpeg"
            assert image.data.tobytes() == encode_image(sample.images[c])
            decoded = cv2.imdecode(image.data, cv2.IMREAD_COLOR)
            assert decoded.shape == sample.images[c].shape
    clouds = bag[topics.LIDAR]
    assert [t for t, _ in clouds] == stamps
    for sample, (_, cloud) in zip(samples, clouds, strict=True):
        assert cloud.header.frame_id == topics.LIDAR_FRAME
        assert [f.name for f in cloud.fields] == ["x", "y", "z", "intensity"]
        points = np.frombuffer(cloud.data, dtype="<f4").reshape(-1, 4)
        np.testing.assert_allclose(points[:, :3] + LIDAR_TO_EGO[:3, 3], sample.lidar[:, :3], atol=1e-5)


def test_tf_chain_maps_cameras_into_the_world(synthetic_bag):
    path, _, samples, _ = synthetic_bag
    bag, _ = read_bag(path)
    _, static = bag[topics.TF_STATIC][0]
    sensors = {t.child_frame_id: messages.transform_matrix(t.transform) for t in static.transforms}
    assert all(t.header.frame_id == topics.BASE_FRAME for t in static.transforms)
    assert set(sensors) == {*CAMERA_NAMES, topics.LIDAR_FRAME}
    for sample, (t, tf) in zip(samples, bag[topics.TF], strict=True):
        (pose,) = tf.transforms
        assert (pose.header.frame_id, pose.child_frame_id) == (topics.MAP_FRAME, topics.BASE_FRAME)
        assert t == messages.stamp_ns(pose.header.stamp) == sample.timestamp_ns
        np.testing.assert_allclose(messages.transform_matrix(pose.transform), sample.ego_to_world, atol=1e-9)
    first = samples[0]
    for c, cam in enumerate(CAMERA_NAMES):
        np.testing.assert_allclose(sensors[cam], first.cam_to_ego[c], atol=1e-6)


def test_ground_truth_decodes_to_the_samples_vectors(synthetic_bag):
    path, _, samples, _ = synthetic_bag
    bag, _ = read_bag(path)
    for sample, (_, array), (_, markers) in zip(samples, bag[topics.GT_ELEMENTS], bag[topics.GT_MARKERS], strict=True):
        assert array.header.frame_id == topics.BASE_FRAME
        assert messages.stamp_ns(array.header.stamp) == sample.timestamp_ns
        elements = messages.elements_from_message(array)
        assert len(elements) == len(sample.ground_truth) > 0
        for element, truth in zip(elements, sample.ground_truth, strict=True):
            assert element.class_id == truth.class_id
            np.testing.assert_allclose(element.points, truth.points, atol=1e-6)
        assert markers.markers[0].action == messages.MARKER_DELETEALL
        assert len(markers.markers) == len(elements) + 1
        # ground truth reads apart from predictions (thin, score-alpha lines): a wide translucent band
        assert {(m.scale.x, round(m.color.a, 6)) for m in markers.markers[1:]} == {
            (messages.GROUND_TRUTH_WIDTH, messages.GROUND_TRUTH_ALPHA)
        }


def test_writer_refuses_to_overwrite(tmp_path):
    (tmp_path / "bag").mkdir()
    with pytest.raises(FileExistsError, match="bag"):
        MapBagWriter(tmp_path / "bag")
    with pytest.raises(ValueError, match="storage"):
        MapBagWriter(tmp_path / "other", storage="rosbag1")


def test_consecutive_scenes_follow_each_other_a_sample_period_apart(synthetic_bag):
    """The world stamps its scenes 100 s apart; the bag plays them back to back."""
    _, _, samples, _ = synthetic_bag
    period = round(1e9 / WORLD.sample_rate_hz)
    stamps = [s.timestamp_ns for s in samples]
    assert np.diff(stamps).tolist() == [period] * (len(stamps) - 1)
    world = [SyntheticScene(WORLD, "test", s).sample(i) for s in range(2) for i in range(2)]
    assert stamps[:2] == [w.timestamp_ns for w in world[:2]]  # the first scene keeps the world's stamps
    for bag_sample, world_sample in zip(samples, world, strict=True):
        assert bag_sample.token == world_sample.token and np.array_equal(bag_sample.images, world_sample.images)
