"""The node's message conversions, by the ROS packages made for them (needs a sourced ROS 2).

cv_bridge decodes sensor_msgs/Image in every encoding it supports (bayer, yuv422, 16-bit, ...) and
CompressedImage, sensor_msgs_py.point_cloud2 reads PointCloud2, tf_transformations turns a
geometry_msgs/Transform into a matrix. Replay and CI use the ROS-free conversions
(online_pipeline.PLAIN); tests/test_ros_conversions.py checks that both give the same arrays.
Errors are ValueErrors naming the sensor, as the ROS-free ones.
"""

from __future__ import annotations

import cv2
import numpy as np
from cv_bridge import CvBridge, CvBridgeError
from sensor_msgs_py import point_cloud2
from tf_transformations import quaternion_matrix

from mapdistill_ros.online.cloud_decoding import FIELDS, check_fields
from mapdistill_ros.online.online_pipeline import Conversions

_BRIDGE = CvBridge()


def image_rgb(message) -> np.ndarray:
    """sensor_msgs/Image (any encoding cv_bridge converts to rgb8) or CompressedImage -> uint8 RGB [H, W, 3]."""
    try:
        if hasattr(message, "format"):
            return _BRIDGE.compressed_imgmsg_to_cv2(message, "rgb8")
        return _BRIDGE.imgmsg_to_cv2(message, "rgb8")
    except (CvBridgeError, cv2.error, TypeError) as e:
        kind = "CompressedImage" if hasattr(message, "format") else "Image"
        raise ValueError(f"{kind} of '{message.header.frame_id}': cv_bridge cannot decode it ({e})") from None


def cloud_points(message) -> np.ndarray:
    """sensor_msgs/PointCloud2 -> float32 [P, 4] x, y, z, intensity, points with a non-finite value left out."""
    check_fields(message)
    records = point_cloud2.read_points(message, field_names=FIELDS, skip_nans=True)
    points = np.stack([np.asarray(records[name], dtype=np.float32) for name in FIELDS], axis=1)
    return points[np.isfinite(points).all(axis=1)]


def transform_matrix(transform) -> np.ndarray:
    """geometry_msgs/Transform -> float64 [4, 4] mapping child into parent coordinates."""
    q, t = transform.rotation, transform.translation
    matrix = quaternion_matrix([q.x, q.y, q.z, q.w])
    matrix[:3, 3] = (t.x, t.y, t.z)
    return matrix


ROS = Conversions(image=image_rgb, cloud=cloud_points, transform=transform_matrix)
"""The node's conversions."""
