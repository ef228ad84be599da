"""Default topic names and frame ids (docs/design.md, "ROS interface")."""

from __future__ import annotations

BASE_FRAME = "base_link"
MAP_FRAME = "map"
LIDAR_FRAME = "LIDAR_TOP"

TF = "/tf"
TF_STATIC = "/tf_static"
LIDAR = "/LIDAR_TOP"
GT_ELEMENTS = "/map_gt/elements"
GT_MARKERS = "/map_gt/markers"
NODE_ELEMENTS = "/online_map_node/map_elements"  # the online node's outputs (~/map_elements, ~/markers)
NODE_MARKERS = "/online_map_node/markers"


def image_topic(camera: str, compressed: bool = True) -> str:
    """image_transport's layout beside ``/<CAM>/camera_info``: ``/<CAM>/image_rect`` (Image, the base
    topic) and ``/<CAM>/image_rect/compressed`` (CompressedImage, its compressed transport), so RViz
    and image_transport subscribers read a bag's cameras directly."""
    return f"/{camera}/image_rect/compressed" if compressed else f"/{camera}/image_rect"


def camera_info_topic(camera: str) -> str:
    return f"/{camera}/camera_info"
