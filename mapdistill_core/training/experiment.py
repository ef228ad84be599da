"""The synthetic knowledge-distillation benchmark: teacher, student, distilled student and ablations.

Every run trains on the train split and keeps the checkpoint with the best val mAP; each kept
checkpoint is evaluated once on the test split. Runs already finished in the output folder are
reused, so an interrupted experiment continues where it stopped.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mapdistill_core.checkpoint import load_model, read_extra
from mapdistill_core.config import config_from_dict, config_to_dict, load_config
from mapdistill_core.data.batch import collate, to_device
from mapdistill_core.distill.config import DistillConfig
from mapdistill_core.inference import resolve_device
from mapdistill_core.map_elements import CLASS_NAMES
from mapdistill_core.metrics import THRESHOLDS
from mapdistill_core.profiling import forward_latency_ms
from mapdistill_core.results import provenance, write_json
from mapdistill_core.training.config import ExperimentConfig
from mapdistill_core.training.datasets import build_dataset
from mapdistill_core.training.evaluation import evaluate_model
from mapdistill_core.training.trainer import Trainer

TERMS = ("relation", "feature", "head")


@dataclass(frozen=True)
class ExperimentPlan:
    """config/experiment_synthetic.yaml.

    Attributes:
        teacher, student: experiment configs of the two models (data and training included).
        distill: lambda_1..3 and the distillation settings, the keys of DistillConfig but
            ``teacher`` (the teacher is the best of the teacher runs on val).
        teacher_seeds: seeds of the teacher runs; the teacher is trained once and frozen, like the
            paper's single MapTR fusion teacher.
        seeds: seeds of the student and distilled-student runs.
        ablation_seeds: seeds of the ablations (each loss alone, each pair); empty skips them.
        out: runs folder; results, table: where the JSON and the markdown table go;
        checkpoints: where the teacher and the distilled student used by the demo are copied.
        device: training device.
    """

    teacher: str = "config/synthetic_teacher.yaml"
    student: str = "config/synthetic_student.yaml"
    distill: dict[str, Any] = field(default_factory=lambda: {"relation": 1.0, "feature": 1.0, "head": 1.0})
    teacher_seeds: tuple[int, ...] = (0,)
    seeds: tuple[int, ...] = (0, 1)
    ablation_seeds: tuple[int, ...] = (0,)
    out: str = "runs/experiment_synthetic"
    results: str = "results/synthetic_kd.json"
    table: str = "results/synthetic_kd.md"
    checkpoints: str = "checkpoints"
    device: str = "auto"


def with_seed(config: ExperimentConfig, seed: int) -> ExperimentConfig:
    return dataclasses.replace(config, train=dataclasses.replace(config.train, seed=seed))


class Experiment:
    def __init__(self, plan: ExperimentPlan, plan_path: str):
        self.plan, self.plan_path = plan, plan_path
        self.out = Path(plan.out)
        self.device = resolve_device(plan.device)
        self.teacher_config = load_config(ExperimentConfig, plan.teacher)
        self.student_config = load_config(ExperimentConfig, plan.student)
        self.runs: dict[str, dict] = {}
        self.train_missing = True

    def train(self, name: str, config: ExperimentConfig, kind: str, seed: int, terms: dict | None = None) -> None:
        """Train run ``name`` unless it has finished (or, with ``self.train_missing`` off, skip it)."""
        folder = self.out / name
        if not (folder / "last.safetensors").exists():
            if not self.train_missing:
                print(f"{name}: not finished, left out of the report")
                return
            resume = (folder / "state.safetensors").exists()
            Trainer(config, folder, self.plan.device).run(resume=resume)
        self.runs[name] = {"kind": kind, "seed": seed, "distill": terms, "folder": str(folder)}

    def best_teacher(self) -> Path:
        scores = {n: self.val_map(n) for n, r in self.runs.items() if r["kind"] == "teacher"}
        if not scores:
            raise ValueError(f"no finished teacher run in {self.out}: run the experiment without --report-only")
        return self.out / max(scores, key=scores.get) / "best.safetensors"

    def val_map(self, name: str) -> float:
        return float(read_extra(self.out / name / "best.safetensors")["val_mAP"])

    def distilled(self, terms: dict[str, float], seed: int, teacher: Path) -> ExperimentConfig:
        settings = {k: v for k, v in self.plan.distill.items() if k not in TERMS}
        distill = config_from_dict(DistillConfig, {"teacher": str(teacher), **settings, **terms}, self.plan_path)
        return dataclasses.replace(with_seed(self.student_config, seed), distill=distill)

    def run(self, ablations: bool = True, train: bool = True) -> dict:
        """Train what is missing, then evaluate every run on test and write the report.

        Args:
            ablations: also run the ablations (each loss alone, each pair).
            train: train missing runs; off, the report covers the finished runs only.
        """
        plan = self.plan
        self.train_missing = train
        for seed in plan.teacher_seeds:
            self.train(f"teacher-s{seed}", with_seed(self.teacher_config, seed), "teacher", seed)
        teacher = self.best_teacher()
        full = {k: plan.distill.get(k, 1.0) for k in TERMS}
        for seed in plan.seeds:
            self.train(f"student-s{seed}", with_seed(self.student_config, seed), "student", seed)
            self.train(f"distilled-s{seed}", self.distilled(full, seed, teacher), "distilled", seed, full)
        for seed in plan.ablation_seeds if ablations else ():
            for size in (1, 2):
                for combo in itertools.combinations(TERMS, size):
                    terms = {k: (full[k] if k in combo else 0.0) for k in TERMS}
                    name = f"ablation-{'+'.join(combo)}-s{seed}"
                    self.train(name, self.distilled(terms, seed, teacher), "+".join(combo), seed, terms)
        return self.report(teacher)

    def test_metrics(self, name: str, model, test) -> dict:
        """A run's test metrics, computed once and kept in its folder (test.json); latencies, by
        contrast, are measured again in every report so that all runs are timed side by side."""
        path = self.out / name / "test.json"
        if path.exists() and path.stat().st_mtime >= (self.out / name / "best.safetensors").stat().st_mtime:
            return json.loads(path.read_text())
        metrics = evaluate_model(model, test, self.device).to_dict()
        write_json(path, metrics)
        return metrics

    def report(self, teacher: Path) -> dict:
        test = build_dataset(self.student_config.data, "test")
        sample = test[0]
        for name, run in self.runs.items():
            model, _ = load_model(self.out / name / "best.safetensors", self.device)
            batch = to_device(collate([sample], model.config.image_size, model.grid, 20, False), self.device)
            run["val_mAP"] = self.val_map(name)
            run["test"] = self.test_metrics(name, model, test)
            run["params_m"] = sum(p.numel() for p in model.parameters()) / 1e6
            run["latency_ms"] = forward_latency_ms(model, batch, self.device, warmup=2, iters=5)
        summary = summarize(self.runs)
        document = {
            "meta": provenance(
                plan=self.plan_path,
                plan_config=config_to_dict(self.plan),
                split="test",
                selection="best val mAP per run",
                teacher=str(teacher),
            ),
            "summary": summary,
            "runs": self.runs,
        }
        write_json(self.plan.results, document)
        Path(self.plan.table).write_text(markdown_table(self.runs, summary))
        self.ship(teacher)
        return document

    def ship(self, teacher: Path) -> None:
        folder = Path(self.plan.checkpoints)
        folder.mkdir(parents=True, exist_ok=True)
        distilled = [n for n, r in self.runs.items() if r["kind"] == "distilled"]
        best = max(distilled, key=lambda n: self.runs[n]["val_mAP"])
        shutil.copyfile(teacher, folder / "synthetic_teacher.safetensors")
        shutil.copyfile(self.out / best / "best.safetensors", folder / "synthetic_student.safetensors")


def summarize(runs: dict) -> dict:
    """Per kind: test mAP mean and standard deviation over seeds; and the share of the
    teacher-student gap that distillation recovers."""
    kinds: dict[str, list[float]] = {}
    for run in runs.values():
        kinds.setdefault(run["kind"], []).append(run["test"]["mAP"])
    summary = {
        k: {"mAP_mean": float(np.mean(v)), "mAP_std": float(np.std(v)), "seeds": len(v)} for k, v in kinds.items()
    }
    if {"teacher", "student", "distilled"} <= set(summary):
        t, s, d = (summary[k]["mAP_mean"] for k in ("teacher", "student", "distilled"))
        summary["gap_recovered"] = (d - s) / (t - s) if t != s else None
    return summary


def markdown_table(runs: dict, summary: dict) -> str:
    """AP per class and threshold (mean over seeds), mAP mean +- std, params, latency, speed-up."""
    kinds = list(dict.fromkeys(r["kind"] for r in runs.values()))
    teacher_latency = np.mean([r["latency_ms"] for r in runs.values() if r["kind"] == "teacher"])
    keys = [f"{t:.1f}" for t in THRESHOLDS]
    head = ["model", "seeds"] + [f"{c} @{k}" for c in CLASS_NAMES for k in keys]
    head += ["mAP", "params (M)", "latency (ms)", "teacher / this"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for kind in kinds:
        rows = [r for r in runs.values() if r["kind"] == kind]
        cells = [kind, str(len(rows))]
        for c in CLASS_NAMES:
            for k in keys:
                values = [r["test"]["AP"][c][k] for r in rows if r["test"]["AP"][c] is not None]
                cells.append(f"{100 * np.mean(values):.1f}" if values else "n/a")
        s = summary[kind]
        latency = np.mean([r["latency_ms"] for r in rows])
        cells += [
            f"{100 * s['mAP_mean']:.1f} ± {100 * s['mAP_std']:.1f}",
            f"{rows[0]['params_m']:.2f}",
            f"{latency:.1f}",
            f"{teacher_latency / latency:.2f}x",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    gap = summary.get("gap_recovered")
    if gap is not None:
        lines.append(f"\nShare of the teacher-student gap recovered by distillation: {100 * gap:.0f} %")
    return "\n".join(lines) + "\n"
