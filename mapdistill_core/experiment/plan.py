"""A distillation plan (config/experiment_kd.yaml) and its expansion into runs.

The plan names the teacher (a config to train, or existing weights), the student config, the
distillation setting, the seeds, a grid of settings screened on val against the student alone on the
same schedule (several seeds: the noise floor), the ablations (each loss alone), a long-schedule
student curve with its distilled counterpart and the unlabelled-drive study. ``Plan`` lists its runs
in the order teacher, long curve, references, grid, main runs, unlabelled drives, long distilled
runs, ablations.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mapdistill_core.checkpoint import read_model_config
from mapdistill_core.config import check_ranges, config_from_dict, input_file, load_config, number
from mapdistill_core.data.synthetic.config import SyntheticConfig
from mapdistill_core.distill.config import TERMS, DistillConfig
from mapdistill_core.errors import ConfigError
from mapdistill_core.training.config import ExperimentConfig

CANDIDATES = ("student", "student-long", "distilled", "distilled-long", "unlabeled", "pseudo")
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
        long_epochs, long_seeds: the student alone on a long schedule, to show where its val curve
            flattens (0 or no seeds: none); evaluated on test, as the partner of the compared runs that
            train as many steps (the unlabelled-drive study's).
        long_distilled_seeds: the distilled runs ("distilled-long") on the long schedule, the plan's
            setting, labelled data only: whether the gain grows with the schedule (needs long_epochs).
        unlabeled_scenes, unlabeled_seeds: per number N of unlabelled drives and seed, two runs on
            the student's epochs: "unlabeled<N>" (the plan's distillation, the N drives mixed in
            without their map) and "pseudo<N>" (the same drives, every lambda 0: the teacher's pseudo
            labels alone, the control that separates more data from distillation).
        upper_seeds: per N and seed, "upper<N>" (the same drives with their map, no teacher: what
            labelling them would give).
        unlabeled_steps: the optimizer steps of every run of the unlabelled-drive study, whatever N
            (its epochs are set to make them; 0: the student's epochs). A fixed budget compares the
            numbers of drives with each other and with student-long at equal steps.
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
    long_distilled_seeds: tuple[int, ...] = field(default=(), metadata=number(0))
    unlabeled_scenes: tuple[int, ...] = field(default=(), metadata=number(1))
    unlabeled_seeds: tuple[int, ...] = field(default=(), metadata=number(0))
    upper_seeds: tuple[int, ...] = field(default=(), metadata=number(0))
    unlabeled_steps: int = field(default=0, metadata=number(0))
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
        check_ranges(self, "plan")
        if not self.seeds:
            raise ValueError("seeds must name at least one seed")
        if self.long_distilled_seeds and not self.long_epochs:
            raise ValueError("long_distilled_seeds needs long_epochs, the long schedule")
        allowed = {f.name for f in dataclasses.fields(DistillConfig)} - {"teacher"}
        for setting in (self.distill, *self.grid):
            if not isinstance(setting, dict) or set(setting) - allowed:
                raise ValueError(f"distill and grid entries take the keys {sorted(allowed)}, got {setting}")


@dataclass(frozen=True)
class RunSpec:
    """One training run of a plan.

    Attributes:
        name: folder and record name, e.g. "distilled-s1", "relation-s0", "grid2-s0".
        kind: "teacher", "student", "distilled", "student-long", "distilled-long", "reference", "grid", a loss alone
            ("relation", ...), or of the unlabelled-drive study "unlabeled", "pseudo", "upper".
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


def with_seed(config: ExperimentConfig, seed: int) -> ExperimentConfig:
    return dataclasses.replace(config, train=dataclasses.replace(config.train, seed=seed))


def with_epochs(config: ExperimentConfig, epochs: int) -> ExperimentConfig:
    """``config`` trained ``epochs`` epochs; 0 keeps its own."""
    if not epochs:
        return config
    return dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=epochs))


