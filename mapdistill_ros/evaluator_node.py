"""The live replay evaluator: rclpy wiring only.

Collects the online node's MapElementArray and the bag's /map_gt/elements, and on shutdown (the
replay launch file stops it when `ros2 bag play` ends) scores them with the same plain-Python code
as `mapdistill replay` (replay.score: pairing by stamp, MapTR Chamfer AP) into ``out``/metrics.json.
"""

from __future__ import annotations

from pathlib import Path

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from mapdistill_core.results import provenance, write_json
from mapdistill_ros import messages, topics
from mapdistill_ros.msg import MapElementArray
from mapdistill_ros.replay import NODE_ELEMENTS, score


class EvaluatorNode(Node):
    def __init__(self):
        super().__init__("map_evaluator")
        describe = {
            "predictions_topic": (NODE_ELEMENTS, "the online node's MapElementArray topic"),
            "ground_truth_topic": (topics.GT_ELEMENTS, "ground-truth MapElementArray topic (from the bag)"),
            "out": ("replay_eval", "folder for metrics.json"),
        }
        for name, (default, text) in describe.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=text))
        value = {name: self.get_parameter(name).value for name in describe}
        self.out = Path(value["out"])
        self.predictions: dict = {}
        self.ground_truth: dict = {}
        self.skipped: dict[str, int] = {}
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.create_subscription(MapElementArray, value["predictions_topic"], self.on_prediction, qos)
        self.create_subscription(MapElementArray, value["ground_truth_topic"], self.on_ground_truth, qos)

    def on_prediction(self, message: MapElementArray) -> None:
        self.keep(self.predictions, message, messages.elements_from_message, "prediction")

    def on_ground_truth(self, message: MapElementArray) -> None:
        self.keep(self.ground_truth, message, messages.ground_truth_from_message, "ground truth")

    def keep(self, store: dict, message: MapElementArray, read, what: str) -> None:
        """Store a message's elements by stamp; one the metric cannot use is logged and counted."""
        stamp = messages.stamp_ns(message.header.stamp)
        try:
            store[stamp] = read(message)
        except ValueError as e:
            self.skipped[what] = self.skipped.get(what, 0) + 1
            self.get_logger().warning(f"skipped the {what} at {stamp} ns: {e}", throttle_duration_sec=5.0)

    def write(self) -> Path:
        """Score what arrived and write metrics.json."""
        metrics = score(self.predictions, self.ground_truth) if self.ground_truth else None
        document = {
            "meta": provenance(source="replay_eval.launch.py (live)"),
            "metrics": metrics,
            "no_metrics_reason": None if metrics else "no ground truth arrived",
            "frames": {"predictions": len(self.predictions), "ground_truth": len(self.ground_truth)},
            "skipped_messages": self.skipped,
        }
        path = self.out / "metrics.json"
        write_json(path, document)
        return path


def main(args: list[str] | None = None) -> None:
    rclpy.init(args=args)
    node = EvaluatorNode()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        path = node.write()
        print(f"map_evaluator: wrote {path}", flush=True)
        node.destroy_node()
        rclpy.try_shutdown()
