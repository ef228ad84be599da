"""Run records: what a finished run leaves, ``<records>/<name>.json``, meant to be committed.

A record holds the run's config, its val curve and gradient shares (from its log), its val and test
mAP and its provenance. ``RecordStore`` gives a run's record only while it still describes the run:
made with the run's config and, for a distilled run, the teacher weights the plan uses now (by
SHA-256); a plan started again skips the runs whose record it gives.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from mapdistill_core.config import config_from_dict
from mapdistill_core.errors import ConfigError
from mapdistill_core.experiment.plan import RunSpec
from mapdistill_core.results import write_json
from mapdistill_core.training.config import ExperimentConfig
from mapdistill_core.training.run_log import LogSummary


@dataclass(frozen=True)
class RunRecord:
    """One finished run.

    Attributes:
        name, kind, seed: the run (see ``RunSpec``); seed -1 for a plan's existing teacher.
        setting: the distillation setting of a distilled run (lambdas and switches), else None.
        config: the experiment config as trained (``config_to_dict``).
        teacher_sha256: SHA-256 of the teacher weights a distilled run learnt from, else None.
        steps, val_curve, grad_share, grad_cosine: from the run's log (``LogSummary``).
        val_mAP, best_epoch: the kept checkpoint's val mAP (0..1) and epoch (-1: not trained here).
        test: the kept checkpoint's test metrics (``MetricsResult.to_dict``), None for val-only runs.
        weights_sha256: SHA-256 of the kept checkpoint.
        meta: provenance (commit, time, seconds, machine).
    """

    name: str
    kind: str
    seed: int
    setting: dict | None = None
    config: dict | None = None
    teacher_sha256: str | None = None
    steps: int = 0
    val_curve: tuple[dict, ...] = ()
    grad_share: tuple[dict, ...] = ()
    grad_cosine: tuple[dict, ...] = ()
    val_mAP: float = 0.0
    best_epoch: int = -1
    test: dict | None = None
    weights_sha256: str = ""
    meta: dict | None = None

    @property
    def group(self) -> str:
        """The runs that differ from this one only in their seed: the name without "-s<seed>"
        ("distilled-s1" -> "distilled", "unlabeled60-s0" -> "unlabeled60", "teacher" -> "teacher")."""
        return re.sub(r"-s\d+$", "", self.name)

    @property
    def test_map(self) -> float | None:
        return None if self.test is None else self.test["mAP"]

    @classmethod
    def with_log(cls, log: LogSummary, **values) -> RunRecord:
        return cls(**values, **asdict(log))

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict, source: str | Path) -> RunRecord:
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: not a run record (not a JSON object)")
        missing = {"name", "kind", "seed"} - set(data)
        if missing:
            raise ConfigError(f"{source}: not a run record (no {', '.join(sorted(missing))})")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("val_curve", "grad_share", "grad_cosine"):
            values[key] = tuple(values.get(key) or ())
        return cls(**values)

    @classmethod
    def read(cls, path: Path) -> RunRecord:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ConfigError(f"{path}: not a readable run record ({error})") from error
        return cls.from_dict(data, path)

    def write(self, path: Path) -> None:
        write_json(path, self.to_dict())


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def same_config(stored: dict | None, config: ExperimentConfig, source: str | Path) -> bool:
    """Whether a stored config (a record's or a run folder's) is ``config``, defaults filled in."""
    if not isinstance(stored, dict):
        return False
    try:
        return config_from_dict(ExperimentConfig, stored, str(source)) == config
    except (ConfigError, ValueError, TypeError):
        return False


class RecordStore:
    """The records of a plan's runs in ``folder``, checked against the teacher at ``teacher_path``."""

    def __init__(self, folder: str | Path, teacher_path: Path):
        self.folder, self.teacher_path = Path(folder), teacher_path
        self._teacher_sha: str | None = None

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.json"

    def get(self, spec: RunSpec) -> RunRecord | None:
        """The run's record if it was made with the run's config (and teacher), else None."""
        path = self.path(spec.name)
        if not path.exists():
            return None
        record = RunRecord.read(path)
        if not same_config(record.config, spec.config, path):
            return None
        if spec.needs_teacher and record.teacher_sha256 != self.teacher_sha256():
            return None
        if not spec.train and record.weights_sha256 != self.teacher_sha256():
            return None
        return record

    def put(self, record: RunRecord) -> None:
        record.write(self.path(record.name))

    def teacher_sha256(self) -> str | None:
        """SHA-256 of the teacher weights the distilled runs use, None while there is none."""
        if self._teacher_sha is None and self.teacher_path.exists():
            self._teacher_sha = sha256(self.teacher_path)
        return self._teacher_sha

    def teacher_replaced(self) -> None:
        """Forget the teacher's SHA-256 (a new teacher was shipped)."""
        self._teacher_sha = None
