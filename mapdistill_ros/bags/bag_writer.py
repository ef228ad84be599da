"""Write drives to rosbag2 (metadata version 8, MCAP or sqlite3) with the topics of docs/design.md.

Per sample: per camera a CompressedImage on ``/<CAM>/image_rect/compressed`` and a CameraInfo on
``/<CAM>/camera_info`` (frame = camera name), the LiDAR sweep on ``/LIDAR_TOP`` (frame LIDAR_TOP),
``/tf`` map -> base_link for every ego pose, and the ground truth on ``/map_gt/elements`` and
``/map_gt/markers`` (frame base_link). ``/tf_static`` carries base_link -> sensors and is offered
transient-local, so late subscribers of ``ros2 bag play`` still get it. Every message is stamped
with its sensor time, and the bag's receive time equals the header stamp.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import StoragePlugin, Writer

from mapdistill_core.interrupts import sigint_deferred
from mapdistill_core.map_elements import MapElement
from mapdistill_core.options import BAG_STORAGES
from mapdistill_ros import messages, topics
from mapdistill_ros.bags.typestore import MessageFactory

STORAGES = dict(zip(BAG_STORAGES, (StoragePlugin.MCAP, StoragePlugin.SQLITE3), strict=True))
BAG_VERSION = 8
_INFINITE = QosTime(sec=2147483647, nsec=4294967295)


def _qos(durability: QosDurability) -> Qos:
    return Qos(
        history=QosHistory.KEEP_LAST,
        depth=1 if durability == QosDurability.TRANSIENT_LOCAL else 10,
        reliability=QosReliability.RELIABLE,
        durability=durability,
        deadline=_INFINITE,
        lifespan=_INFINITE,
        liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=_INFINITE,
        avoid_ros_namespace_conventions=False,
    )


LATCHED = _qos(QosDurability.TRANSIENT_LOCAL)
VOLATILE = _qos(QosDurability.VOLATILE)


@dataclass(frozen=True)
class CameraFrame:
    """One camera image as it goes into the bag.

    Attributes:
        name: camera name (= frame id), e.g. CAM_FRONT.
        stamp_ns: capture time.
        data: encoded image bytes; image_format: "jpeg" or "png".
        intrinsics: float [3, 3] K at width x height pixels.
    """

    name: str
    stamp_ns: int
    data: bytes
    image_format: str
    intrinsics: np.ndarray
    width: int
    height: int


@dataclass(frozen=True)
class DriveFrame:
    """Everything one sample (or camera sweep) puts on the bag's topics.

    Attributes:
        stamp_ns: the sample's time, the ground truth's stamp.
        cameras: the images of this frame (any subset of the rig).
        lidar: (stamp_ns, float32 [P, 4] x, y, z, intensity in the LIDAR_TOP frame), or None.
        poses: (stamp_ns, float64 [4, 4] base_link -> map) for /tf.
        ground_truth: map elements in base_link, or None for a frame without ground truth.
    """

    stamp_ns: int
    cameras: list[CameraFrame] = field(default_factory=list)
    lidar: tuple[int, np.ndarray] | None = None
    poses: list[tuple[int, np.ndarray]] = field(default_factory=list)
    ground_truth: list[MapElement] | None = None


class MapBagWriter:
    """rosbag2 writer for drives; use as a context manager (the bag is closed on any exit)."""

    def __init__(self, path: str | Path, storage: str = "mcap"):
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {sorted(STORAGES)}, got '{storage}'")
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"{self.path} exists already; not overwriting a bag")
        self.factory = MessageFactory()
        self.writer = Writer(self.path, version=BAG_VERSION, storage_plugin=STORAGES[storage])
        self.connections: dict[str, object] = {}
        self.counts: dict[str, int] = {}

    def __enter__(self) -> MapBagWriter:
        self.writer.open()
        return self

    def __exit__(self, *exc) -> None:
        self.writer.close()

    def write(self, topic: str, stamp_ns: int, message, qos: Qos = VOLATILE) -> None:
        """Serialize ``message`` onto ``topic`` with receive time ``stamp_ns``."""
        msgtype = message.__msgtype__
        if topic not in self.connections:
            self.connections[topic] = self.writer.add_connection(
                topic, msgtype, typestore=self.factory.typestore, offered_qos_profiles=[qos]
            )
        data = self.factory.typestore.serialize_cdr(message, msgtype)
        with sigint_deferred():
            self.writer.write(self.connections[topic], int(stamp_ns), data)
        self.counts[topic] = self.counts.get(topic, 0) + 1

    def write_static(self, stamp_ns: int, sensors: dict[str, np.ndarray]) -> None:
        """/tf_static: base_link -> each sensor frame; ``sensors`` maps frame id -> [4, 4] sensor -> base_link."""
        f = self.factory
        transforms = [messages.transform(f, m, topics.BASE_FRAME, name, stamp_ns) for name, m in sensors.items()]
        self.write(topics.TF_STATIC, stamp_ns, messages.tf_message(f, transforms), LATCHED)

    def write_frame(self, frame: DriveFrame) -> None:
        """Every message of ``frame``, in stamp order."""
        f = self.factory
        out: list[tuple[int, str, object]] = []
        for stamp, pose in frame.poses:
            tf = messages.transform(f, pose, topics.MAP_FRAME, topics.BASE_FRAME, stamp)
            out.append((stamp, topics.TF, messages.tf_message(f, [tf])))
        for cam in frame.cameras:
            info = messages.camera_info(f, cam.intrinsics, cam.width, cam.height, cam.stamp_ns, cam.name)
            image = messages.compressed_image(f, cam.data, cam.image_format, cam.stamp_ns, cam.name)
            out += [(cam.stamp_ns, topics.camera_info_topic(cam.name), info)]
            out += [(cam.stamp_ns, topics.image_topic(cam.name), image)]
        if frame.lidar is not None:
            stamp, points = frame.lidar
            out.append((stamp, topics.LIDAR, messages.point_cloud(f, points, stamp, topics.LIDAR_FRAME)))
        if frame.ground_truth is not None:
            elements, base = frame.ground_truth, topics.BASE_FRAME
            out.append(
                (frame.stamp_ns, topics.GT_ELEMENTS, messages.map_element_array(f, elements, frame.stamp_ns, base))
            )
            markers = messages.marker_array(
                f,
                elements,
                frame.stamp_ns,
                base,
                messages.GROUND_TRUTH_WIDTH,
                alpha=messages.GROUND_TRUTH_ALPHA,
            )
            out.append((frame.stamp_ns, topics.GT_MARKERS, markers))
        for stamp, topic, message in sorted(out, key=lambda item: item[0]):
            self.write(topic, stamp, message)
