"""numpy / MapElement -> ROS messages, through a message factory (see typestore.MessageFactory).

Every builder takes the factory first, so the same code makes rosbags messages (bags, tests) and
rclpy messages (the node). Stamps are integer nanoseconds; frames follow docs/design.md (base_link, the
camera names, LIDAR_TOP, map).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.colors import to_rgba
from scipy.spatial.transform import Rotation

from mapdistill_core.map_elements import CLASS_COLORS, CLASS_NAMES, MapElement

POINT_FIELD_FLOAT32 = 7
MARKER_LINE_STRIP = 4
MARKER_ADD = 0
MARKER_DELETEALL = 3


def time(f, stamp_ns: int):
    """builtin_interfaces/Time from integer nanoseconds."""
    return f.new(
        "builtin_interfaces/msg/Time", sec=int(stamp_ns // 1_000_000_000), nanosec=int(stamp_ns % 1_000_000_000)
    )


def stamp_ns(stamp) -> int:
    """Integer nanoseconds of a builtin_interfaces/Time."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def header(f, stamp: int, frame_id: str):
    return f.new("std_msgs/msg/Header", stamp=time(f, stamp), frame_id=frame_id)


def camera_info(f, intrinsics: np.ndarray, width: int, height: int, stamp: int, frame_id: str):
    """sensor_msgs/CameraInfo of an undistorted pinhole camera with K = ``intrinsics`` [3, 3]."""
    k = np.asarray(intrinsics, dtype=np.float64)
    projection = np.concatenate([k, np.zeros((3, 1))], axis=1)
    return f.new(
        "sensor_msgs/msg/CameraInfo",
        header=header(f, stamp, frame_id),
        height=int(height),
        width=int(width),
        distortion_model="plumb_bob",
        d=np.zeros(5),
        k=k.reshape(9),
        r=np.eye(3).reshape(9),
        p=projection.reshape(12),
    )


def compressed_image(f, data: bytes, image_format: str, stamp: int, frame_id: str):
    """sensor_msgs/CompressedImage holding ``data`` as given (``image_format``: jpeg or png)."""
    return f.new(
        "sensor_msgs/msg/CompressedImage",
        header=header(f, stamp, frame_id),
        format=image_format,
        data=np.frombuffer(data, dtype=np.uint8),
    )


def point_cloud(f, points: np.ndarray, stamp: int, frame_id: str):
    """sensor_msgs/PointCloud2 with float32 fields x, y, z, intensity from ``points`` [P, 4]."""
    points = np.ascontiguousarray(points, dtype="<f4").reshape(-1, 4)
    fields = [
        f.new("sensor_msgs/msg/PointField", name=name, offset=4 * i, datatype=POINT_FIELD_FLOAT32, count=1)
        for i, name in enumerate(("x", "y", "z", "intensity"))
    ]
    return f.new(
        "sensor_msgs/msg/PointCloud2",
        header=header(f, stamp, frame_id),
        height=1,
        width=len(points),
        fields=fields,
        is_bigendian=False,
        point_step=16,
        row_step=16 * len(points),
        data=points.view(np.uint8).reshape(-1),
        is_dense=True,
    )


def transform(f, matrix: np.ndarray, parent: str, child: str, stamp: int):
    """geometry_msgs/TransformStamped: ``matrix`` [4, 4] maps ``child`` coordinates into ``parent``."""
    matrix = np.asarray(matrix, dtype=np.float64)
    x, y, z, w = Rotation.from_matrix(matrix[:3, :3]).as_quat()
    tx, ty, tz = matrix[:3, 3]
    return f.new(
        "geometry_msgs/msg/TransformStamped",
        header=header(f, stamp, parent),
        child_frame_id=child,
        transform=f.new(
            "geometry_msgs/msg/Transform",
            translation=f.new("geometry_msgs/msg/Vector3", x=float(tx), y=float(ty), z=float(tz)),
            rotation=f.new("geometry_msgs/msg/Quaternion", x=float(x), y=float(y), z=float(z), w=float(w)),
        ),
    )


def transform_matrix(message) -> np.ndarray:
    """[4, 4] float64 of a geometry_msgs/Transform (child -> parent)."""
    q, t = message.rotation, message.translation
    matrix = np.eye(4)
    matrix[:3, :3] = Rotation.from_quat([q.x, q.y, q.z, q.w]).as_matrix()
    matrix[:3, 3] = (t.x, t.y, t.z)
    return matrix


def tf_message(f, transforms: Sequence):
    return f.new("tf2_msgs/msg/TFMessage", transforms=list(transforms))


