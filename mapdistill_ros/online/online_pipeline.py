"""The online node's work on one synchronized set, without rclpy: messages in, map messages out.

Per set: decode each camera's Image or CompressedImage to RGB, resize it to the model's image size
and scale its CameraInfo K to match (collate then passes the images through unchanged), mask the
cameras that have no image, CameraInfo or transform, for a teacher move the LiDAR scan
(PointCloud2) into the ego frame, run ``MapPredictor.predict`` and build the MapElementArray and
MarkerArray in the output (ego) frame, stamped with the set's stamp. The stages are timed on a
StageTimer; any error propagates to the caller. How messages become arrays is injected
(``Conversions``): the ROS-free decoders here, or the node's cv_bridge / sensor_msgs_py /
tf_transformations ones (mapdistill_ros.nodes.ros_conversions).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from mapdistill_core.data.batch import blank_cameras, resize_camera
from mapdistill_core.data.sample import CAMERA_NAMES, Sample
from mapdistill_core.inference import MapPredictor
from mapdistill_core.map_elements import MapElement
from mapdistill_ros import messages
from mapdistill_ros.online.cloud_decoding import decode_point_cloud
from mapdistill_ros.online.image_decoding import decode, intrinsics
from mapdistill_ros.online.stage_timer import StageTimer
from mapdistill_ros.topics import BASE_FRAME, LIDAR_FRAME


@dataclass(frozen=True)
class Conversions:
    """How messages become arrays.

    Attributes:
        image: sensor_msgs/Image or CompressedImage -> uint8 RGB [H, W, 3].
        cloud: sensor_msgs/PointCloud2 -> float32 [P, 4] x, y, z, intensity in its frame.
        transform: geometry_msgs/Transform -> float64 [4, 4] mapping child into parent coordinates.
    """

    image: Callable[[Any], np.ndarray] = decode
    cloud: Callable[[Any], np.ndarray] = decode_point_cloud
    transform: Callable[[Any], np.ndarray] = messages.transform_matrix


PLAIN = Conversions()
"""The ROS-free conversions (replay, CI)."""


class TransformCache:
    """Rig transforms ``base_frame`` -> sensor frame from geometry_msgs/TransformStamped (by field name).

    The first transform found per sensor frame is kept (the rig is static); the matrix [4, 4]
    float64 maps sensor (a camera's optical frame, the LiDAR's frame) coordinates into ``base_frame``.
    """

    def __init__(self, base_frame: str = BASE_FRAME, to_matrix: Callable[[Any], np.ndarray] = PLAIN.transform):
        self.base_frame, self.to_matrix = base_frame, to_matrix
        self._matrices: dict[str, np.ndarray] = {}

    def add(self, transform) -> bool:
        """Cache ``transform`` if it is ``base_frame`` -> a frame not cached yet; True if it was."""
        parent, child = transform.header.frame_id.lstrip("/"), transform.child_frame_id.lstrip("/")
        if parent != self.base_frame or child in self._matrices:
            return False
        matrix = np.asarray(self.to_matrix(transform.transform), dtype=np.float64)
        if not np.isfinite(matrix).all():
            raise ValueError(f"transform {parent} -> {child} is not finite: {matrix.tolist()}")
        self._matrices[child] = matrix
        return True

    def __len__(self) -> int:
        return len(self._matrices)

    def clear(self) -> None:
        """Forget every transform (time went back: the rig is looked up again)."""
        self._matrices.clear()

    def get(self, frame: str) -> np.ndarray | None:
        return self._matrices.get(frame.lstrip("/"))

    def missing(self, frames: Iterable[str]) -> list[str]:
        """The ``frames`` without a cached transform (the ones still to look up)."""
        return [frame for frame in frames if self.get(frame) is None]


@dataclass(frozen=True)
class OnlineResult:
    """What one set gives.

    Attributes:
        elements: mapdistill_ros/MapElementArray; markers: visualization_msgs/MarkerArray.
        map_elements: the predicted elements in the output frame.
        missing: masked camera -> why ("no image", "no CameraInfo", "no transform ...").
    """

    elements: Any
    markers: Any
    map_elements: list[MapElement]
    missing: dict[str, str]


@functools.cache
def decoder_pool() -> ThreadPoolExecutor:
    """The threads that decode a set's images side by side (one per camera, shared by all pipelines)."""
    return ThreadPoolExecutor(max_workers=len(CAMERA_NAMES), thread_name_prefix="mapdistill-decode")


