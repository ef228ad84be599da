"""The node's conversions by cv_bridge, sensor_msgs_py and tf_transformations give the arrays the
ROS-free ones give (replay and CI use those), on rclpy messages. Skipped without a sourced ROS 2."""

import numpy as np
import pytest

pytest.importorskip("cv_bridge")
pytest.importorskip("sensor_msgs_py")
pytest.importorskip("tf_transformations")

import cv2  # noqa: E402
from geometry_msgs.msg import Transform  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image, PointCloud2, PointField  # noqa: E402
from sensor_msgs_py import point_cloud2  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from mapdistill_ros.nodes.ros_conversions import ROS  # noqa: E402
from mapdistill_ros.online.image_decoding import CHANNELS  # noqa: E402
from mapdistill_ros.online.online_pipeline import PLAIN  # noqa: E402

RGB = np.random.default_rng(0).integers(0, 256, (6, 9, 3), dtype=np.uint8)
HEADER = Header(frame_id="CAM_FRONT")


def image(encoding: str) -> Image:
    pixels = {
        "rgb8": RGB,
        "bgr8": RGB[:, :, ::-1],
        "mono8": RGB[:, :, :1],
        "rgba8": np.dstack([RGB, np.full(RGB.shape[:2], 9, np.uint8)]),
        "bgra8": np.dstack([RGB[:, :, ::-1], np.full(RGB.shape[:2], 9, np.uint8)]),
    }[encoding]
    h, w, c = pixels.shape
    return Image(header=HEADER, height=h, width=w, encoding=encoding, step=w * c, data=pixels.tobytes())


@pytest.mark.parametrize("encoding", list(CHANNELS))
def test_raw_images_decode_alike(encoding):
    message = image(encoding)
    np.testing.assert_array_equal(ROS.image(message), PLAIN.image(message))


@pytest.mark.parametrize("extension", [".png", ".jpg"])
def test_compressed_images_decode_alike(extension):
    data = cv2.imencode(extension, RGB[:, :, ::-1])[1].tobytes()
    message = CompressedImage(header=HEADER, format=extension[1:].replace("jpg", "jpeg"), data=data)
    np.testing.assert_array_equal(ROS.image(message), PLAIN.image(message))


def test_cv_bridge_adds_the_encodings_the_plain_decoder_lacks():
    pixels = (RGB[:, :, 0].astype(np.uint16) * 257).tobytes()
    message = Image(header=HEADER, height=6, width=9, encoding="mono16", step=18, data=pixels)
    np.testing.assert_array_equal(ROS.image(message), np.repeat(RGB[:, :, :1], 3, axis=2))
    with pytest.raises(ValueError, match="field 'encoding' is 'mono16'"):
        PLAIN.image(message)


def test_a_corrupt_compressed_image_is_a_value_error_naming_the_camera():
    message = CompressedImage(header=HEADER, format="jpeg", data=b"\xff\xd8\xff" + bytes(20))
    with pytest.raises(ValueError, match="CompressedImage of 'CAM_FRONT'"):
        ROS.image(message)


def test_point_clouds_read_alike_with_holes_and_extra_fields():
    points = np.random.default_rng(1).normal(size=(50, 4)).astype(np.float32)  # x, y, z, intensity
    points[3, 1] = np.nan
    ring = np.arange(50, dtype=np.float32)[:, None]
    names = ("x", "y", "z", "ring", "intensity")  # an extra field between z and intensity
    fields = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1) for i, n in enumerate(names)]
    message = point_cloud2.create_cloud(
        Header(frame_id="LIDAR_TOP"), fields, np.hstack([points[:, :3], ring, points[:, 3:]])
    )
    assert isinstance(message, PointCloud2)
    ros, plain = ROS.cloud(message), PLAIN.cloud(message)
    np.testing.assert_array_equal(ros, plain)
    np.testing.assert_array_equal(plain, np.delete(points, 3, axis=0))


def test_transforms_become_the_same_matrix():
    quaternion = Rotation.from_euler("xyz", [0.3, -1.2, 2.0]).as_quat()
    message = Transform()
    message.translation.x, message.translation.y, message.translation.z = 1.5, -0.5, 2.0
    message.rotation.x, message.rotation.y, message.rotation.z, message.rotation.w = quaternion
    np.testing.assert_allclose(ROS.transform(message), PLAIN.transform(message), atol=1e-12)
