"""Default topic names and frame ids (DESIGN.md, "ROS interface")."""

from __future__ import annotations

BASE_FRAME = "base_link"
MAP_FRAME = "map"
LIDAR_FRAME = "LIDAR_TOP"

TF = "/tf"
TF_STATIC = "/tf_static"
LIDAR = "/LIDAR_TOP"
GT_ELEMENTS = "/map_gt/elements"
GT_MARKERS = "/map_gt/markers"


def image_topic(camera: str, compressed: bool = True) -> str:
    """``/<CAM>/image_rect_compressed`` (CompressedImage) or ``/<CAM>/image_raw`` (Image)."""
    return f"/{camera}/image_rect_compressed" if compressed else f"/{camera}/image_raw"


def camera_info_topic(camera: str) -> str:
    return f"/{camera}/camera_info"
