"""Latency per stage of the online node, frame and drop counters, and their diagnostic_msgs form.

Thread-safe: the subscriber side counts drops while the inference worker records stage times and
a timer reads the summary. Memory is bounded: the last ``window`` times per stage.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from mapdistill_ros import messages
from mapdistill_ros.online.frame_sync import SUPERSEDED, TIME_JUMP

STAGES = ("decode", "preprocess", "inference", "postprocess", "publish")
DIAGNOSTIC_NAME = "mapdistill: online map"


class StageTimer:
    """Per-stage wall times (ms) in ring buffers of ``window`` entries, frames done and drops by reason."""

    def __init__(self, stages: Sequence[str] = STAGES, window: int = 300):
        self.window = window
        self._lock = threading.Lock()
        self._times = {name: deque(maxlen=window) for name in stages}
        self._frames = 0
        self._dropped: Counter[str] = Counter()
        self._events: Counter[str] = Counter()
        self._missing: list[str] = []

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the body as stage ``name`` (not recorded when the body raises)."""
        start = time.perf_counter()
        yield
        self.record(name, 1000.0 * (time.perf_counter() - start))

    def record(self, name: str, ms: float) -> None:
        if name not in self._times:
            raise ValueError(f"unknown stage '{name}', expected one of {list(self._times)}")
        with self._lock:
            self._times[name].append(ms)

    def frame_done(self, missing: Sequence[str] = ()) -> None:
        """Count a processed frame; ``missing`` names the cameras it went without."""
        with self._lock:
            self._frames += 1
            self._missing = list(missing)

    def drop(self, reason: str, missing: Sequence[str] = ()) -> None:
        """Count a frame (or message) given up for ``reason`` (frame_sync's constants, or "error");
        ``missing`` names the cameras a set given up for too few cameras went without."""
        with self._lock:
            self._dropped[reason] += 1
            if missing:
                self._missing = list(missing)

    def event(self, name: str) -> None:
        """Count an event that is not a frame (frame_sync.TIME_JUMP: time went back, the node reset)."""
        with self._lock:
            self._events[name] += 1

    def summary(self) -> dict:
        """{"frames": int, "dropped": {reason: int}, "events": {name: int}, "missing": [camera],
        "stages": {name: {count, p50_ms, p95_ms}}}.

        Percentiles are numpy's (linear interpolation) over the window; None for a stage not yet timed.
        """
        with self._lock:
            stages = {}
            for name, times in self._times.items():
                p50, p95 = np.percentile(times, [50, 95]).tolist() if times else (None, None)
                stages[name] = {"count": len(times), "p50_ms": p50, "p95_ms": p95}
            return {
                "frames": self._frames,
                "dropped": dict(self._dropped),
                "events": dict(self._events),
                "missing": list(self._missing),
                "stages": stages,
            }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def diagnostic_array(f, summary: dict, previous: dict | None, stamp_ns: int):
    """diagnostic_msgs/DiagnosticArray with one status named DIAGNOSTIC_NAME, from two summaries.

    Level WARN when, since ``previous`` (the summary of the last report, None at the first), no frame
    was processed, frames were dropped for a reason other than SUPERSEDED (the worker being slower
    than the cameras) or time went back (the node reset), or when the last frame went without some
    camera; else OK.
    """
    status_type = type(f.new("diagnostic_msgs/msg/DiagnosticStatus"))
    previous = previous or {"frames": 0, "dropped": {}, "events": {}}
    frames = summary["frames"] - previous["frames"]
    dropped = {r: n - previous["dropped"].get(r, 0) for r, n in sorted(summary["dropped"].items())}
    jumps = summary["events"].get(TIME_JUMP, 0) - previous.get("events", {}).get(TIME_JUMP, 0)
    problems = [] if frames else ["no frame processed"]
    lost = [f"{n} {r}" for r, n in dropped.items() if n and r != SUPERSEDED]
    if lost:
        problems.append(f"dropped {', '.join(lost)}")
    if jumps:
        problems.append(f"time went back {jumps} time(s): reset")
    if summary["missing"]:
        problems.append(f"missing {', '.join(summary['missing'])}")
    values = [("frames", summary["frames"]), ("frames_since_last_report", frames)]
    values += [(f"dropped_{r}", n) for r, n in sorted(summary["dropped"].items())]
    values.append(("time_jumps", summary["events"].get(TIME_JUMP, 0)))
    values.append(("missing_cameras", ", ".join(summary["missing"])))
    for name, stats in summary["stages"].items():
        values += [(f"{name}_p50_ms", _ms(stats["p50_ms"])), (f"{name}_p95_ms", _ms(stats["p95_ms"]))]
    status = f.new(
        "diagnostic_msgs/msg/DiagnosticStatus",
        level=status_type.WARN if problems else status_type.OK,
        name=DIAGNOSTIC_NAME,
        message="; ".join(problems) or "ok",
        hardware_id="mapdistill",
        values=[f.new("diagnostic_msgs/msg/KeyValue", key=k, value=str(v)) for k, v in values],
    )
    return f.new("diagnostic_msgs/msg/DiagnosticArray", header=messages.header(f, stamp_ns, ""), status=[status])
