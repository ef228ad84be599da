"""A training run's log, ``<run>/log.jsonl``: one JSON object per line, written by the Trainer, read
here by everything else (the experiment's records and progress bars, a resumed run).

Lines: ``{"meta": ...}`` at the start; ``{"step", "epoch", "lr", "loss": {...}}`` per step;
``{"epoch", "step", "val": {"mAP", ...}}`` per validation; ``{"step", "grad_share", "grad_cosine"}``
where gradient shares were measured; ``{"step", "resumed": ...}`` and ``{"step", "interrupted"}``.
A line torn by a kill is skipped when read.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from mapdistill_core.atomic import atomic_output

NAME = "log.jsonl"


@dataclass(frozen=True)
class LogSummary:
    """What a finished run's record keeps of its log.

    Attributes:
        steps: the last step logged (0 without a log).
        val_curve: per validation, ``{"epoch", "step", "mAP"}``.
        grad_share: per measurement, ``{"step", <term>: share of the gradient norm}``.
        grad_cosine: per measurement, ``{"step", <term>: cosine with the map loss's gradient}``.
    """

    steps: int
    val_curve: tuple[dict, ...]
    grad_share: tuple[dict, ...]
    grad_cosine: tuple[dict, ...]


class RunLog:
    """The log of the run in ``folder``."""

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / NAME

    def append(self, entry: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    def entries(self) -> list[dict]:
        """Every whole line, in order (none without a log)."""
        if not self.path.exists():
            return []
        return [entry for line in self.path.read_text(encoding="utf-8").splitlines() if (entry := _parse(line))]

    def truncate(self, step: int) -> None:
        """Keep only the entries of steps up to ``step`` (a run killed after its last checkpoint logged
        steps it will train again) and drop a torn line, so that a resumed curve continues it."""
        if not self.path.exists():
            return
        kept = [e for e in self.entries() if e.get("step", 0) <= step]
        with atomic_output(self.path) as tmp:
            tmp.write_text("".join(json.dumps(e) + "\n" for e in kept), encoding="utf-8")

    def last_step(self) -> int:
        """The last step logged, read from the end of the file only (0 without a log)."""
        if not self.path.exists():
            return 0
        with open(self.path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            lines = f.read().decode("utf-8", "replace").splitlines()
        for line in reversed(lines):
            entry = _parse(line)
            if entry and isinstance(entry.get("step"), int):
                return entry["step"]
        return 0

    def summary(self) -> LogSummary:
        entries = self.entries()
        return LogSummary(
            steps=max((e.get("step", 0) for e in entries), default=0),
            val_curve=tuple(
                {"epoch": e["epoch"], "step": e["step"], "mAP": e["val"]["mAP"]} for e in entries if "val" in e
            ),
            grad_share=tuple({"step": e["step"], **e["grad_share"]} for e in entries if "grad_share" in e),
            grad_cosine=tuple({"step": e["step"], **e["grad_cosine"]} for e in entries if "grad_cosine" in e),
        )


def _parse(line: str) -> dict | None:
    try:
        entry = json.loads(line)
    except json.JSONDecodeError:
        return None
    return entry if isinstance(entry, dict) else None