class OnlinePipeline:
    """Sensor messages -> map messages for one synchronized set.

    A student reads the cameras; a teacher (camera + LiDAR) also the LiDAR scan, so its sets carry
    one more sensor, ``required`` (LIDAR_TOP), after the cameras.

    Args:
        predictor: the loaded model; its config's image_size is the input size.
        factory: builds the output messages (rosbags MessageFactory, or the node's rclpy one).
        timer: receives the decode, preprocess, inference and postprocess times and frame counts.
        min_cameras: fewest usable cameras (image, CameraInfo and transform) a set may have.
        camera_names: rig order, as the model was trained.
        conversions: messages -> arrays (PLAIN, or the node's ROS ones).
    """

    def __init__(
        self,
        predictor: MapPredictor,
        factory,
        timer: StageTimer,
        score_threshold: float = 0.3,
        output_frame: str = BASE_FRAME,
        marker_width: float = 0.2,
        min_cameras: int = 1,
        camera_names: Sequence[str] = CAMERA_NAMES,
        conversions: Conversions = PLAIN,
    ):
        self.predictor, self.factory, self.timer = predictor, factory, timer
        self.score_threshold, self.output_frame, self.marker_width = score_threshold, output_frame, marker_width
        self.min_cameras, self.camera_names, self.conversions = min_cameras, tuple(camera_names), conversions
        self.required: tuple[str, ...] = (LIDAR_FRAME,) if predictor.config.kind == "teacher" else ()

    def process(self, payloads: Sequence, infos: Sequence, transforms: TransformCache, stamp_ns: int) -> OnlineResult:
        """Map of one set.

        Args:
            payloads: per camera (rig order) its Image or CompressedImage, None when missing; then,
                for a teacher, the LiDAR scan (PointCloud2).
            infos: per camera its latest CameraInfo, None while none arrived.
            transforms: ego -> sensor transforms, looked up by each message's frame_id.
            stamp_ns: the set's stamp, which the outputs carry.

        Raises:
            ValueError: an image, CameraInfo, point cloud or transform is malformed or missing where
                it is required, an image's size disagrees with its CameraInfo, or fewer than
                ``min_cameras`` cameras are usable.
        """
        n = len(self.camera_names)
        if len(payloads) != n + len(self.required) or len(infos) != n:
            raise ValueError(
                f"expected {n} images{' and a LiDAR scan' if self.required else ''} and {n} CameraInfos, got "
                f"{len(payloads)} messages and {len(infos)} CameraInfos"
            )
        images = payloads[:n]
        to_rgb = self.conversions.image
        with self.timer.stage("decode"):  # the cameras in parallel: OpenCV's decoders release the GIL
            rgb = list(decoder_pool().map(lambda image: None if image is None else to_rgb(image), images))
            lidar = self._lidar(payloads[n:], transforms)
        with self.timer.stage("preprocess"):
            sample, mask, missing = self._sample(images, rgb, infos, transforms, stamp_ns, lidar)
        with self.timer.stage("inference"):
            (elements,) = self.predictor.predict(sample, self.score_threshold, mask[None])
        with self.timer.stage("postprocess"):
            f, frame = self.factory, self.output_frame
            array, markers = messages.map_messages(f, elements, stamp_ns, frame, self.marker_width)
        self.timer.frame_done(list(missing))
        return OnlineResult(array, markers, elements, missing)

    def _lidar(self, clouds: Sequence, transforms: TransformCache) -> np.ndarray:
        """A teacher's LiDAR scan in the ego frame, float32 [P, 4]; a student's set has none (empty)."""
        if not self.required:
            return np.zeros((0, 4), np.float32)
        (cloud,) = clouds
        if cloud is None:
            raise ValueError(f"the teacher needs a LiDAR scan ({self.required[0]}) and the set has none")
        return scan_in_base(cloud, transforms, self.conversions.cloud)

    def _sample(self, images, rgb, infos, transforms, stamp_ns, lidar) -> tuple[Sample, np.ndarray, dict[str, str]]:
        """The Sample at the model's image size, the camera mask bool [N] and why each masked camera is."""
        sample, mask, reasons = rig_sample(
            self.camera_names, images, rgb, infos, transforms, self.predictor.config.image_size, lidar, stamp_ns
        )
        usable = int(mask.sum())
        if usable < self.min_cameras:
            detail = ", ".join(f"{name}: {why}" for name, why in reasons.items())
            raise ValueError(f"{usable} usable cameras, fewer than min_cameras = {self.min_cameras} ({detail})")
        return sample, mask, reasons


