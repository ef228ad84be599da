"""One online map session: what the node and ``mapdistill replay`` share, in plain Python.

A session owns the model's pipeline, the stage timer (latencies, frames, drops, time jumps: what
/diagnostics and metrics.json report), the synchronization (FrameAssembler), the handoff to the
worker, the cached rig transforms and the latest CameraInfo per camera. Its drivers only move
messages in and results out:

- the node (rclpy) calls ``on_info`` / ``on_sensor`` from its subscriptions, ``expire`` from a timer
  and ``rewind`` when ROS time jumps back; its worker thread loops ``next_set`` then ``step``, and
  transforms come from tf2 through ``lookup``;
- replay calls the same from a bag's messages in time order, ``on_transform`` for /tf_static, and
  ``flush`` at the end.

One switch, ``mode``: LIVE, the newest set wins (a set the worker did not take in time is dropped
as SUPERSEDED, a set older than ``max_frame_age_s`` when taken as STALE); REPLAY, every set is
processed in order (offline there is no deadline). Every set given up, and why, is counted in
``timer`` and returned as a line to log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mapdistill_ros import messages
from mapdistill_ros.online.frame_sync import (
    STALE,
    SUPERSEDED,
    TIME_JUMP,
    EverySlot,
    FrameAssembler,
    FrameSet,
    LatestSlot,
    Rewound,
    is_stale,
)
from mapdistill_ros.online.online_pipeline import OnlinePipeline, OnlineResult, TransformCache

LIVE = "live"
"""The node's mode: the newest set wins; sets not taken in time, and sets too old, are dropped."""
REPLAY = "replay"
"""Replay's mode: every set is processed, in order (offline there is no deadline)."""
ERROR = "error"
"""Drop reason of a set the pipeline rejects (a bad image, calibration or transform)."""
BAD_MESSAGE = "bad_message"
"""Drop reason of a message the session cannot use (a non-finite transform; replay also counts
messages it cannot deserialize and ground truth it cannot score)."""


