"""The ROS 2 online map node, a lifecycle (managed) node: rclpy wiring only.

States, as ROS 2 perception nodes and Nav2 have them:
- unconfigured: parameters declared, nothing loaded.
- configure: validates the parameters, loads and warms up the model, creates the publishers and
  the TF listener (a failure is logged in one line and leaves the node unconfigured).
- activate: subscribes to the cameras (and, for teacher weights, the LiDAR), starts the
  diagnostics and slop timers and the inference worker; outputs are published only while active.
- deactivate: unsubscribes, stops the timers and the worker, publishes a last /diagnostics report;
  cleanup drops the model.
The launch files drive the start-up transitions (autostart:=true by default).

Time going back (ROS time jumping back under use_sim_time, or stamps going back by more than
time_jump_s: a bag played again, looped or restarted) resets the synchronization, the cached
transforms and the TF buffer, is logged in one line and counted on /diagnostics; publishing goes on.
/diagnostics runs on a steady clock, so it keeps reporting when a bag (and its /clock) stops.

Subscriptions, publishers, timers and parameters live here; everything they call is plain Python
tested without ROS: node_params (the parameter table) and the online map session
(mapdistill_ros.online.session, in LIVE mode: synchronization, the latest-frame-wins handoff, one
worker step through online_pipeline with ros_conversions' cv_bridge / sensor_msgs_py /
tf_transformations conversions, the stage timer behind /diagnostics), which replay drives too.

Threads: the executor thread receives messages and assembles sets; one worker thread runs the
newest set through the model, so a slow model drops stale sets instead of queueing them.
"""

from __future__ import annotations

import functools
import importlib
import signal
import threading
from dataclasses import dataclass

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.clock import Clock, ClockType, JumpThreshold
from rclpy.duration import Duration
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from tf2_ros import Buffer, TransformException, TransformListener
from visualization_msgs.msg import MarkerArray

from mapdistill_core.data.sample import CAMERA_NAMES
from mapdistill_core.errors import MapdistillError
from mapdistill_core.inference import MapPredictor
from mapdistill_ros.msg import MapElementArray
from mapdistill_ros.nodes.node_params import NODE_NAME, PARAMETERS, runtime_update, validate_parameters
from mapdistill_ros.nodes.ros_conversions import ROS
from mapdistill_ros.nodes.spin import spin_until_shutdown
from mapdistill_ros.online.online_pipeline import OnlinePipeline, TransformCache
from mapdistill_ros.online.session import ERROR, LIVE, OnlineMapSession
from mapdistill_ros.online.stage_timer import StageTimer, diagnostic_array

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


@dataclass
class Configured:
    """What configure made: the online map session, the TF listener and the publishers."""

    params: dict
    session: OnlineMapSession
    tf_buffer: Buffer
    tf_listener: TransformListener
    publishers: tuple