class Plan:
    """A plan's runs (``specs``) and the configs they are made of.

    Attributes:
        config, path: the plan as read and its file (named in errors).
        student_config: the student's experiment config; teacher_config: the teacher's (None when the
            plan names existing teacher weights).
        teacher_path: the weights every distilled run reads (the shipped teacher or the plan's).
        specs: every run, in the order they can run.
    """

    def __init__(self, plan: ExperimentPlan, path: str):
        self.config, self.path = plan, path
        self.student_config = load_config(ExperimentConfig, plan.student)
        self.teacher_config = None if plan.teacher_weights else load_config(ExperimentConfig, plan.teacher)
        self.teacher_path = Path(plan.teacher_weights or Path(plan.checkpoints) / plan.teacher_file)
        self.specs = self.build_specs()

    @property
    def full_setting(self) -> dict:
        """The distilled runs' setting: the plan's ``distill``, every lambda present."""
        return {k: 1.0 for k in TERMS} | dict(self.config.distill)

    def distilled(self, setting: dict, seed: int, epochs: int = 0) -> ExperimentConfig:
        distill = config_from_dict(
            DistillConfig, {"teacher": str(self.teacher_path), **setting}, f"{self.path}: distill"
        )
        config = dataclasses.replace(with_seed(self.student_config, seed), distill=distill)
        return with_epochs(config, epochs)

    def with_drives(self, config: ExperimentConfig, scenes: int, labels: bool) -> ExperimentConfig:
        """``config`` with ``scenes`` unlabelled drives mixed in, read with their map or without."""
        data = dataclasses.replace(config.data, unlabeled_scenes=scenes, unlabeled_labels=labels)
        return dataclasses.replace(config, data=data)

    def unlabeled_epochs(self, scenes: int) -> int:
        """The epochs of the unlabelled-drive study's runs with ``scenes`` drives: as many as make
        ``unlabeled_steps`` optimizer steps (every drive, labelled or not, holds the world's
        samples_per_scene), or the student's (0: ``with_epochs`` keeps them)."""
        steps = self.config.unlabeled_steps
        if not steps:
            return 0
        data, train = self.student_config.data, self.student_config.train
        world = load_config(SyntheticConfig, data.world)
        labelled = data.train_scenes or world.scenes.get("train", 0)
        samples = (labelled + scenes) * world.samples_per_scene
        per_epoch = samples // train.batch_size
        if not per_epoch or steps % per_epoch:
            raise ConfigError(
                f"{self.path}: unlabeled_steps {steps} is not a whole number of epochs with {scenes} drives "
                f"({samples} samples, {per_epoch} steps per epoch at batch {train.batch_size})"
            )
        return steps // per_epoch

    def unlabeled_runs(self, scenes: int) -> list[RunSpec]:
        """The unlabelled-drive study's runs for ``scenes`` drives (see the plan)."""
        full = self.full_setting
        control = full | {k: 0.0 for k in TERMS}
        epochs = self.unlabeled_epochs(scenes)
        specs = []
        for seed in self.config.unlabeled_seeds:
            specs += [
                RunSpec(f"unlabeled{scenes}-s{seed}", "unlabeled", seed,
                        self.with_drives(self.distilled(full, seed, epochs), scenes, False), setting=full),
                RunSpec(f"pseudo{scenes}-s{seed}", "pseudo", seed,
                        self.with_drives(self.distilled(control, seed, epochs), scenes, False), setting=control),
            ]  # fmt: skip
        for seed in self.config.upper_seeds:
            config = self.with_drives(with_epochs(with_seed(self.student_config, seed), epochs), scenes, True)
            specs.append(RunSpec(f"upper{scenes}-s{seed}", "upper", seed, config))
        return specs

    def build_specs(self) -> list[RunSpec]:
        plan = self.config
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
                specs.append(RunSpec(f"student-long-s{seed}", "student-long", seed, config))
        for seed in plan.reference_seeds:
            config = with_epochs(with_seed(self.student_config, seed), plan.grid_epochs)
            specs.append(RunSpec(f"reference-s{seed}", "reference", seed, config, test=False))
        for i, overrides in enumerate(plan.grid):
            setting = full | overrides
            config = self.distilled(setting, plan.grid_seed, plan.grid_epochs)
            specs.append(RunSpec(f"grid{i}-s{plan.grid_seed}", "grid", plan.grid_seed, config, False, setting))
        for seed in plan.seeds:
            specs.append(RunSpec(f"student-s{seed}", "student", seed, with_seed(self.student_config, seed)))
            specs.append(RunSpec(f"distilled-s{seed}", "distilled", seed, self.distilled(full, seed), setting=full))
        for scenes in plan.unlabeled_scenes:
            specs += self.unlabeled_runs(scenes)
        for seed in plan.long_distilled_seeds:
            config = self.distilled(full, seed, plan.long_epochs)
            specs.append(RunSpec(f"distilled-long-s{seed}", "distilled-long", seed, config, setting=full))
        for seed in plan.ablation_seeds:
            for term in TERMS:
                setting = full | {k: (full[k] if k == term else 0.0) for k in TERMS}
                specs.append(RunSpec(f"{term}-s{seed}", term, seed, self.distilled(setting, seed), setting=setting))
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ConfigError(f"{self.path}: two runs share a name in {names}")
        return specs

    def spec(self, name: str) -> RunSpec:
        for spec in self.specs:
            if spec.name == name:
                return spec
        raise ConfigError(f"{self.path}: the plan has no run '{name}'")
