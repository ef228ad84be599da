"""The ROS 2 online map node: rclpy wiring only.

Subscriptions, publishers, timers and parameters live here; everything they call is plain Python
tested without ROS: node_params (the parameter table), frame_sync (the synchronization policy and
the latest-frame-wins slot), online_pipeline (decode, preprocess, inference, message building),
stage_timer (latencies and drops, /diagnostics).

Threads: the executor thread receives messages and assembles camera sets; one worker thread runs
the newest set through the model, so a slow model drops stale sets instead of queueing them.
"""

from __future__ import annotations

import functools
import importlib
import threading

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from tf2_ros import Buffer, TransformException, TransformListener
from visualization_msgs.msg import MarkerArray

from mapdistill_core.data.sample import CAMERA_NAMES
from mapdistill_core.inference import MapPredictor
from mapdistill_ros import messages
from mapdistill_ros.camera_feed import CameraFeed
from mapdistill_ros.frame_sync import STALE, FrameAssembler, FrameSet, is_stale
from mapdistill_ros.msg import MapElementArray
from mapdistill_ros.node_params import NODE_NAME, PARAMETERS, runtime_update, validate_parameters
from mapdistill_ros.online_pipeline import OnlinePipeline, TransformCache
from mapdistill_ros.stage_timer import StageTimer, diagnostic_array

LOG_THROTTLE_S = 5.0


class RclpyFactory:
    """The message factory of online_pipeline and messages, for rclpy: "pkg/msg/Name" -> pkg.msg.Name."""

    @staticmethod
    @functools.cache
    def cls(msgtype: str):
        package, _, name = msgtype.split("/")
        return getattr(importlib.import_module(f"{package}.msg"), name)

    def new(self, msgtype: str, **fields):
        return self.cls(msgtype)(**fields)


