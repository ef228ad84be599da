"""Message builders (rosbags messages through the factory) and the files the launch file names."""

import ast
import py_compile
import re
from pathlib import Path

import numpy as np
from matplotlib.colors import to_rgba

from mapdistill_core.map_elements import CLASS_COLORS, MapElement
from mapdistill_ros import messages
from mapdistill_ros.bags.typestore import MessageFactory

ROOT = Path(__file__).resolve().parents[1]
F = MessageFactory()
ELEMENTS = [
    MapElement(2, [[0.0, 0.0], [1.0, 0.5], [2.0, 1.0]], 0.9),
    MapElement(0, [[5.0, -1.0], [6.0, -1.0]], 0.8),
    MapElement(2, [[-3.0, 2.0], [-4.0, 2.0]], 0.1),
    MapElement(1, [[0, 0], [1, 0], [1, 1], [0, 0]], 0.5),
]


def per_point_reference(f, elements, stamp, frame_id, width):
    """The messages as built before element_points: every object made by its own f.new."""
    points = [[f.new("geometry_msgs/msg/Point", x=float(x), y=float(y), z=0.0) for x, y in e.points] for e in elements]
    array = f.new(
        "mapdistill_ros/msg/MapElementArray",
        header=messages.header(f, stamp, frame_id),
        elements=[
            f.new("mapdistill_ros/msg/MapElement", class_id=e.class_id, score=float(e.score), points=p)
            for e, p in zip(elements, points, strict=True)
        ],
    )
    markers = [f.new("visualization_msgs/msg/Marker", header=messages.header(f, stamp, frame_id), action=3)]
    counts = {"divider": 0, "ped_crossing": 0, "boundary": 0}
    for e, p in zip(elements, points, strict=True):
        r, g, b, _ = to_rgba(CLASS_COLORS[e.class_name])
        markers.append(
            f.new(
                "visualization_msgs/msg/Marker",
                header=messages.header(f, stamp, frame_id),
                ns=e.class_name,
                id=counts[e.class_name],
                type=4,
                action=0,
                pose=f.new("geometry_msgs/msg/Pose", orientation=f.new("geometry_msgs/msg/Quaternion", w=1.0)),
                scale=f.new("geometry_msgs/msg/Vector3", x=float(width)),
                color=f.new("std_msgs/msg/ColorRGBA", r=r, g=g, b=b, a=max(0.3, min(1.0, float(e.score)))),
                points=p,
            )
        )
        counts[e.class_name] += 1
    return array, f.new("visualization_msgs/msg/MarkerArray", markers=markers)


def test_one_pass_message_building_equals_building_every_object_on_its_own():
    rng = np.random.default_rng(0)
    elements = ELEMENTS + [
        MapElement(int(c), rng.normal(size=(20, 2)).astype(np.float32), float(s))
        for c, s in zip(rng.integers(0, 3, 30), rng.random(30), strict=True)
    ]
    for items, stamp in ((elements, 1_500_000_123), ([], 7)):
        built = messages.map_messages(F, items, stamp, "base_link", 0.25)
        expected = per_point_reference(F, items, stamp, "base_link", 0.25)
        for a, b in zip(built, expected, strict=True):  # the same bytes on the wire
            assert F.typestore.serialize_cdr(a, a.__msgtype__) == F.typestore.serialize_cdr(b, b.__msgtype__)


def test_marker_array_deleteall_first_then_one_line_strip_per_element():
    markers = messages.marker_array(F, ELEMENTS, 1_500_000_123, "base_link", width=0.3).markers
    assert markers[0].action == messages.MARKER_DELETEALL
    body = markers[1:]
    assert [m.ns for m in body] == ["boundary", "divider", "boundary", "ped_crossing"]
    assert [m.id for m in body] == [0, 0, 1, 0]  # ids count per namespace
    assert all(m.type == messages.MARKER_LINE_STRIP and m.action == messages.MARKER_ADD for m in body)
    assert all(m.scale.x == 0.3 and m.pose.orientation.w == 1.0 for m in body)
    for marker, element in zip(body, ELEMENTS, strict=True):
        r, g, b, _ = to_rgba(CLASS_COLORS[element.class_name])
        assert (marker.color.r, marker.color.g, marker.color.b) == (r, g, b)
        assert marker.color.a == max(0.3, element.score)
        np.testing.assert_allclose([(p.x, p.y) for p in marker.points], element.points)
        assert marker.header.frame_id == "base_link"
        assert messages.stamp_ns(marker.header.stamp) == 1_500_000_123


def test_map_element_array_round_trip():
    array = messages.map_element_array(F, ELEMENTS, 42, "base_link")
    back = messages.elements_from_message(array)
    assert [e.class_id for e in back] == [e.class_id for e in ELEMENTS]
    np.testing.assert_allclose([e.score for e in back], [e.score for e in ELEMENTS], rtol=1e-6)  # float32 field
    for a, b in zip(back, ELEMENTS, strict=True):
        np.testing.assert_allclose(a.points, b.points)


def test_transform_round_trip_and_point_cloud_layout():
    matrix = np.eye(4)
    matrix[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]
    matrix[:3, 3] = [1.0, 2.0, 3.0]
    tf = messages.transform(F, matrix, "base_link", "CAM_FRONT", 7)
    np.testing.assert_allclose(messages.transform_matrix(tf.transform), matrix, atol=1e-12)
    points = np.arange(12, dtype=np.float32).reshape(3, 4)
    cloud = messages.point_cloud(F, points, 7, "LIDAR_TOP")
    assert (cloud.width, cloud.point_step, cloud.row_step) == (3, 16, 48)
    np.testing.assert_array_equal(np.frombuffer(cloud.data, "<f4").reshape(3, 4), points)


def test_launch_file_compiles_and_names_files_that_exist():
    launch = ROOT / "launch" / "online_map.launch.py"
    py_compile.compile(str(launch), doraise=True)
    source = launch.read_text()
    named = set(re.findall(r'"(online_map\.\w+)"', source))
    assert named == {"online_map.yaml", "online_map.rviz"}
    assert all((ROOT / "config" / name).is_file() for name in named)
    executables = {
        node.value
        for call in ast.walk(ast.parse(source))
        if isinstance(call, ast.keyword) and call.arg == "executable"
        for node in [call.value]
        if isinstance(node, ast.Constant)
    }
    assert executables == {"online_map_node", "rviz2"}
    assert "scripts/online_map_node" in (ROOT / "CMakeLists.txt").read_text()
    assert (ROOT / "scripts" / "online_map_node").stat().st_mode & 0o111


def test_replay_launch_file_compiles_and_includes_the_online_launch():
    launch = ROOT / "launch" / "replay_eval.launch.py"
    py_compile.compile(str(launch), doraise=True)
    source = launch.read_text()
    assert '"online_map.launch.py"' in source and (ROOT / "launch" / "online_map.launch.py").is_file()
    assert '"map_evaluator"' in source and "scripts/map_evaluator" in (ROOT / "CMakeLists.txt").read_text()
    assert (ROOT / "scripts" / "map_evaluator").stat().st_mode & 0o111