def scan_in_base(cloud: Any, transforms: TransformCache, to_points: Callable[[Any], np.ndarray]) -> np.ndarray:
    """A PointCloud2 moved into ``transforms.base_frame``: float32 [P, 4] x, y, z, intensity.

    Raises:
        ValueError: no transform to the scan's frame, or a malformed cloud.
    """
    frame = cloud.header.frame_id
    pose = transforms.get(frame)
    if pose is None:
        raise ValueError(f"no transform {transforms.base_frame} -> {frame} for the LiDAR scan")
    points = np.asarray(to_points(cloud), dtype=np.float32)
    points[:, :3] = points[:, :3] @ pose[:3, :3].T.astype(np.float32) + pose[:3, 3].astype(np.float32)
    return points


def rig_sample(
    camera_names: Sequence[str],
    images: Sequence,
    rgb: Sequence[np.ndarray | None],
    infos: Sequence,
    transforms: TransformCache,
    size: tuple[int, int],
    lidar: np.ndarray,
    stamp_ns: int,
) -> tuple[Sample, np.ndarray, dict[str, str]]:
    """One capture of the rig as a Sample with its images at ``size`` (H, W).

    Args:
        camera_names: the rig's cameras, in the Sample's order.
        images: per camera its Image or CompressedImage message (for the frame id), None when missing.
        rgb: per camera the decoded uint8 RGB [H_i, W_i, 3], None when missing.
        infos: per camera its CameraInfo, None while none arrived.
        transforms: base_link -> camera optical frame, by each image's frame id.
        size: (H, W) of the Sample's images; each camera is resized to it and its K scaled to match.
        lidar: float32 [P, 4] in base_link (empty: no scan).

    Returns:
        the Sample (no map, no pose), the camera mask bool [N] (image, CameraInfo and transform
        present; a masked camera is blank: ``data.batch.blank_cameras``) and, per masked
        camera, why.

    Raises:
        ValueError: an image's size disagrees with its CameraInfo, or a CameraInfo is malformed.
    """
    n = len(camera_names)
    pixels, ks, poses = blank_cameras(n, size)
    mask, reasons = np.zeros(n, dtype=bool), {}
    for i, (name, image, info) in enumerate(zip(camera_names, images, infos, strict=True)):
        if image is None:
            reasons[name] = "no image"
            continue
        frame = image.header.frame_id
        pose = transforms.get(frame)
        if info is None or pose is None:
            reasons[name] = "no CameraInfo" if info is None else f"no transform {transforms.base_frame} -> {frame}"
            continue
        k = intrinsics(info)
        h, w = rgb[i].shape[:2]
        if (h, w) != (info.height, info.width):
            raise ValueError(f"image of '{frame}' is {w} x {h}, its CameraInfo says {info.width} x {info.height}")
        pixels[i], ks[i] = resize_camera(rgb[i], k, size)
        poses[i], mask[i] = pose, True
    return Sample(pixels, ks, poses, lidar, timestamp_ns=stamp_ns), mask, reasons
