"""The online node's receiving side, without rclpy: camera (and LiDAR) messages in, sets out.

``CameraFeed`` puts each message into the FrameAssembler, hands every set it gives out to the
inference worker's LatestSlot (latest wins) and counts in the StageTimer everything given up: sets
too late, with too few cameras or without a required sensor, and sets replaced in the slot before the worker took them
(SUPERSEDED). The node calls ``add`` from its subscriptions and ``expire`` from a timer on its
clock, and logs the lines they return; the worker takes sets from ``slot``. When time goes back
(the stamps, or the node's clock: ``rewind``) the feed starts over, counts a TIME_JUMP and calls
``on_rewind`` so that the node forgets what else it keyed by time (its transforms).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mapdistill_ros.online.frame_sync import SUPERSEDED, TIME_JUMP, FrameAssembler, FrameSet, LatestSlot, Rewound
from mapdistill_ros.online.stage_timer import StageTimer


class CameraFeed:
    """Args:
    assembler: the synchronization policy (camera names, slop, minimum cameras, queue size).
    timer: where drops and time jumps are counted (the node's /diagnostics read it).
    on_rewind: called after time went back (the node clears its transforms).
    """

    def __init__(self, assembler: FrameAssembler, timer: StageTimer, on_rewind: Callable[[], None] | None = None):
        self.assembler, self.timer, self.on_rewind = assembler, timer, on_rewind
        self.slot: LatestSlot[FrameSet] = LatestSlot()

    def add(self, sensor: int, stamp_ns: int, message: Any, received_ns: int) -> list[str]:
        """One sensor's message (index into the assembler's sensor_names, capture stamp, the message,
        receive time on the node's clock); returns what to log as warnings."""
        return self._route(self.assembler.add(sensor, stamp_ns, message, received_ns))

    def expire(self, now_ns: int) -> list[str]:
        """Release the sets that waited ``slop`` since their first message; returns warnings."""
        return self._route(self.assembler.expire(now_ns))

    def rewind(self, back_ns: int) -> list[str]:
        """The node's clock jumped back by ``back_ns``: start over as for stamps that go back."""
        return self._route([*self.assembler.reset(), Rewound(-1, back_ns)])

    def _route(self, items: list) -> list[str]:
        warnings = []
        for item in items:
            if isinstance(item, Rewound):
                self.timer.event(TIME_JUMP)
                if self.on_rewind is not None:
                    self.on_rewind()
                what = "the clock" if item.stamp_ns < 0 else f"a message stamped {item.stamp_ns} ns"
                warnings.append(
                    f"time went back {item.back_ns / 1e9:.3f} s ({what}): synchronization and transforms reset"
                )
            elif isinstance(item, FrameSet):
                if self.slot.put(item):
                    self.timer.drop(SUPERSEDED)
            else:
                self.timer.drop(item.reason, item.missing)
                warnings.append(f"dropped a camera set: {item.reason} ({item.detail})")
        return warnings
