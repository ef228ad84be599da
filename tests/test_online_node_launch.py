"""launch_testing: the installed online_map_node (a lifecycle node, taken to active by the launch
files' autostart actions), fed a tiny synthetic bag, publishes a MarkerArray, with the torch
backend, (a second node, from the same weights exported to ONNX) with the onnxruntime backend and
(a third) with teacher weights, which read /LIDAR_TOP too. The bag is played twice, as `ros2 bag
play` twice or `--loop` would: the second play's stamps go back, the nodes reset (one time jump
each on /diagnostics) and publish for it too. The map_evaluator beside them writes metrics.json on
shutdown, and every process of the launch exits 0.

Needs a sourced ROS 2 workspace with mapdistill_ros built (colcon); skipped where rclpy is missing
(CI, plain pip installs). The bag is played by publishing its serialized messages with rclpy, so
rosbag2 itself is not needed. Run it with `make launch-test` (`launch_test
tests/test_online_node_launch.py`) in the sourced workspace; the pytest suite leaves it out
(tests/conftest.py), because launch_testing's pytest plugin is disabled there (pytest.ini).
"""

import importlib
import json
import sys
import time
import unittest
from pathlib import Path

import pytest

# launch_test puts tests/ first on sys.path: the repository root goes last, so `tests` is found
# there while mapdistill_ros (with its generated msg module) still comes from the workspace.
sys.path.append(str(Path(__file__).resolve().parents[1]))

rclpy = pytest.importorskip("rclpy")
launch_testing = pytest.importorskip("launch_testing")
launch_ros = pytest.importorskip("launch_ros")

import tempfile  # noqa: E402

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from launch_testing.asserts import assertExitCodes  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from rosbags.highlevel import AnyReader  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402

from launch import LaunchDescription  # noqa: E402
from mapdistill_core.checkpoint import save_model  # noqa: E402
from mapdistill_core.export import export_onnx  # noqa: E402
from mapdistill_core.models.model import build_model  # noqa: E402
from mapdistill_ros.bags.scoring import metrics_document  # noqa: E402
from mapdistill_ros.bags.synthetic2bag import write_synthetic_bag  # noqa: E402
from mapdistill_ros.nodes.lifecycle_launch import autostart  # noqa: E402
from tests.model_fixtures import STUDENT, TEACHER, WORLD  # noqa: E402

WORK = Path(tempfile.mkdtemp(prefix="mapdistill-launch-"))
BAG = WORK / "bag"
WEIGHTS = WORK / "student.safetensors"
EXPORTED = WORK / "student.onnx"
TEACHER_WEIGHTS = WORK / "teacher.safetensors"
EVAL = WORK / "eval"
SAMPLES = 4
"""Captures in the bag, 0.5 s apart: the second play starts 1.5 s before the first play's last stamp,
a step back beyond the default time_jump_s (1 s); with 3 captures it would be 1.0 s, a late message."""
MARKERS = {
    "torch": "/online_map_node/markers",
    "onnxruntime": "/online_map_onnx/markers",
    "teacher": "/online_map_teacher/markers",
}


@pytest.mark.launch_test
def generate_test_description():
    save_model(WEIGHTS, build_model(STUDENT))
    save_model(TEACHER_WEIGHTS, build_model(TEACHER))
    write_synthetic_bag(WORLD, "test", 1, BAG, samples=SAMPLES)
    export_onnx(WEIGHTS, EXPORTED)
    common = {"device": "cpu", "score_threshold": 0.0, "max_frame_age_s": 1e9}
    actions = []
    for name, weights, backend in (
        ("online_map_node", WEIGHTS, "torch"),
        ("online_map_onnx", EXPORTED, "onnxruntime"),
        ("online_map_teacher", TEACHER_WEIGHTS, "torch"),
    ):
        node = launch_ros.actions.LifecycleNode(
            package="mapdistill_ros",
            executable="online_map_node",
            name=name,
            namespace="",
            parameters=[{**common, "weights": str(weights), "backend": backend}],
            output="screen",
        )
        actions += [node, *autostart(node, name)]
    evaluator = launch_ros.actions.Node(
        package="mapdistill_ros", executable="map_evaluator", parameters=[{"out": str(EVAL)}], output="screen"
    )
    return LaunchDescription([*actions, evaluator, launch_testing.actions.ReadyToTest()])


