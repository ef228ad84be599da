"""One run of a plan, trained under a lock and recorded, and the plan's runs as a whole: what is left
to train, the data generated before any worker starts, the checkpoints shipped, the report.

The best teacher on val is shipped to ``<checkpoints>/<teacher_file>`` when it finishes (the
distilled runs read it from there, checked against its record's SHA-256), and the best camera-only
model on val among the CANDIDATES runs to ``<checkpoints>/<student_file>``: what the node runs is the
best of the plan's ways of training a student, on val.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from pathlib import Path

import yaml
from tqdm import tqdm

from mapdistill_core.atomic import atomic_output
from mapdistill_core.checkpoint import read_extra
from mapdistill_core.config import config_to_dict
from mapdistill_core.errors import ConfigError, RunFailedError, RunLockedError, TeacherNotReadyError
from mapdistill_core.experiment.plan import CANDIDATES, ExperimentPlan, Plan, RunSpec
from mapdistill_core.experiment.records import RecordStore, RunRecord, same_config, sha256
from mapdistill_core.experiment.scheduler import Scheduler
from mapdistill_core.results import provenance
from mapdistill_core.training.run_log import RunLog


class Experiment:
    """A plan (``plan``: its runs), its records (``records``) and its run folders (``out``)."""

    def __init__(self, plan: ExperimentPlan, plan_path: str):
        self.plan = Plan(plan, plan_path)
        self.out = Path(plan.out)
        self.records = RecordStore(plan.records, self.plan.teacher_path)

    @property
    def specs(self) -> list[RunSpec]:
        return self.plan.specs

    def record(self, spec: RunSpec) -> RunRecord | None:
        return self.records.get(spec)

    def finished(self) -> dict[str, RunRecord]:
        """The records of the plan's finished runs, by name, in the plan's order."""
        return {s.name: r for s in self.specs if (r := self.record(s)) is not None}

    def teacher_ready(self) -> bool:
        """Whether every teacher run has finished and the best one is the shipped teacher."""
        if self.plan.teacher_config is None:
            return True  # read_model_config checked the file when the plan was built
        records = [self.record(s) for s in self.specs if s.kind == "teacher"]
        if any(r is None for r in records):
            return False
        best = max(records, key=lambda r: r.val_mAP)
        if self.records.teacher_sha256() != best.weights_sha256:
            raise TeacherNotReadyError(
                f"{self.plan.teacher_path}: not the weights of {best.name} (SHA-256 differs from its record "
                f"{self.records.path(best.name)}); restore it or delete the teacher records to retrain"
            )
        return True

    # ---- one run (in a worker process)
    def execute(self, spec: RunSpec) -> RunRecord:
        """Train ``spec`` (resuming from its training state if there is one), evaluate its best
        checkpoint on test once, and write its record. A plan's existing teacher is only evaluated
        (val and test)."""
        from mapdistill_core.checkpoint import load_model
        from mapdistill_core.inference import resolve_device
        from mapdistill_core.training.datasets import build_dataset
        from mapdistill_core.training.evaluation import evaluate_model
        from mapdistill_core.training.trainer import Trainer

        folder = self.out / spec.name
        folder.mkdir(parents=True, exist_ok=True)
        device = resolve_device(self.plan.config.device)
        with open(folder / ".lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunLockedError(f"{folder}: another process is training {spec.name}") from None
            if spec.needs_teacher and not self.teacher_ready():
                raise TeacherNotReadyError(f"{spec.name}: the teacher runs have not finished")
            start = time.perf_counter()
            if spec.train:
                clear_if_stale(spec, folder)
                if not (folder / "last.safetensors").exists():
                    Trainer(spec.config, folder, self.plan.config.device).run(
                        resume=(folder / "state.safetensors").exists()
                    )
                best = folder / "best.safetensors"
                if not best.exists():
                    raise RunFailedError(f"{spec.name}: training ended without a validated checkpoint ({best})")
                extra = read_extra(best)
                val_map, best_epoch = float(extra["val_mAP"]), int(extra["epoch"])
            else:
                best = self.plan.teacher_path
                model, _ = load_model(best, device)
                val = build_dataset(spec.config.data, "val")
                val_map = evaluate_model(model, val, device, spec.config.train.val_samples).mean_ap
                best_epoch = -1
            test = None
            if spec.test:
                model, _ = load_model(best, device)
                test = evaluate_model(model, build_dataset(spec.config.data, "test"), device).to_dict()
            record = RunRecord.with_log(
                RunLog(folder).summary(),
                name=spec.name,
                kind=spec.kind,
                seed=spec.seed,
                setting=spec.setting,
                config=config_to_dict(spec.config),
                teacher_sha256=self.records.teacher_sha256() if spec.needs_teacher else None,
                val_mAP=val_map,
                best_epoch=best_epoch,
                test=test,
                weights_sha256=sha256(best),
                meta=provenance(seconds=round(time.perf_counter() - start, 1), machine=machine()),
            )
            self.records.put(record)
            return record

    # ---- the plan (in the parent)
    def prepare_data(self) -> None:
        """Generate missing data once, before workers start (they would race to write it)."""
        from mapdistill_core.training.datasets import build_dataset, build_train_set

        configs = [s.config.data for s in self.specs]
        for data in {json.dumps(config_to_dict(d), sort_keys=True): d for d in configs}.values():
            build_train_set(data)
            for split in ("val", "test"):
                build_dataset(data, split)

    def run(self, parallel: int | None = None) -> None:
        """Train every run that has no valid record, ``parallel`` at a time (default: the plan's)."""
        parallel = parallel or self.plan.config.parallel
        pending = [s for s in self.specs if self.record(s) is None]
        done = len(self.specs) - len(pending)
        print(f"plan {self.plan.path}: {len(self.specs)} runs, {done} done, {len(pending)} to train", flush=True)
        if not pending:
            return
        self.prepare_data()
        Scheduler(self.plan, self.out, pending, parallel, self.teacher_ready, self.finished_run).run()

    def finished_run(self, spec: RunSpec) -> None:
        """After a worker trained and recorded ``spec``: say how it did, ship it if it is the best."""
        record = self.record(spec)
        test = f", test mAP {100 * record.test_map:.1f}" if record.test is not None else ""
        tqdm.write(f"{spec.name}: done, val mAP {100 * record.val_mAP:.1f}{test}")
        self.ship(spec)

    def report(self) -> dict:
        """Write the report from the records of the finished runs (see report)."""
        from mapdistill_core.experiment.report import write_report

        records = self.finished()
        if not records:
            raise ConfigError(
                f"{self.records.folder}: no record of a finished run of {self.plan.path}; the report reads the "
                "records committed in a clone of the repository (its results/ folder, not part of a pip install): "
                "run it there, or train the plan first (mapdistill experiment without --report-only)"
            )
        pending = [s.name for s in self.specs if s.name not in records]
        return write_report(self.plan, records, pending, self.architecture())

    def architecture(self) -> dict[str, dict]:
        """Parameter counts (millions) of the teacher and student architectures. Speed is measured
        by ``make bench`` (benchmarks/run_all.py), side by side, not here."""
        from mapdistill_core.models.model import build_model

        teacher = next(s for s in self.specs if s.kind == "teacher").config.model
        return {
            name: {"params_m": sum(p.numel() for p in build_model(config).parameters()) / 1e6}
            for name, config in (("teacher", teacher), ("student", self.plan.student_config.model))
        }

    def ship(self, spec: RunSpec) -> None:
        """After ``spec`` finished: copy its weights to the checkpoints folder if it is the best on
        val among the teachers, or among the camera-only students and distilled students."""
        plan = self.plan.config
        rivals = ("teacher",) if spec.kind == "teacher" else CANDIDATES
        files = {"teacher": plan.teacher_file, "student": plan.student_file}
        target = files.get("student" if spec.kind in CANDIDATES else spec.kind)
        if target is None or (spec.kind == "teacher" and self.plan.teacher_config is None):
            return
        records = [r for s in self.specs if s.kind in rivals and (r := self.record(s)) is not None]
        best = max(records, key=lambda r: r.val_mAP)
        if best.name != spec.name:
            return
        with atomic_output(Path(plan.checkpoints) / target) as tmp:
            shutil.copyfile(self.out / spec.name / "best.safetensors", tmp)
        if spec.kind == "teacher":
            self.records.teacher_replaced()
        print(f"{spec.name}: best {spec.kind} on val so far, shipped as {Path(plan.checkpoints) / target}")


def clear_if_stale(spec: RunSpec, folder: Path) -> None:
    """Empty a run folder that was trained with another config than the plan's now."""
    config_file = folder / "config.yaml"
    if config_file.exists() and not same_config(
        yaml.safe_load(config_file.read_text(encoding="utf-8")), spec.config, config_file
    ):
        print(f"{folder}: trained with another config than the plan's; training {spec.name} again")
        for item in folder.iterdir():
            if item.name not in (".lock", "worker.log"):
                item.unlink()


def machine() -> str:
    """The host, in words: CPU model, cores, GPU, torch version."""
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} cores, {gpu}, torch {torch.__version__}"