class OnlineMapNode(LifecycleNode):
    def __init__(self):
        super().__init__(NODE_NAME)
        for p in PARAMETERS:
            descriptor = ParameterDescriptor(description=p.description, read_only=not p.runtime)
            self.declare_parameter(p.name, p.default, descriptor)
        self.add_on_set_parameters_callback(self.on_set_parameters)
        self.configured: Configured | None = None
        self.subscriptions_active: list = []
        self.timers_active: list = []
        self.worker: threading.Thread | None = None
        self.jump_handle = None
        self.running = False
        self.previous_summary = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Validate the parameters, load the model, create the publishers; FAILURE (one logged line)
        leaves the node unconfigured."""
        try:
            params = validate_parameters(
                {p.name: self.get_parameter(p.name).value for p in PARAMETERS},
                f"node {self.get_fully_qualified_name()}",
            )
            predictor = MapPredictor.from_checkpoint(
                params["weights"],
                params["device"],
                params["half"],
                params["model_config"] or None,
                params["backend"],
                params["cuda_graphs"],
            )
        except (MapdistillError, ValueError, OSError) as e:
            self.get_logger().error(f"configure failed: {e}")
            return TransitionCallbackReturn.FAILURE
        pipeline = OnlinePipeline(
            predictor,
            RclpyFactory(),
            StageTimer(),
            params["score_threshold"],
            params["output_frame"],
            params["marker_width"],
            params["min_cameras"],
            conversions=ROS,
        )
        predictor.warm_up()  # before subscribing: the first set then costs one forward
        tf_buffer = Buffer()

        def lookup(base_frame: str, frame: str):
            try:
                return tf_buffer.lookup_transform(base_frame, frame, Time())
            except TransformException as e:
                raise LookupError(str(e)) from None

        session = OnlineMapSession(
            pipeline,
            CAMERA_NAMES,
            LIVE,
            params["sync_slop_s"],
            params["queue_size"],
            params["time_jump_s"],
            params["max_frame_age_s"],
            TransformCache(params["output_frame"], ROS.transform),
            lookup,
            tf_buffer.clear,  # time went back: the TF buffer's transforms are from another timeline
        )
        self.configured = Configured(
            params,
            session,
            tf_buffer,
            TransformListener(tf_buffer, self),
            (
                self.create_lifecycle_publisher(MapElementArray, "~/map_elements", 10),
                self.create_lifecycle_publisher(MarkerArray, "~/markers", 10),
                self.create_lifecycle_publisher(DiagnosticArray, "/diagnostics", 10),
            ),
        )
        self.get_logger().info(
            f"configured: {params['weights']} ({predictor.config.kind}, {params['backend']}) on {predictor.device} "
            f"(half: {predictor.half}, cuda_graphs: {predictor.cuda_graphs})"
        )
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe, start the timers and the inference worker."""
        c = self.configured
        params = c.params
        reliability = (
            ReliabilityPolicy.RELIABLE if params["input_reliability"] == "reliable" else ReliabilityPolicy.BEST_EFFORT
        )
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=params["queue_size"], reliability=reliability)
        image_type = CompressedImage if params["compressed"] else Image
        subscriptions = []
        for i, (image_topic, info_topic) in enumerate(
            zip(params["image_topics"], params["camera_info_topics"], strict=True)
        ):
            subscriptions.append(
                self.create_subscription(image_type, image_topic, lambda m, i=i: self.on_sensor(i, m), qos)
            )
            subscriptions.append(
                self.create_subscription(CameraInfo, info_topic, lambda m, i=i: self.on_info(i, m), qos)
            )
        if c.session.pipeline.required:  # teacher weights: the LiDAR is the sets' last sensor
            lidar = len(CAMERA_NAMES)
            subscriptions.append(
                self.create_subscription(PointCloud2, params["lidar_topic"], lambda m: self.on_sensor(lidar, m), qos)
            )
        self.subscriptions_active = subscriptions
        self.timers_active = [
            # steady: under use_sim_time a timer on ROS time stops with the bag's /clock
            self.create_timer(1.0, self.publish_diagnostics, clock=Clock(clock_type=ClockType.STEADY_TIME)),
            self.create_timer(params["sync_slop_s"] / 2, self.expire_sets),  # a dead camera holds a set one slop
        ]
        self.jump_handle = self.get_clock().create_jump_callback(
            JumpThreshold(
                min_forward=None, min_backward=Duration(seconds=-params["time_jump_s"]), on_clock_change=False
            ),
            post_callback=self.on_time_jump,
        )
        self.running = True
        self.worker = threading.Thread(target=self.work, name="mapdistill-inference", daemon=True)
        self.worker.start()
        topics = [s.topic_name for s in subscriptions if s.msg_type is not CameraInfo]
        self.get_logger().info(f"active: reading {', '.join(topics)}")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe, stop the timers and the worker, report the last counts."""
        self.stop()
        self.publish_diagnostics()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Drop the model, the publishers and the TF listener: back to unconfigured."""
        self.release()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        was_active = self.running
        self.stop()
        if was_active:
            self.publish_diagnostics()
        self.release()
        return super().on_shutdown(state)

    def stop(self) -> None:
        self.running = False
        if self.worker is not None:
            self.worker.join(timeout=2.0)
            self.worker = None
        if self.jump_handle is not None:
            self.jump_handle.unregister()
            self.jump_handle = None
        for subscription in self.subscriptions_active:
            self.destroy_subscription(subscription)
        for timer in self.timers_active:
            self.destroy_timer(timer)
        self.subscriptions_active, self.timers_active = [], []

    def release(self) -> None:
        if self.configured is None:
            return
        for publisher in self.configured.publishers:
            self.destroy_lifecycle_publisher(publisher)
        self.configured.tf_listener.unregister()
        self.configured = None

    # -- parameters ----------------------------------------------------------------------------------

    def on_set_parameters(self, changes) -> SetParametersResult:
        """`ros2 param set` while running: the runtime parameters, validated as at start-up."""
        if self.configured is None:
            return SetParametersResult(successful=True)  # read at configure, validated there
        try:
            params = runtime_update(
                self.configured.params,
                {c.name: c.value for c in changes},
                f"node {self.get_fully_qualified_name()}",
            )
        except ValueError as e:
            return SetParametersResult(successful=False, reason=str(e))
        self.configured.params = params
        session = self.configured.session
        session.max_frame_age_s = params["max_frame_age_s"]
        session.pipeline.score_threshold = params["score_threshold"]
        session.pipeline.marker_width = params["marker_width"]
        return SetParametersResult(successful=True)

    # -- the active state ------------------------------------------------------------------------------

    def on_info(self, camera: int, message: CameraInfo) -> None:
        self.configured.session.on_info(camera, message)

    def on_sensor(self, sensor: int, message) -> None:
        self.warn(self.configured.session.on_sensor(sensor, message, self.get_clock().now().nanoseconds))

    def expire_sets(self) -> None:
        self.warn(self.configured.session.expire(self.get_clock().now().nanoseconds))

    def on_time_jump(self, jump) -> None:
        """ROS time went back by more than time_jump_s (a bag played again with --clock)."""
        if self.configured is not None:
            self.warn(self.configured.session.rewind(-jump.delta.nanoseconds))

    def warn(self, lines: list[str]) -> None:
        for line in lines:
            if line.startswith("time went back"):  # once per jump: never throttled away
                self.get_logger().warning(line)
            else:
                self.get_logger().warning(line, throttle_duration_sec=LOG_THROTTLE_S)

    def work(self) -> None:
        """Inference worker: the session's newest set in, map messages out; a failing frame is logged
        and skipped."""
        c = self.configured
        elements_pub, markers_pub, _ = c.publishers
        while self.running and rclpy.ok():
            frame_set = c.session.next_set(timeout=0.1)
            if frame_set is None:
                continue
            try:
                result, lines = c.session.step(frame_set, self.get_clock().now().nanoseconds)
                self.warn(lines)
                if result is None:
                    continue
                with c.session.timer.stage("publish"):
                    elements_pub.publish(result.elements)
                    markers_pub.publish(result.markers)
            except Exception as e:  # noqa: BLE001 - one bad frame must not stop the node
                if not (self.running and rclpy.ok()):
                    return  # shutting down: the publishers' context is gone, nothing to report
                c.session.timer.drop(ERROR)
                self.get_logger().error(
                    f"frame at {frame_set.stamp_ns} ns failed: {e}", throttle_duration_sec=LOG_THROTTLE_S
                )
                continue
            if result.missing:
                detail = ", ".join(f"{name} ({why})" for name, why in result.missing.items())
                self.get_logger().warning(f"predicting without {detail}", throttle_duration_sec=LOG_THROTTLE_S)

    def publish_diagnostics(self) -> None:
        c = self.configured
        if c is None or not rclpy.ok():
            return
        summary = c.session.timer.summary()
        now = self.get_clock().now().nanoseconds
        c.publishers[2].publish(diagnostic_array(RclpyFactory(), summary, self.previous_summary, now))
        self.previous_summary = summary

    def destroy_node(self) -> None:
        self.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """Run the node (unconfigured until the launch file, a lifecycle manager or `ros2 lifecycle set`
    moves it on) until Ctrl-C or shutdown; Ctrl-C at any point, also while the model loads, exits
    quietly, and so does a shutdown that invalidates the context mid-spin."""
    rclpy.init(args=args)
    node = None
    try:
        node = OnlineMapNode()
        spin_until_shutdown(node)
    except KeyboardInterrupt:
        pass
    finally:
        # Ctrl-C reaches the node twice (from the terminal and from launch): the second must not cut the clean-up
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