def message_class(msgtype: str):
    package, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


def time_jumps(array: DiagnosticArray) -> int:
    return max((int(kv.value) for s in array.status for kv in s.values if kv.key == "time_jumps"), default=0)


class TestOnlineNode(unittest.TestCase):
    def test_markers_arrive_for_a_bag_played_twice(self):
        rclpy.init()
        node = rclpy.create_node("bag_player")
        received = {backend: [] for backend in MARKERS}
        for backend, topic in MARKERS.items():
            node.create_subscription(MarkerArray, topic, received[backend].append, 10)
        diagnostics = []
        node.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 50)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        try:
            with AnyReader([BAG]) as reader:
                publishers = {
                    c.topic: node.create_publisher(
                        message_class(c.msgtype), c.topic, latched if c.topic == "/tf_static" else reliable
                    )
                    for c in reader.connections
                }
                played = list(reader.messages())
            deadline = time.monotonic() + 60.0
            images = [t for t in publishers if t.endswith("image_rect/compressed")]
            waiting = [*images, "/LIDAR_TOP"]
            while min(node.count_subscribers(t) for t in waiting) < 1 and time.monotonic() < deadline:
                rclpy.spin_once(node, timeout_sec=0.1)  # each node subscribes once active (its model loaded)
            while min(node.count_subscribers(t) for t in images) < len(MARKERS) and time.monotonic() < deadline:
                rclpy.spin_once(node, timeout_sec=0.1)
            after_play = []
            for _ in range(2):  # the second play's stamps go back to the first's
                before = {backend: len(r) for backend, r in received.items()}
                previous = None
                for connection, stamp, raw in played:  # a capture's messages back to back, captures 0.5 s apart
                    if previous is not None and stamp != previous:
                        pause = time.monotonic() + 0.5
                        while time.monotonic() < pause:
                            rclpy.spin_once(node, timeout_sec=0.05)
                    publishers[connection.topic].publish(bytes(raw))
                    previous = stamp
                while not all(len(r) > before[b] for b, r in received.items()) and time.monotonic() < deadline + 60.0:
                    rclpy.spin_once(node, timeout_sec=0.1)
                after_play.append({backend: len(r) - before[backend] for backend, r in received.items()})
            pause = time.monotonic() + 2.5  # two more /diagnostics reports, on the steady clock
            while time.monotonic() < pause:
                rclpy.spin_once(node, timeout_sec=0.1)
        finally:
            node.destroy_node()
            rclpy.shutdown()
        for play, counts in enumerate(after_play):
            for backend, count in counts.items():
                self.assertGreaterEqual(count, 1, f"play {play + 1}: no MarkerArray from the {backend} node")
        self.assertGreaterEqual(max(map(time_jumps, diagnostics), default=0), 1, "no time jump on /diagnostics")
        for backend, topic in MARKERS.items():
            self.assertTrue(received[backend], f"no MarkerArray on {topic} ({backend} backend)")
            markers = received[backend][0].markers
            self.assertEqual(markers[0].action, 3)  # DELETEALL first
            self.assertTrue(all(m.header.frame_id == "base_link" for m in markers))


@launch_testing.post_shutdown_test()
class TestEvaluatorOutput(unittest.TestCase):
    def test_metrics_written_on_shutdown(self):
        document = json.loads((EVAL / "metrics.json").read_text())
        self.assertGreaterEqual(document["frames"]["predictions"], 1)
        self.assertEqual(document["frames"]["ground_truth"], SAMPLES)  # the second play repeats the stamps
        self.assertIn("mAP", document["metrics"])
        replay_layout = metrics_document({}, None, "", predictions=0, ground_truth=0)
        self.assertEqual(set(document), set(replay_layout))
        self.assertEqual(set(document["frames"]), set(replay_layout["frames"]))

    def test_every_process_exits_0(self, proc_info):
        assertExitCodes(proc_info)