class OnlineMapNode(Node):
    def __init__(self):
        super().__init__(NODE_NAME)
        for p in PARAMETERS:
            descriptor = ParameterDescriptor(description=p.description, read_only=not p.runtime)
            self.declare_parameter(p.name, p.default, descriptor)
        self.params = params = validate_parameters(
            {p.name: self.get_parameter(p.name).value for p in PARAMETERS}, f"node {self.get_fully_qualified_name()}"
        )
        predictor = MapPredictor.from_checkpoint(
            params["weights"],
            params["device"],
            params["half"],
            params["model_config"] or None,
            params["backend"],
            params["cuda_graphs"],
        )
        self.get_logger().info(
            f"loaded {params['weights']} ({params['backend']}) on {predictor.device} (half: {predictor.half}, "
            f"cuda_graphs: {predictor.cuda_graphs})"
        )
        self.timer = StageTimer()
        self.pipeline = OnlinePipeline(
            predictor,
            RclpyFactory(),
            self.timer,
            params["score_threshold"],
            params["output_frame"],
            params["marker_width"],
            params["min_cameras"],
        )
        predictor.warm_up()  # before subscribing: the first camera set then costs one forward
        self.feed = CameraFeed(
            FrameAssembler(CAMERA_NAMES, params["sync_slop_s"], params["min_cameras"], params["queue_size"]),
            self.timer,
        )
        self.infos: list[CameraInfo | None] = [None] * len(CAMERA_NAMES)
        self.transforms = TransformCache(params["output_frame"])
        self.tf_buffer = Buffer()
        self.tf_listener = TransformListener(self.tf_buffer, self)

        reliability = (
            ReliabilityPolicy.RELIABLE if params["input_reliability"] == "reliable" else ReliabilityPolicy.BEST_EFFORT
        )
        sensor_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=params["queue_size"], reliability=reliability)
        image_type = CompressedImage if params["compressed"] else Image
        for i, (image_topic, info_topic) in enumerate(
            zip(params["image_topics"], params["camera_info_topics"], strict=True)
        ):
            self.create_subscription(image_type, image_topic, lambda m, i=i: self.on_image(i, m), sensor_qos)
            self.create_subscription(CameraInfo, info_topic, lambda m, i=i: self.on_info(i, m), sensor_qos)
        self.elements_pub = self.create_publisher(MapElementArray, "~/map_elements", 10)
        self.markers_pub = self.create_publisher(MarkerArray, "~/markers", 10)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.previous_summary = None
        self.create_timer(1.0, self.publish_diagnostics)
        self.create_timer(params["sync_slop_s"] / 2, self.expire_sets)  # a dead camera holds a set one slop
        self.running = True
        self.add_on_set_parameters_callback(self.on_set_parameters)
        self.worker = threading.Thread(target=self.work, name="mapdistill-inference", daemon=True)
        self.worker.start()

    def on_set_parameters(self, changes) -> SetParametersResult:
        """`ros2 param set` while running: the runtime parameters, validated as at start-up."""
        try:
            params = runtime_update(
                self.params, {c.name: c.value for c in changes}, f"node {self.get_fully_qualified_name()}"
            )
        except ValueError as e:
            return SetParametersResult(successful=False, reason=str(e))
        self.params = params
        self.pipeline.score_threshold, self.pipeline.marker_width = params["score_threshold"], params["marker_width"]
        return SetParametersResult(successful=True)

    def on_info(self, camera: int, message: CameraInfo) -> None:
        self.infos[camera] = message

    def on_image(self, camera: int, message) -> None:
        now = self.get_clock().now().nanoseconds
        self.warn(self.feed.image(camera, messages.stamp_ns(message.header.stamp), message, now))

    def expire_sets(self) -> None:
        self.warn(self.feed.expire(self.get_clock().now().nanoseconds))

    def warn(self, lines: list[str]) -> None:
        for line in lines:
            self.get_logger().warning(line, throttle_duration_sec=LOG_THROTTLE_S)

    def lookup_transforms(self, frame_set: FrameSet) -> None:
        """Cache base_link -> camera transforms from TF for the cameras of ``frame_set`` not cached yet."""
        frames = [m.header.frame_id for m in frame_set.payloads if m is not None]
        for frame in self.transforms.missing(frames):
            try:
                self.transforms.add(self.tf_buffer.lookup_transform(self.transforms.base_frame, frame, Time()))
            except TransformException as e:
                self.get_logger().warning(f"no transform yet: {e}", throttle_duration_sec=LOG_THROTTLE_S)

    def work(self) -> None:
        """Inference worker: newest set in, map messages out; a failing frame is logged and skipped."""
        while self.running and rclpy.ok():
            frame_set = self.feed.slot.get(timeout=0.1)
            if frame_set is None:
                continue
            now = self.get_clock().now().nanoseconds
            if is_stale(frame_set.stamp_ns, now, self.params["max_frame_age_s"]):
                self.timer.drop(STALE)
                continue
            try:
                self.lookup_transforms(frame_set)
                result = self.pipeline.process(frame_set.payloads, self.infos, self.transforms, frame_set.stamp_ns)
                with self.timer.stage("publish"):
                    self.elements_pub.publish(result.elements)
                    self.markers_pub.publish(result.markers)
            except Exception as e:  # noqa: BLE001 - one bad frame must not stop the node
                if not (self.running and rclpy.ok()):
                    return  # shutting down: the publishers' context is gone, nothing to report
                self.timer.drop("error")
                self.get_logger().error(
                    f"frame at {frame_set.stamp_ns} ns failed: {e}", throttle_duration_sec=LOG_THROTTLE_S
                )
                continue
            if result.missing:
                detail = ", ".join(f"{name} ({why})" for name, why in result.missing.items())
                self.get_logger().warning(f"predicting without {detail}", throttle_duration_sec=LOG_THROTTLE_S)

    def publish_diagnostics(self) -> None:
        summary = self.timer.summary()
        now = self.get_clock().now().nanoseconds
        self.diagnostics_pub.publish(diagnostic_array(RclpyFactory(), summary, self.previous_summary, now))
        self.previous_summary = summary

    def destroy_node(self) -> None:
        self.running = False
        self.worker.join(timeout=2.0)
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """Run the node until Ctrl-C or shutdown; Ctrl-C at any point (also while the model loads) exits
    quietly."""
    rclpy.init(args=args)
    node = None
    try:
        node = OnlineMapNode()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
