"""PointCloud2 messages (rosbags, built by MessageFactory) -> numpy x, y, z, intensity."""

import numpy as np
import pytest

from mapdistill_ros import messages
from mapdistill_ros.bags.typestore import MessageFactory
from mapdistill_ros.online.cloud_decoding import decode_point_cloud

F = MessageFactory()
POINTS = np.array([[1.5, -2.0, 0.25, 7.0], [10.0, 3.0, -1.0, 255.0], [0.0, 0.0, 0.0, 0.0]], np.float32)


def cloud(records: np.ndarray, fields: list[tuple[str, int, int]], big_endian=False, rows=1, row_padding=0, **over):
    """PointCloud2 of a structured array ``records`` laid out as ``fields`` (name, offset, datatype)."""
    point_step = records.dtype.itemsize
    width = len(records) // rows
    data = records.view(np.uint8).reshape(rows, width * point_step)
    data = np.concatenate([data, np.zeros((rows, row_padding), np.uint8)], axis=1).reshape(-1)
    values = dict(
        height=rows,
        width=width,
        fields=[F.new("sensor_msgs/msg/PointField", name=n, offset=o, datatype=d, count=1) for n, o, d in fields],
        is_bigendian=big_endian,
        point_step=point_step,
        row_step=width * point_step + row_padding,
        data=data,
        is_dense=True,
    )
    values.update(over)
    return F.new("sensor_msgs/msg/PointCloud2", header=messages.header(F, 1, "LIDAR_TOP"), **values)


def test_the_bag_writers_cloud_decodes_to_its_points():
    np.testing.assert_array_equal(decode_point_cloud(messages.point_cloud(F, POINTS, 1, "LIDAR_TOP")), POINTS)


def test_big_endian_float64_with_extra_fields_padding_and_rows():
    layout = np.dtype(
        {
            "names": ["ring", "x", "y", "z", "intensity"],
            "formats": [">u2", ">f8", ">f8", ">f8", ">u1"],
            "offsets": [0, 8, 16, 24, 33],
            "itemsize": 40,
        }
    )
    records = np.zeros(4, layout)
    source = np.concatenate([POINTS, [[4.0, 5.0, 6.0, 9.0]]]).astype(np.float64)
    for i, name in enumerate(("x", "y", "z", "intensity")):
        records[name] = source[:, i]
    fields = [("ring", 0, 4), ("x", 8, 8), ("y", 16, 8), ("z", 24, 8), ("intensity", 33, 2)]
    out = decode_point_cloud(cloud(records, fields, big_endian=True, rows=2, row_padding=3))
    np.testing.assert_array_equal(out, source.astype(np.float32))


def test_points_with_a_non_finite_coordinate_are_left_out():
    holes = POINTS.copy()
    holes[1, 0] = np.nan
    holes[2, 2] = np.inf
    np.testing.assert_array_equal(decode_point_cloud(messages.point_cloud(F, holes, 1, "LIDAR_TOP")), POINTS[:1])


def xyzi(**over):
    layout = np.dtype({"names": ["x", "y", "z", "intensity"], "formats": ["<f4"] * 4, "offsets": [0, 4, 8, 12]})
    fields = [("x", 0, 7), ("y", 4, 7), ("z", 8, 7), ("intensity", 12, 7)]
    fields = over.pop("fields", fields)
    return cloud(POINTS.view(layout).reshape(-1), fields, **over)


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (
            lambda: xyzi(fields=[("x", 0, 7), ("y", 4, 7), ("z", 8, 7)]),
            "field 'fields' has no intensity (it has x, y, z)",
        ),
        (
            lambda: xyzi(fields=[("x", 0, 7), ("y", 4, 7), ("z", 8, 9), ("intensity", 12, 7)]),
            "point field 'z' has datatype 9",
        ),
        (
            lambda: xyzi(fields=[("x", 0, 7), ("y", 4, 7), ("z", 8, 7), ("intensity", 14, 7)]),
            "'intensity' at offset 14",
        ),
        (lambda: xyzi(row_step=8), "field 'row_step' is 8, less than width * point_step = 48"),
        (lambda: xyzi(data=np.zeros(40, np.uint8)), "field 'data' has 40 bytes, row_step * height = 48"),
    ],
)
def test_a_malformed_cloud_is_one_value_error_naming_the_sensor_and_field(message, error):
    with pytest.raises(ValueError, match="PointCloud2 of 'LIDAR_TOP'") as caught:
        decode_point_cloud(message())
    assert error in str(caught.value)