class OnlineMapSession:
    """Args:
    pipeline: decode, preprocess, inference, message building; its timer is the session's.
    camera_names: the rig's cameras (the model's order); sensors are indices into them, then the
        pipeline's required sensors (a teacher's LiDAR).
    mode: LIVE or REPLAY (see the module docstring).
    slop_s, queue_size, time_jump_s: the synchronization (FrameAssembler's slop_s, queue_size,
        rewind_s; time_jump_s None: stamps going back are late messages, never a new timeline).
    max_frame_age_s: LIVE only: a set older than this when the worker takes it is dropped.
    transforms: the rig transforms (base frame -> sensor frames).
    lookup: called as ``lookup(base_frame, frame)`` for a sensor frame without a cached transform
        (the node's tf2 lookup); raises LookupError when it has none yet. None: transforms come
        only through ``on_transform``.
    on_rewind: called after time went back, once the session forgot its transforms (the node
        clears its TF buffer).
    """

    def __init__(
        self,
        pipeline: OnlinePipeline,
        camera_names: tuple[str, ...],
        mode: str = LIVE,
        slop_s: float = 0.1,
        queue_size: int = 5,
        time_jump_s: float | None = None,
        max_frame_age_s: float = 1.0,
        transforms: TransformCache | None = None,
        lookup: Callable[[str, str], Any] | None = None,
        on_rewind: Callable[[], None] | None = None,
    ):
        if mode not in (LIVE, REPLAY):
            raise ValueError(f"mode must be {LIVE!r} or {REPLAY!r}, got {mode!r}")
        self.pipeline, self.timer, self.mode = pipeline, pipeline.timer, mode
        self.assembler = FrameAssembler(
            camera_names, slop_s, pipeline.min_cameras, queue_size, pipeline.required, time_jump_s
        )
        self.slot: LatestSlot[FrameSet] | EverySlot[FrameSet] = LatestSlot() if mode == LIVE else EverySlot()
        self.max_frame_age_s = max_frame_age_s
        self.transforms = transforms if transforms is not None else TransformCache()  # empty is falsy
        self.lookup, self.on_rewind = lookup, on_rewind
        self.infos: list[Any] = [None] * len(camera_names)

    # -- messages in (the receiving side) -------------------------------------------------------------

    def on_info(self, camera: int, message: Any) -> None:
        """A camera's CameraInfo (the latest one is used)."""
        self.infos[camera] = message

    def on_sensor(self, sensor: int, message: Any, received_ns: int | None = None) -> list[str]:
        """An image (or a teacher's LiDAR scan) of sensor ``sensor``, received at ``received_ns`` on
        the driver's clock (live, for ``expire``); returns the lines to log."""
        stamp = messages.stamp_ns(message.header.stamp)
        return self._route(self.assembler.add(sensor, stamp, message, received_ns))

    def on_transform(self, transform: Any) -> list[str]:
        """A geometry_msgs/TransformStamped (replay: from /tf_static); a non-finite one is counted
        and skipped."""
        try:
            self.transforms.add(transform)
        except ValueError as e:
            self.timer.drop(BAD_MESSAGE)
            return [f"skipped a transform: {e}"]
        return []

    def expire(self, now_ns: int) -> list[str]:
        """Give out the sets that waited one slop since their first message (live: a dead camera
        delays its set by one slop); returns the lines to log."""
        return self._route(self.assembler.expire(now_ns))

    def rewind(self, back_ns: int) -> list[str]:
        """The driver's clock jumped back by ``back_ns``: start over, as for stamps going back."""
        return self._route([*self.assembler.reset(), Rewound(-1, back_ns)])

    def flush(self) -> list[str]:
        """The recording ended: give out every pending set."""
        return self._route(self.assembler.flush())

    def _route(self, items: list) -> list[str]:
        lines = []
        for item in items:
            if isinstance(item, Rewound):
                self.timer.event(TIME_JUMP)
                self.transforms.clear()
                if self.on_rewind is not None:
                    self.on_rewind()
                what = "the clock" if item.stamp_ns < 0 else f"a message stamped {item.stamp_ns} ns"
                lines.append(
                    f"time went back {item.back_ns / 1e9:.3f} s ({what}): synchronization and transforms reset"
                )
            elif isinstance(item, FrameSet):
                if self.slot.put(item):
                    self.timer.drop(SUPERSEDED)
            else:
                self.timer.drop(item.reason, item.missing)
                lines.append(f"dropped a camera set at {item.stamp_ns} ns: {item.reason} ({item.detail})")
        return lines

    # -- one worker step ---------------------------------------------------------------------------------

    def next_set(self, timeout: float | None = 0.0) -> FrameSet | None:
        """The set to process next (LIVE: the newest; REPLAY: the oldest not processed), waiting up
        to ``timeout`` seconds; None when there is none."""
        return self.slot.get(timeout)

    def step(self, frame_set: FrameSet, now_ns: int | None = None) -> tuple[OnlineResult | None, list[str]]:
        """Run one set through the pipeline: (its result, or None when it was given up; the lines to
        log). LIVE, a set older than max_frame_age_s at ``now_ns`` is dropped as STALE; a set the
        pipeline rejects is counted as ERROR."""
        if self.mode == LIVE and now_ns is not None and is_stale(frame_set.stamp_ns, now_ns, self.max_frame_age_s):
            self.timer.drop(STALE)
            return None, []
        lines = self._look_up(frame_set)
        try:
            result = self.pipeline.process(frame_set.payloads, self.infos, self.transforms, frame_set.stamp_ns)
        except ValueError as e:
            self.timer.drop(ERROR)
            return None, [*lines, f"skipped the camera set at {frame_set.stamp_ns} ns: {e}"]
        return result, lines

    def _look_up(self, frame_set: FrameSet) -> list[str]:
        """Cache the transforms of the set's sensor frames not cached yet, through ``lookup``."""
        if self.lookup is None:
            return []
        lines = []
        frames = [m.header.frame_id for m in frame_set.payloads if m is not None]
        for frame in self.transforms.missing(frames):
            try:
                lines += self.on_transform(self.lookup(self.transforms.base_frame, frame))
            except LookupError as e:
                lines.append(f"no transform yet: {e}")
        return lines
