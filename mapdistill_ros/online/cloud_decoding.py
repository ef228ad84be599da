"""LiDAR messages -> numpy: sensor_msgs/PointCloud2 to x, y, z, intensity.

Read by field name, so rclpy and rosbags messages both work. Every error is a ValueError naming the
sensor (the header's frame_id) and the offending field. Points keep the message's frame; the online
pipeline moves them into the ego frame.
"""

from __future__ import annotations

import numpy as np

from mapdistill_ros.online.image_decoding import message_bytes

FIELDS = ("x", "y", "z", "intensity")
"""The point fields a teacher reads, in this order."""
DATATYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 8: "f8"}
"""sensor_msgs/PointField datatypes (INT8 ... FLOAT64) as numpy type codes."""


def check_fields(message) -> None:
    """Raise a ValueError naming the sensor if the cloud lacks one of FIELDS."""
    names = [field.name for field in message.fields]
    absent = [name for name in FIELDS if name not in names]
    if absent:
        raise ValueError(
            f"PointCloud2 of '{message.header.frame_id}': field 'fields' has no {', '.join(absent)} "
            f"(it has {', '.join(names) or 'none'})"
        )


def decode_point_cloud(message) -> np.ndarray:
    """sensor_msgs/PointCloud2 with fields x, y, z and intensity (any numeric datatype, either byte
    order, any extra fields) -> float32 [P, 4] in the message's frame; points with a non-finite
    value (a dense=false cloud's holes) are left out."""
    frame = message.header.frame_id
    height, width = int(message.height), int(message.width)
    point_step, row_step = int(message.point_step), int(message.row_step)
    check_fields(message)
    fields = {field.name: field for field in message.fields}
    order = ">" if message.is_bigendian else "<"
    formats = []
    for name in FIELDS:
        field = fields[name]
        if field.datatype not in DATATYPES or int(field.count) != 1:
            raise ValueError(
                f"PointCloud2 of '{frame}': point field '{name}' has datatype {field.datatype} and count "
                f"{field.count}, expected a numeric datatype (1-8) with count 1"
            )
        size = np.dtype(DATATYPES[field.datatype]).itemsize
        if int(field.offset) + size > point_step:
            raise ValueError(
                f"PointCloud2 of '{frame}': point field '{name}' at offset {field.offset} does not fit in "
                f"point_step = {point_step}"
            )
        formats.append(order + DATATYPES[field.datatype])
    if height < 0 or width < 0 or row_step < width * point_step:
        raise ValueError(
            f"PointCloud2 of '{frame}': field 'row_step' is {row_step}, less than width * point_step = "
            f"{width * point_step}"
        )
    data = message_bytes(message.data)
    if len(data) < row_step * height:
        raise ValueError(
            f"PointCloud2 of '{frame}': field 'data' has {len(data)} bytes, row_step * height = {row_step * height}"
        )
    layout = np.dtype(
        {
            "names": list(FIELDS),
            "formats": formats,
            "offsets": [int(fields[n].offset) for n in FIELDS],
            "itemsize": point_step,
        }
    )
    rows = data[: row_step * height].reshape(height, row_step)[:, : width * point_step]
    records = np.ascontiguousarray(rows).view(layout).reshape(-1)
    points = np.stack([records[name].astype(np.float32) for name in FIELDS], axis=1)
    return points[np.isfinite(points).all(axis=1)]
