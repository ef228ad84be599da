"""Synchronization policy of the online node, in plain Python (no message_filters, no rclpy).

``FrameAssembler`` groups per-sensor messages into sets of one capture: a set is ready when every
camera (and every required sensor, such as a teacher's LiDAR) arrived within ``slop_s`` of each
other, or, when one drops out, as soon as a newer capture has started or (live, ``expire``)
``slop_s`` after its first message was received, and the set has at least ``min_cameras`` cameras
and every required sensor (the set then names the missing cameras); any other set is dropped with
a reason. A message stamped more than ``rewind_s`` before the newest stamp given out means time
went back (a bag played again or looped, a restarted recording): the assembler gives out what it
holds, forgets every stamp (``reset``) and starts over from that message, reporting a ``Rewound``;
a smaller step back is a late message. ``LatestSlot`` hands the newest ready set from the
subscriber side to the inference worker, replacing any set still waiting (live); ``EverySlot`` hands
over every set in order (replay, where there is no deadline).
Memory is bounded live: at most ``queue_size`` pending sets, one waiting set.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")

LATE = "late"
TOO_FEW_CAMERAS = "too_few_cameras"
MISSING_REQUIRED = "missing_required"
SUPERSEDED = "superseded"
STALE = "stale"
TIME_JUMP = "time_jump"


@dataclass
class FrameSet:
    """One capture of the rig.

    Attributes:
        stamps: per sensor (the cameras in rig order, then the required sensors) its stamp in ns,
            None while missing.
        payloads: per sensor what arrived with it (the image or point cloud message), None while missing.
        opened_ns: when its first message was received (the receiver's clock, ns); None offline.
    """

    stamps: list[int | None]
    payloads: list[Any]
    opened_ns: int | None = None

    @property
    def stamp_ns(self) -> int:
        """The earliest capture time in the set: the set's stamp."""
        return min(s for s in self.stamps if s is not None)

    @property
    def latest_ns(self) -> int:
        return max(s for s in self.stamps if s is not None)

    @property
    def present(self) -> int:
        """Sensors with a message."""
        return sum(s is not None for s in self.stamps)

    @property
    def missing(self) -> list[int]:
        """Indices of the sensors without a message."""
        return [i for i, s in enumerate(self.stamps) if s is None]


@dataclass(frozen=True)
class Dropped:
    """A message or set given up: ``reason`` is one of LATE, TOO_FEW_CAMERAS, MISSING_REQUIRED;
    ``detail`` says more; ``missing`` names the sensors a set went without."""

    stamp_ns: int
    reason: str
    detail: str
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rewound:
    """Time went back: a message at ``stamp_ns`` came ``back_ns`` before the newest stamp given out
    (or the clock jumped back by ``back_ns``); what was pending was given out and the stamps forgotten."""

    stamp_ns: int
    back_ns: int


class FrameAssembler:
    """Groups (sensor index, stamp, payload) into FrameSets.

    Args:
        camera_names: the rig's cameras; messages name them by index into this list.
        slop_s: largest spread of stamps within one set, seconds; live, also how long after its
            first message an incomplete set waits for the rest (``expire``).
        min_cameras: fewest cameras a set given up on may have and still be used.
        queue_size: most sets pending at once; beyond it the oldest is given up on.
        required: sensors every set needs besides the cameras (a teacher's "LIDAR_TOP"); messages
            name them by index after the cameras (len(camera_names), ...).
        rewind_s: a message stamped more than this before the newest stamp given out starts over
            (time went back); None: never (every such message is late).
    """

    def __init__(
        self,
        camera_names: Sequence[str],
        slop_s: float,
        min_cameras: int,
        queue_size: int,
        required: Sequence[str] = (),
        rewind_s: float | None = None,
    ):
        self.camera_names, self.required = tuple(camera_names), tuple(required)
        self.sensor_names = self.camera_names + self.required
        num_cameras = len(self.camera_names)
        if not 1 <= min_cameras <= num_cameras or queue_size < 1 or slop_s < 0 or (rewind_s or 0) < 0:
            raise ValueError(
                f"need 1 <= min_cameras <= {num_cameras}, queue_size >= 1, slop_s >= 0 and rewind_s >= 0, got "
                f"min_cameras={min_cameras}, queue_size={queue_size}, slop_s={slop_s}, rewind_s={rewind_s}"
            )
        self.rewind_ns = None if rewind_s is None else rewind_s * 1e9
        self.num_cameras, self.min_cameras, self.queue_size = num_cameras, min_cameras, queue_size
        self.num_sensors = len(self.sensor_names)
        self.slop_ns = slop_s * 1e9
        self.pending: list[FrameSet] = []
        self.watermark_ns: int | None = None  # newest stamp given out: messages at or before it are late

    def add(
        self, camera: int, stamp_ns: int, payload: Any, received_ns: int | None = None
    ) -> list[FrameSet | Dropped | Rewound]:
        """Take one message (received at ``received_ns`` on the receiver's clock, for ``expire``);
        returns the sets it made ready and what was dropped, oldest first (after a time jump: the
        sets given out, the ``Rewound``, then what the message made ready)."""
        if not 0 <= camera < self.num_sensors:
            raise ValueError(f"sensor index {camera} is not one of 0..{self.num_sensors - 1}")
        back = None if self.watermark_ns is None else self.watermark_ns - stamp_ns
        if back is not None and self.rewind_ns is not None and back > self.rewind_ns:
            given = self.reset()
            return [*given, Rewound(stamp_ns, back), *self.add(camera, stamp_ns, payload, received_ns)]
        if self.watermark_ns is not None and stamp_ns <= self.watermark_ns:
            name = self.sensor_names[camera]
            return [Dropped(stamp_ns, LATE, f"{name}: a set at or after this stamp was already given out")]
        fits = [
            s
            for s in self.pending
            if s.stamps[camera] is None and max(s.latest_ns, stamp_ns) - min(s.stamp_ns, stamp_ns) <= self.slop_ns
        ]
        if fits:
            target = min(fits, key=lambda s: abs(s.stamp_ns - stamp_ns))
        else:
            target = FrameSet([None] * self.num_sensors, [None] * self.num_sensors, received_ns)
            self.pending.append(target)
        target.stamps[camera], target.payloads[camera] = stamp_ns, payload
        self.pending.sort(key=lambda s: s.stamp_ns)
        if target.present == self.num_sensors:
            done = [s for s in self.pending if s.stamp_ns <= target.stamp_ns]
        else:
            done = [s for s in self.pending if stamp_ns - s.stamp_ns > self.slop_ns]  # a newer capture began
            excess = len(self.pending) - len(done) - self.queue_size
            done += self.pending[len(done) : len(done) + max(0, excess)]
        return [self._give_out(s) for s in done]

    def expire(self, now_ns: int) -> list[FrameSet | Dropped]:
        """Give out the sets whose first message was received ``slop_s`` or more before ``now_ns``
        (live: a camera that died does not hold its set until the next capture starts)."""
        due = [s for s in self.pending if s.opened_ns is not None and now_ns - s.opened_ns >= self.slop_ns]
        return [self._give_out(s) for s in due]

    def flush(self) -> list[FrameSet | Dropped]:
        """Give out every pending set, oldest first (the end of a recording)."""
        return [self._give_out(s) for s in list(self.pending)]

    def reset(self) -> list[FrameSet | Dropped]:
        """Give out every pending set, then forget the stamps given out: any stamp is new again."""
        given = self.flush()
        self.watermark_ns = None
        return given

    def _give_out(self, frame_set: FrameSet) -> FrameSet | Dropped:
        self.pending.remove(frame_set)
        if self.watermark_ns is None or frame_set.latest_ns > self.watermark_ns:
            self.watermark_ns = frame_set.latest_ns
        missing = tuple(self.sensor_names[i] for i in frame_set.missing)
        cameras = sum(s is not None for s in frame_set.stamps[: self.num_cameras])
        if cameras < self.min_cameras:
            detail = (
                f"{cameras} of {self.num_cameras} cameras (minimum {self.min_cameras}), missing {', '.join(missing)}"
            )
            return Dropped(frame_set.stamp_ns, TOO_FEW_CAMERAS, detail, missing)
        absent = [name for name in self.required if name in missing]
        if absent:
            return Dropped(frame_set.stamp_ns, MISSING_REQUIRED, f"no {', '.join(absent)} message", missing)
        return frame_set


def is_stale(stamp_ns: int, now_ns: int, max_age_s: float) -> bool:
    """Whether a capture at ``stamp_ns`` is older than ``max_age_s`` at clock time ``now_ns``."""
    return now_ns - stamp_ns > max_age_s * 1e9


class LatestSlot(Generic[T]):
    """Single-slot, latest-wins handoff between threads.

    ``put`` replaces an item still waiting (and counts it in ``dropped``); ``get`` takes the item.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._item: T | None = None
        self.dropped = 0

    def put(self, item: T) -> bool:
        """Store ``item``; True when it replaced one that was never taken."""
        with self._condition:
            replaced = self._item is not None
            self.dropped += replaced
            self._item = item
            self._condition.notify()
            return replaced

    def get(self, timeout: float | None = None) -> T | None:
        """The newest item, waiting up to ``timeout`` seconds (None: forever); None on timeout."""
        with self._condition:
            self._condition.wait_for(lambda: self._item is not None, timeout)
            item, self._item = self._item, None
            return item


class EverySlot(Generic[T]):
    """First-in, first-out handoff: every item is taken, in order; ``put`` never replaces one."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._items: deque[T] = deque()

    def put(self, item: T) -> bool:
        """Queue ``item``; always False (nothing is replaced)."""
        with self._condition:
            self._items.append(item)
            self._condition.notify()
            return False

    def get(self, timeout: float | None = None) -> T | None:
        """The oldest item, waiting up to ``timeout`` seconds (None: forever); None on timeout."""
        with self._condition:
            self._condition.wait_for(lambda: bool(self._items), timeout)
            return self._items.popleft() if self._items else None
