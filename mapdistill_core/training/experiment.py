"""The knowledge-distillation benchmark: a plan of training runs, run resumably, side by side.

A plan (config/experiment_kd.yaml) names the teacher (a config to train, or existing weights), the
student config, the distillation setting, the seeds, a grid of distillation settings screened on
val against the student alone on the same schedule (several seeds: the noise floor), the ablations
(each loss alone) and a long-schedule student curve. Runs are listed, and scheduled, in the order
teacher, long curve, references, grid, main runs, ablations. Each run trains on the train split
and keeps the checkpoint with the best val mAP; the main runs and ablations are evaluated once on
test.

Every finished run leaves a small record, ``<records>/<name>.json`` (config, val curve, gradient
shares, test metrics, provenance), meant to be committed: a plan started again, on this machine or
on a fresh clone, skips every run whose record matches its config and teacher, resumes an
interrupted run from its training state (``<out>/<name>/state.safetensors``), and trains the rest.
Runs go to worker processes (``parallel`` of them side by side), each holding a lock on its run
folder; the parent shows one bar for the whole plan (with its ETA) and one per active run.

The best teacher on val is shipped to ``<checkpoints>/<teacher_file>`` when it finishes (the
distilled runs read it from there, checked against its record's SHA-256), and the best camera-only
model on val among the CANDIDATES runs (student, distilled, unlabelled drives and their pseudo-label
control; the ablations, grid, references and upper bound are measurements) to
``<checkpoints>/<student_file>``: what the node runs is the best of the plan's ways of training a
student, on val.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from mapdistill_core.atomic import atomic_output
from mapdistill_core.checkpoint import read_extra, read_model_config
from mapdistill_core.config import config_from_dict, config_to_dict, input_file, load_config, number
from mapdistill_core.distill.config import TERMS, DistillConfig
from mapdistill_core.errors import ConfigError
from mapdistill_core.results import provenance, write_json
from mapdistill_core.training.config import ExperimentConfig

CANDIDATES = ("student", "distilled", "unlabeled", "pseudo")
"""Run kinds whose best on val is shipped as the camera-only model; ablations, grid, references and
the upper bound (labels the study pretends not to have) are measurements."""


@dataclass(frozen=True)
class ExperimentPlan:
    """config/experiment_synthetic.yaml.

    Attributes:
        teacher: experiment config of the teacher, trained once per ``teacher_seeds`` (the best on
            val is the teacher of every distilled run).
        teacher_weights: an existing teacher checkpoint instead: no teacher is trained.
        student: experiment config of the student (data and training included); the distilled
            runs use it with a ``distill`` section, so both get the same schedule.
        distill: lambda_1..3 (relation, feature, head) and the other DistillConfig keys but
            ``teacher``: the setting of the distilled runs and the base of the grid and ablations.
        grid: distillation settings (keys of ``distill``) tried on val only, seed ``grid_seed``,
            for ``grid_epochs`` epochs (0: the student's); the report says which is best on val.
        reference_seeds: the student alone on the grid's schedule, once per seed (val only): the
            noise floor a grid setting must clear (its val gain over the references' mean above
            twice their standard deviation) to count as better.
        seeds: seeds of the student and distilled runs.
        ablation_seeds: seeds of the ablations, each loss alone (empty: none).
        long_epochs, long_seeds: the student alone on a long schedule (val only), to show where
            its val curve flattens (0 or no seeds: none).
        unlabeled_scenes, unlabeled_seeds: per number N of unlabelled drives and seed, three runs on
            the student's schedule: "unlabeled<N>" (the plan's distillation, the N drives mixed in
            without their map), "pseudo<N>" (the same drives, every lambda 0: the teacher's pseudo
            labels alone, the control that separates more data from distillation) and "upper<N>"
            (the same drives with their map, no teacher: what labelling them would give).
        out: runs folder (weights and training state; not committed).
        records: folder of the per-run records (committed); results, table: the report (with a
            PNG of the val curves beside the table).
        checkpoints, teacher_file, student_file: where the best teacher and the best camera-only
            model are shipped (checkpoints/teacher_file is the distilled runs' teacher).
        readme: a file whose benchmark markers receive the main table ("" for none).
        device: training device; parallel: training processes side by side.
    """

    teacher: str = field(default="config/synthetic_teacher.yaml", metadata=input_file("config"))
    teacher_weights: str = field(default="", metadata=input_file("checkpoints"))
    teacher_seeds: tuple[int, ...] = field(default=(0,), metadata=number(0))
    student: str = field(default="config/synthetic_student.yaml", metadata=input_file("config"))
    distill: dict[str, Any] = field(default_factory=lambda: {"relation": 1.0, "feature": 1.0, "head": 1.0})
    grid: tuple[dict[str, Any], ...] = ()
    grid_seed: int = field(default=0, metadata=number(0))
    grid_epochs: int = field(default=0, metadata=number(0))
    reference_seeds: tuple[int, ...] = field(default=(), metadata=number(0))
    seeds: tuple[int, ...] = field(default=(0, 1, 2), metadata=number(0))
    ablation_seeds: tuple[int, ...] = field(default=(0, 1), metadata=number(0))
    long_epochs: int = field(default=0, metadata=number(0))
    long_seeds: tuple[int, ...] = field(default=(), metadata=number(0))
    unlabeled_scenes: tuple[int, ...] = field(default=(), metadata=number(1))
    unlabeled_seeds: tuple[int, ...] = field(default=(), metadata=number(0))
    out: str = "runs/experiment_synthetic"
    records: str = "results/synthetic_kd"
    results: str = "results/synthetic_kd.json"
    table: str = "results/synthetic_kd.md"
    checkpoints: str = "checkpoints"
    teacher_file: str = "synthetic_teacher.safetensors"
    student_file: str = "synthetic_student.safetensors"
    readme: str = "README.md"
    device: str = "auto"
    parallel: int = field(default=1, metadata=number(1))

    def __post_init__(self) -> None:
        if self.parallel < 1:
            raise ValueError(f"parallel must be >= 1, got {self.parallel}")
        if self.grid_epochs < 0 or self.long_epochs < 0:
            raise ValueError(f"grid_epochs and long_epochs must be >= 0, got {self.grid_epochs}, {self.long_epochs}")
        if not self.seeds:
            raise ValueError("seeds must name at least one seed")
        allowed = {f.name for f in dataclasses.fields(DistillConfig)} - {"teacher"}
        for setting in (self.distill, *self.grid):
            if not isinstance(setting, dict) or set(setting) - allowed:
                raise ValueError(f"distill and grid entries take the keys {sorted(allowed)}, got {setting}")


@dataclass(frozen=True)
class RunSpec:
    """One training run of a plan.

    Attributes:
        name: folder and record name, e.g. "distilled-s1", "relation-s0", "grid2-s0".
        kind: "teacher", "student", "distilled", a loss alone ("relation", ...) or "grid".
        config: what the run trains (a distilled run's teacher is in ``config.distill``).
        test: evaluate on test once trained (grid runs are val only).
        setting: the distillation setting (lambdas, temperature, ...) of a distilled run.
        train: False for a plan's existing teacher weights, which are only evaluated.
    """

    name: str
    kind: str
    seed: int
    config: ExperimentConfig
    test: bool = True
    setting: dict | None = None
    train: bool = True

    @property
    def needs_teacher(self) -> bool:
        return self.config.distill is not None


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def with_seed(config: ExperimentConfig, seed: int) -> ExperimentConfig:
    return dataclasses.replace(config, train=dataclasses.replace(config.train, seed=seed))


def with_epochs(config: ExperimentConfig, epochs: int) -> ExperimentConfig:
    return dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=epochs))


class Experiment:
    """A plan's runs, their records, and the order they can run in (see the module docstring)."""

    def __init__(self, plan: ExperimentPlan, plan_path: str):
        self.plan, self.plan_path = plan, plan_path
        self.out, self.records = Path(plan.out), Path(plan.records)
        self.student_config = load_config(ExperimentConfig, plan.student)
        self.teacher_config = None if plan.teacher_weights else load_config(ExperimentConfig, plan.teacher)
        self.teacher_path = Path(plan.teacher_weights or Path(plan.checkpoints) / plan.teacher_file)
        self.specs = self.build_specs()

    # ---- the plan's runs
    @property
    def full_setting(self) -> dict:
        """The distilled runs' setting: the plan's ``distill``, every lambda present."""
        return {k: 1.0 for k in TERMS} | dict(self.plan.distill)

    def distilled(self, setting: dict, seed: int, epochs: int = 0) -> ExperimentConfig:
        distill = config_from_dict(
            DistillConfig, {"teacher": str(self.teacher_path), **setting}, f"{self.plan_path}: distill"
        )
        config = dataclasses.replace(with_seed(self.student_config, seed), distill=distill)
        return with_epochs(config, epochs) if epochs else config

    def unlabeled_runs(self, scenes: int, seed: int) -> list[RunSpec]:
        """The unlabelled-drive study's three runs for ``scenes`` drives and ``seed`` (see the plan)."""
        full = self.full_setting
        control = full | {k: 0.0 for k in TERMS}

        def with_drives(config: ExperimentConfig, labels: bool) -> ExperimentConfig:
            data = dataclasses.replace(config.data, unlabeled_scenes=scenes, unlabeled_labels=labels)
            return dataclasses.replace(config, data=data)

        return [
            RunSpec(f"unlabeled{scenes}-s{seed}", "unlabeled", seed, with_drives(self.distilled(full, seed), False),
                    setting=full),
            RunSpec(f"pseudo{scenes}-s{seed}", "pseudo", seed, with_drives(self.distilled(control, seed), False),
                    setting=control),
            RunSpec(f"upper{scenes}-s{seed}", "upper", seed, with_drives(with_seed(self.student_config, seed), True)),
        ]  # fmt: skip

    def build_specs(self) -> list[RunSpec]:
        plan = self.plan
        specs = []
        if self.teacher_config is not None:
            specs += [
                RunSpec(f"teacher-s{s}", "teacher", s, with_seed(self.teacher_config, s)) for s in plan.teacher_seeds
            ]
        else:
            model = read_model_config(self.teacher_path)
            specs.append(
                RunSpec("teacher", "teacher", -1, dataclasses.replace(self.student_config, model=model), train=False)
            )
        full = self.full_setting
        if plan.long_epochs:
            for seed in plan.long_seeds:
                config = with_epochs(with_seed(self.student_config, seed), plan.long_epochs)
                specs.append(RunSpec(f"student-long-s{seed}", "student-long", seed, config, test=False))
        for seed in plan.reference_seeds:
            config = with_seed(self.student_config, seed)
            config = with_epochs(config, plan.grid_epochs) if plan.grid_epochs else config
            specs.append(RunSpec(f"reference-s{seed}", "reference", seed, config, test=False))
        for i, overrides in enumerate(plan.grid):
            setting = full | overrides
            config = self.distilled(setting, plan.grid_seed, plan.grid_epochs)
            specs.append(RunSpec(f"grid{i}-s{plan.grid_seed}", "grid", plan.grid_seed, config, False, setting))
        for seed in plan.seeds:
            specs.append(RunSpec(f"student-s{seed}", "student", seed, with_seed(self.student_config, seed)))
            specs.append(RunSpec(f"distilled-s{seed}", "distilled", seed, self.distilled(full, seed), setting=full))
        for scenes, seed in ((n, s) for n in plan.unlabeled_scenes for s in plan.unlabeled_seeds):
            specs += self.unlabeled_runs(scenes, seed)
        for seed in plan.ablation_seeds:
            for term in TERMS:
                setting = full | {k: (full[k] if k == term else 0.0) for k in TERMS}
                specs.append(RunSpec(f"{term}-s{seed}", term, seed, self.distilled(setting, seed), setting=setting))
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ConfigError(f"{self.plan_path}: two runs share a name in {names}")
        return specs

    def spec(self, name: str) -> RunSpec:
        for spec in self.specs:
            if spec.name == name:
                return spec
        raise ConfigError(f"{self.plan_path}: the plan has no run '{name}'")

    # ---- records
    def record_path(self, name: str) -> Path:
        return self.records / f"{name}.json"

    def record(self, spec: RunSpec) -> dict | None:
        """The run's record if it was made with the run's config (and teacher), else None."""
        path = self.record_path(spec.name)
        if not path.exists():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ConfigError(f"{path}: not a readable run record ({error})") from error
        if not same_config(record.get("config"), spec.config, path):
            return None
        if spec.needs_teacher and record.get("teacher_sha256") != self.teacher_sha256():
            return None
        if not spec.train and record.get("weights_sha256") != self.teacher_sha256():
            return None
        return record

    def teacher_sha256(self) -> str | None:
        """SHA-256 of the teacher weights the distilled runs use, None while there is none."""
        if not hasattr(self, "_teacher_sha") and self.teacher_path.exists():
            self._teacher_sha = sha256(self.teacher_path)
        return getattr(self, "_teacher_sha", None)

    def teacher_ready(self) -> bool:
        """Whether every teacher run has finished and the best one is the shipped teacher."""
        if self.teacher_config is None:
            return True  # read_model_config checked the file when the plan was built
        records = [self.record(s) for s in self.specs if s.kind == "teacher"]
        if any(r is None for r in records):
            return False
        best = max(records, key=lambda r: r["val_mAP"])
        if self.teacher_sha256() != best["weights_sha256"]:
            raise ConfigError(
                f"{self.teacher_path}: not the weights of {best['name']} (SHA-256 differs from its record "
                f"{self.record_path(best['name'])}); restore it or delete the teacher records to retrain"
            )
        return True

    # ---- one run (in a worker process)
    def execute(self, spec: RunSpec) -> dict:
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
        device = resolve_device(self.plan.device)
        with open(folder / ".lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ConfigError(f"{folder}: another process is training {spec.name}") from None
            if spec.needs_teacher and not self.teacher_ready():
                raise ConfigError(f"{spec.name}: the teacher runs have not finished")
            start = time.perf_counter()
            if spec.train:
                self.clear_if_stale(spec, folder)
                if not (folder / "last.safetensors").exists():
                    Trainer(spec.config, folder, self.plan.device).run(resume=(folder / "state.safetensors").exists())
                best = folder / "best.safetensors"
                if not best.exists():
                    raise ConfigError(f"{spec.name}: training ended without a validated checkpoint ({best})")
                extra = read_extra(best)
                val_map, best_epoch = float(extra["val_mAP"]), int(extra["epoch"])
            else:
                best = self.teacher_path
                model, _ = load_model(best, device)
                val = build_dataset(spec.config.data, "val")
                val_map = evaluate_model(model, val, device, spec.config.train.val_samples).mean_ap
                best_epoch = -1
            test = None
            if spec.test:
                model, _ = load_model(best, device)
                test = evaluate_model(model, build_dataset(spec.config.data, "test"), device).to_dict()
            record = {
                "name": spec.name,
                "kind": spec.kind,
                "seed": spec.seed,
                "setting": spec.setting,
                "config": config_to_dict(spec.config),
                "teacher_sha256": self.teacher_sha256() if spec.needs_teacher else None,
                **log_summary(folder / "log.jsonl"),
                "val_mAP": val_map,
                "best_epoch": best_epoch,
                "test": test,
                "weights_sha256": sha256(best),
                "meta": provenance(seconds=round(time.perf_counter() - start, 1), machine=machine()),
            }
            write_json(self.record_path(spec.name), record)
            return record

    @staticmethod
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
        parallel = parallel or self.plan.parallel
        pending = [s for s in self.specs if self.record(s) is None]
        done = len(self.specs) - len(pending)
        print(f"plan {self.plan_path}: {len(self.specs)} runs, {done} done, {len(pending)} to train", flush=True)
        if not pending:
            return
        self.prepare_data()
        Scheduler(self, pending, parallel).run()

    def report(self) -> dict:
        """Write the report from the records of the finished runs (see kd_report)."""
        from mapdistill_core.training.kd_report import write_report

        records = {s.name: r for s in self.specs if (r := self.record(s)) is not None}
        if not records:
            raise ConfigError(
                f"{self.records}: no record of a finished run of {self.plan_path}; the report reads the records "
                "committed in a clone of the repository (its results/ folder, not part of a pip install): run it "
                "there, or train the plan first (mapdistill experiment without --report-only)"
            )
        pending = [s.name for s in self.specs if s.name not in records]
        return write_report(self.plan, self.plan_path, records, pending, self.full_setting, self.architecture())

    def architecture(self) -> dict[str, dict]:
        """Parameter counts (millions) of the teacher and student architectures. Speed is measured
        by ``make bench`` (benchmarks/run_all.py), side by side, not here."""
        from mapdistill_core.models.model import build_model

        teacher = next(s for s in self.specs if s.kind == "teacher").config.model
        return {
            name: {"params_m": sum(p.numel() for p in build_model(config).parameters()) / 1e6}
            for name, config in (("teacher", teacher), ("student", self.student_config.model))
        }

    def ship(self, spec: RunSpec) -> None:
        """After ``spec`` finished: copy its weights to the checkpoints folder if it is the best on
        val among the teachers, or among the camera-only students and distilled students."""
        rivals = ("teacher",) if spec.kind == "teacher" else CANDIDATES
        files = {"teacher": self.plan.teacher_file, "student": self.plan.student_file}
        target = files.get("student" if spec.kind in CANDIDATES else spec.kind)
        if target is None or (spec.kind == "teacher" and self.teacher_config is None):
            return
        records = [r for s in self.specs if s.kind in rivals and (r := self.record(s)) is not None]
        best = max(records, key=lambda r: r["val_mAP"])
        if best["name"] != spec.name:
            return
        with atomic_output(Path(self.plan.checkpoints) / target) as tmp:
            shutil.copyfile(self.out / spec.name / "best.safetensors", tmp)
        if spec.kind == "teacher":
            self.__dict__.pop("_teacher_sha", None)
        print(f"{spec.name}: best {spec.kind} on val so far, shipped as {Path(self.plan.checkpoints) / target}")


def same_config(stored: dict | None, config: ExperimentConfig, source: str | Path) -> bool:
    """Whether a stored config (a record's or a run folder's) is ``config``, defaults filled in."""
    if not isinstance(stored, dict):
        return False
    try:
        return config_from_dict(ExperimentConfig, stored, str(source)) == config
    except (ConfigError, ValueError, TypeError):
        return False


def log_summary(path: Path) -> dict:
    """From a run's log.jsonl: its last step, val mAP by epoch, and gradient shares and cosines with
    the map loss's gradient by step."""
    if not path.exists():
        return {"steps": 0, "val_curve": [], "grad_share": [], "grad_cosine": []}
    log = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {
        "steps": max((r.get("step", 0) for r in log), default=0),
        "val_curve": [{"epoch": r["epoch"], "step": r["step"], "mAP": r["val"]["mAP"]} for r in log if "val" in r],
        "grad_share": [{"step": r["step"], **r["grad_share"]} for r in log if "grad_share" in r],
        "grad_cosine": [{"step": r["step"], **r["grad_cosine"]} for r in log if "grad_cosine" in r],
    }


def machine() -> str:
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


def planned_steps(spec: RunSpec, train_samples: int) -> int:
    if not spec.train:
        return 0
    t = spec.config.train
    return t.epochs * (train_samples // t.batch_size)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the worker gets SIGTERM when the experiment process dies, even by SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Scheduler:
    """Runs pending specs in worker processes, ``parallel`` at a time, teacher runs first (distilled
    runs wait for the shipped teacher), with one progress bar for the plan and one per worker."""

    def __init__(self, experiment: Experiment, pending: list[RunSpec], parallel: int):
        from mapdistill_core.training.datasets import build_train_set

        self.experiment, self.queue, self.parallel = experiment, list(pending), parallel
        self.total_runs = len(experiment.specs)
        self.index = {s.name: i + 1 for i, s in enumerate(experiment.specs)}
        sizes = {}
        for spec in pending:
            key = json.dumps(config_to_dict(spec.config.data), sort_keys=True)
            if key not in sizes:
                sizes[key] = len(build_train_set(spec.config.data))
            sizes[spec.name] = planned_steps(spec, sizes[key])
        self.steps = {s.name: sizes[s.name] for s in pending}
        self.active: dict[str, tuple[subprocess.Popen, tqdm]] = {}
        self.failed: list[str] = []

    def env(self) -> dict:
        env = dict(os.environ)
        from mapdistill_core.inference import resolve_device

        if resolve_device(self.experiment.plan.device).type == "cpu":
            env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // self.parallel))
        return env

    def start(self, spec: RunSpec, slot: int) -> None:
        folder = self.experiment.out / spec.name
        folder.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "mapdistill_core.training.experiment", self.experiment.plan_path, spec.name]
        log = open(folder / "worker.log", "a", encoding="utf-8")
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=self.env(), preexec_fn=_die_with_parent
        )
        log.close()
        bar = tqdm(
            total=self.steps[spec.name],
            initial=current_step(folder),
            desc=f"run {self.index[spec.name]}/{self.total_runs} {spec.name}",
            unit="step",
            position=slot + 1,
            leave=False,
        )
        self.active[spec.name] = (process, bar)

    def next_ready(self) -> RunSpec | None:
        teachers_pending = any(s.kind == "teacher" for s in self.queue) or any(
            self.experiment.spec(n).kind == "teacher" for n in self.active
        )
        for spec in self.queue:
            if spec.needs_teacher and (teachers_pending or not self.experiment.teacher_ready()):
                continue
            self.queue.remove(spec)
            return spec
        return None

    def run(self) -> None:
        done = sum(current_step(self.experiment.out / n) for n in self.steps)
        # steps trained before this start count as done but not into the rate (and the ETA)
        overall = tqdm(total=sum(self.steps.values()), initial=done, desc="plan", unit="step", position=0)
        try:
            while self.queue or self.active:
                while len(self.active) < self.parallel and not self.failed:
                    spec = self.next_ready()
                    if spec is None:
                        break
                    self.start(spec, len(self.active))
                if not self.active:
                    if self.queue and not self.failed:
                        raise ConfigError(
                            f"{self.experiment.plan_path}: runs {[s.name for s in self.queue]} wait "
                            "for a teacher that no run will produce"
                        )
                    break
                time.sleep(1.0)
                for name, (process, bar) in list(self.active.items()):
                    step = current_step(self.experiment.out / name)
                    overall.update(max(0, step - bar.n))
                    bar.update(max(0, step - bar.n))
                    if process.poll() is None:
                        continue
                    bar.close()
                    del self.active[name]
                    if process.returncode == 0:
                        spec = self.experiment.spec(name)
                        record = self.experiment.record(spec)
                        test = f", test mAP {100 * record['test']['mAP']:.1f}" if record["test"] else ""
                        tqdm.write(f"{name}: done, val mAP {100 * record['val_mAP']:.1f}{test}")
                        self.experiment.ship(spec)
                    else:
                        self.failed.append(name)
                        tqdm.write(
                            f"{name}: failed (exit {process.returncode}); see {self.experiment.out / name}/worker.log"
                        )
        except BaseException:
            for process, _ in self.active.values():
                process.terminate()
            for process, _ in self.active.values():
                process.wait()
            raise
        finally:
            overall.close()
        if self.failed:
            raise ConfigError(f"runs failed: {', '.join(self.failed)} (their worker.log says why)")


def current_step(folder: Path) -> int:
    """The last step a run's log reached (0 without a log)."""
    path = folder / "log.jsonl"
    if not path.exists():
        return 0
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 4096))
        lines = f.read().decode("utf-8", "replace").splitlines()
    for line in reversed(lines):
        try:
            return int(json.loads(line).get("step", 0))
        except (json.JSONDecodeError, ValueError, AttributeError):
            continue
    return 0


def main(argv: list[str]) -> int:
    """Worker entry point: ``python -m mapdistill_core.training.experiment PLAN RUN_NAME``."""
    plan_path, name = argv
    experiment = Experiment(load_config(ExperimentPlan, plan_path), plan_path)
    experiment.execute(experiment.spec(name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