def element_points(f, elements: Sequence[MapElement]) -> list[list]:
    """Per element its geometry_msgs/Point list (z = 0), built in one pass over one float64 array:
    the messages of a frame share these lists instead of building them twice."""
    point = f.cls("geometry_msgs/msg/Point")
    lengths = [len(e.points) for e in elements]
    if not elements:
        return []
    xy = np.concatenate([np.asarray(e.points, dtype=np.float64).reshape(-1, 2) for e in elements]).tolist()
    out, start = [], 0
    for n in lengths:
        out.append([point(x=x, y=y, z=0.0) for x, y in xy[start : start + n]])
        start += n
    return out


def map_element_array(f, elements: Sequence[MapElement], stamp: int, frame_id: str, points: list | None = None):
    """mapdistill_ros/MapElementArray: one MapElement per element, points at z = 0 (``points``: the
    elements' Point lists from element_points, when the caller has them)."""
    points = element_points(f, elements) if points is None else points
    element = f.cls("mapdistill_ros/msg/MapElement")
    return f.new(
        "mapdistill_ros/msg/MapElementArray",
        header=header(f, stamp, frame_id),
        elements=[
            element(class_id=e.class_id, score=float(e.score), points=p) for e, p in zip(elements, points, strict=True)
        ],
    )


def elements_from_message(message) -> list[MapElement]:
    """MapElements of a MapElementArray (points' z dropped)."""
    return [
        MapElement(int(e.class_id), np.array([(p.x, p.y) for p in e.points]).reshape(-1, 2), float(e.score))
        for e in message.elements
    ]


def ground_truth_from_message(message) -> list[MapElement]:
    """elements_from_message for ground truth, checked to be scorable: ValueError for an unknown
    class id, and naming the element for fewer than 2 points or a non-finite one."""
    elements = elements_from_message(message)
    for i, element in enumerate(elements):
        finite = bool(np.isfinite(element.points).all())
        if len(element.points) < 2 or not finite:
            raise ValueError(
                f"field 'elements[{i}].points' has {len(element.points)} points{'' if finite else ', not all finite'}; "
                "ground truth needs at least 2 finite points"
            )
    return elements


GROUND_TRUTH_WIDTH, GROUND_TRUTH_ALPHA = 0.8, 0.35
"""Ground-truth markers: a wide translucent band in the class colour, under the predictions' thin
opaque lines, so the two read apart at a glance in RViz."""


def marker_array(
    f,
    elements: Sequence[MapElement],
    stamp: int,
    frame_id: str,
    width: float = 0.2,
    points: list | None = None,
    alpha: float | None = None,
):
    """visualization_msgs/MarkerArray: a DELETEALL, then one LINE_STRIP per element.

    Namespace = class name; ids count up per namespace from 0; colour from CLASS_COLORS with
    ``alpha``, or by default the element's score as alpha (at least 0.3, so weak predictions stay
    visible). ``points``: as in map_element_array.
    """
    points = element_points(f, elements) if points is None else points
    shared = {  # one header, pose and scale object for every marker of the frame
        "header": header(f, stamp, frame_id),
        "pose": f.new("geometry_msgs/msg/Pose", orientation=f.new("geometry_msgs/msg/Quaternion", w=1.0)),
        "scale": f.new("geometry_msgs/msg/Vector3", x=float(width)),
    }
    markers = [f.new("visualization_msgs/msg/Marker", header=shared["header"], action=MARKER_DELETEALL)]
    counts = dict.fromkeys(CLASS_NAMES, 0)
    for element, element_pts in zip(elements, points, strict=True):
        name = element.class_name
        r, g, b, _ = to_rgba(CLASS_COLORS[name])
        markers.append(
            f.new(
                "visualization_msgs/msg/Marker",
                ns=name,
                id=counts[name],
                type=MARKER_LINE_STRIP,
                action=MARKER_ADD,
                **shared,
                color=f.new(
                    "std_msgs/msg/ColorRGBA",
                    r=r,
                    g=g,
                    b=b,
                    a=alpha if alpha is not None else max(0.3, min(1.0, float(element.score))),
                ),
                points=element_pts,
            )
        )
        counts[name] += 1
    return f.new("visualization_msgs/msg/MarkerArray", markers=markers)


def map_messages(f, elements: Sequence[MapElement], stamp: int, frame_id: str, width: float = 0.2) -> tuple:
    """(MapElementArray, MarkerArray) of one frame, sharing one pass over the points."""
    points = element_points(f, elements)
    return (
        map_element_array(f, elements, stamp, frame_id, points),
        marker_array(f, elements, stamp, frame_id, width, points),
    )
