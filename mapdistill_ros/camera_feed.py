"""The online node's receiving side, without rclpy: camera (and LiDAR) messages in, sets out.

``CameraFeed`` puts each message into the FrameAssembler, hands every set it gives out to the
inference worker's LatestSlot (latest wins) and counts in the StageTimer everything given up: sets
too late, with too few cameras or without a required sensor, and sets replaced in the slot before the worker took them
(SUPERSEDED). The node calls ``add`` from its subscriptions and ``expire`` from a timer on its
clock, and logs the lines they return; the worker takes sets from ``slot``.
"""

from __future__ import annotations

from typing import Any

from mapdistill_ros.frame_sync import SUPERSEDED, FrameAssembler, FrameSet, LatestSlot
from mapdistill_ros.stage_timer import StageTimer


class CameraFeed:
    """Args:
    assembler: the synchronization policy (camera names, slop, minimum cameras, queue size).
    timer: where drops are counted (the node's /diagnostics read it).
    """

    def __init__(self, assembler: FrameAssembler, timer: StageTimer):
        self.assembler, self.timer = assembler, timer
        self.slot: LatestSlot[FrameSet] = LatestSlot()

    def add(self, sensor: int, stamp_ns: int, message: Any, received_ns: int) -> list[str]:
        """One sensor's message (index into the assembler's sensor_names, capture stamp, the message,
        receive time on the node's clock); returns what to log as warnings."""
        return self._route(self.assembler.add(sensor, stamp_ns, message, received_ns))

    def expire(self, now_ns: int) -> list[str]:
        """Release the sets that waited ``slop`` since their first message; returns warnings."""
        return self._route(self.assembler.expire(now_ns))

    def _route(self, items: list) -> list[str]:
        warnings = []
        for item in items:
            if isinstance(item, FrameSet):
                if self.slot.put(item):
                    self.timer.drop(SUPERSEDED)
            else:
                self.timer.drop(item.reason, item.missing)
                warnings.append(f"dropped a camera set: {item.reason} ({item.detail})")
        return warnings
