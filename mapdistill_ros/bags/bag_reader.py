"""Reading a recorded drive: open a rosbag2 with its types checked, and find the rig's topics in it.

Used by the offline replay, bag2samples and the soak benchmark; any rosbag2 that rosbags reads (MCAP, sqlite3,
written by this package or by `ros2 bag record`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore
from tqdm import tqdm

from mapdistill_core.data.sample import CAMERA_NAMES
from mapdistill_core.errors import BagError
from mapdistill_ros import topics

TOPIC_TYPES: dict[str, str] = {
    topics.TF_STATIC: "tf2_msgs/msg/TFMessage",
    topics.GT_ELEMENTS: "mapdistill_ros/msg/MapElementArray",
    topics.GT_MARKERS: "visualization_msgs/msg/MarkerArray",
    topics.LIDAR: "sensor_msgs/msg/PointCloud2",
    **{topics.camera_info_topic(c): "sensor_msgs/msg/CameraInfo" for c in CAMERA_NAMES},
    **{topics.image_topic(c, compressed=True): "sensor_msgs/msg/CompressedImage" for c in CAMERA_NAMES},
    **{topics.image_topic(c, compressed=False): "sensor_msgs/msg/Image" for c in CAMERA_NAMES},
}
"""The message type of each topic the replay reads; other topics are ignored, whatever their type."""


@contextmanager
def open_bag(bag: Path) -> Iterator[AnyReader]:
    """An open reader of ``bag`` (decoding the custom messages from the bag's own definitions).

    A missing, truncated or unreadable bag is a BagError naming it, and so is one with a topic of
    TOPIC_TYPES that carries another type (naming the topic and both types).
    """
    try:
        reader = AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_HUMBLE))
        reader.open()
    except Exception as e:  # noqa: BLE001 - rosbags raises many kinds on a corrupt bag, all mean unreadable
        raise BagError(f"{bag}: not a readable rosbag2 ({type(e).__name__}: {e})") from None
    try:
        for connection in reader.connections:
            expected = TOPIC_TYPES.get(connection.topic, connection.msgtype)
            if connection.msgtype != expected:
                raise BagError(f"{bag}: topic {connection.topic} carries {connection.msgtype}, expected {expected}")
        yield reader
    finally:
        reader.close()


def camera_topics(available: set[str], bag: Path) -> tuple[dict[str, int], list[str]]:
    """Image topic -> camera index for the rig's cameras found in ``available`` (compressed first),
    and the cameras without one. Raises BagError when no camera has an image topic."""
    found, missing = {}, []
    for i, camera in enumerate(CAMERA_NAMES):
        for compressed in (True, False):
            topic = topics.image_topic(camera, compressed)
            if topic in available:
                found[topic] = i
                break
        else:
            missing.append(camera)
    if not found:
        raise BagError(
            f"{bag}: no camera image topic (/<CAM>/image_rect/compressed or /<CAM>/image_rect for "
            f"{', '.join(CAMERA_NAMES)}); the bag has: {', '.join(sorted(available)) or 'no topics'}"
        )
    return found, missing


def read_messages(reader: AnyReader, connections: list, bag: Path, desc: str) -> Iterator[tuple]:
    """(connection, time ns, raw bytes) of ``connections`` in time order, under a progress bar named
    ``desc``; a bag that stops being readable part-way is a BagError naming it and the last time read."""
    stream = iter(tqdm(reader.messages(connections), total=sum(c.msgcount for c in connections), desc=desc, unit="msg"))
    t = None
    while True:
        try:
            connection, t, raw = next(stream)
        except StopIteration:
            return
        except Exception as e:  # noqa: BLE001 - the storage's own error, whatever its kind
            where = "at its start" if t is None else f"after {t} ns"
            raise BagError(f"{bag}: unreadable {where} ({type(e).__name__}: {e})") from None
        yield connection, t, raw
