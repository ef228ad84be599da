"""The live replay evaluator: rclpy wiring only.

Collects the online node's MapElementArray and the bag's /map_gt/elements, and on shutdown (the
replay launch file stops it when `ros2 bag play` ends) scores them with the same plain-Python code
as `mapdistill replay` (mapdistill_ros.bags.scoring: pairing by stamp, MapTR Chamfer AP) into
``out``/metrics.json, in replay's layout, and prints the AP table as replay does.
"""

from __future__ import annotations

import signal
from pathlib import Path

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from mapdistill_core.results import provenance, write_json
from mapdistill_ros import messages, topics
from mapdistill_ros.bags.scoring import StampedFrames, metrics_document, metrics_text, score
from mapdistill_ros.msg import MapElementArray
from mapdistill_ros.nodes.spin import spin_until_shutdown


class EvaluatorNode(Node):
    def __init__(self):
        super().__init__("map_evaluator")
        describe = {
            "predictions_topic": (topics.NODE_ELEMENTS, "the online node's MapElementArray topic"),
            "ground_truth_topic": (topics.GT_ELEMENTS, "ground-truth MapElementArray topic (from the bag)"),
            "out": ("replay_eval", "folder for metrics.json"),
        }
        for name, (default, text) in describe.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=text))
        value = {name: self.get_parameter(name).value for name in describe}
        self.out = Path(value["out"])
        self.predictions = StampedFrames(messages.elements_from_message)
        self.ground_truth = StampedFrames(messages.ground_truth_from_message)
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.create_subscription(MapElementArray, value["predictions_topic"], self.on_prediction, qos)
        self.create_subscription(MapElementArray, value["ground_truth_topic"], self.on_ground_truth, qos)

    def on_prediction(self, message: MapElementArray) -> None:
        self.warn("prediction", self.predictions.add(message))

    def on_ground_truth(self, message: MapElementArray) -> None:
        self.warn("ground truth", self.ground_truth.add(message))

    def warn(self, what: str, problem: str | None) -> None:
        if problem:
            self.get_logger().warning(f"{what}: {problem}", throttle_duration_sec=5.0)

    def write(self) -> tuple[Path, dict]:
        """Score what arrived and write metrics.json; returns its path and the document."""
        predictions, ground_truth = self.predictions.frames, self.ground_truth.frames
        metrics = score(predictions, ground_truth) if ground_truth else None
        document = metrics_document(
            provenance(source="replay_eval.launch.py (live)"),
            metrics,
            "no ground truth arrived",
            predictions=len(predictions),
            ground_truth=len(ground_truth),
            skipped_messages={"prediction": self.predictions.skipped, "ground truth": self.ground_truth.skipped},
        )
        path = self.out / "metrics.json"
        write_json(path, document)
        return path, document


def main(args: list[str] | None = None) -> None:
    rclpy.init(args=args)
    node = EvaluatorNode()
    try:
        spin_until_shutdown(node)
    finally:
        # Ctrl-C reaches the node twice (from the terminal and from launch): the second must not cut the write
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        path, document = node.write()
        print(f"map_evaluator: {metrics_text(document)}\nmap_evaluator: wrote {path}", flush=True)
        node.destroy_node()
        rclpy.try_shutdown()
