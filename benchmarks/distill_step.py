"""A distilled training step against the student's own step, with and without the teacher cache,
measured side by side (interleaved) in one process on this machine.

The benchmark's pair (config/experiment_kd.yaml's student and teacher configs, random weights by
default) on real train samples; each variant runs ``--steps`` optimizer steps per round, rounds
alternate the variants so that a busy machine slows them alike. The cached variant's cache is
filled first (the first epoch runs the teacher once per sample; this is the steady state after it).
Prints the median step time of each variant and its ratio to the student's step.

    python benchmarks/distill_step.py [--plan config/experiment_kd.yaml] [--teacher WEIGHTS]
                                      [--steps 4] [--rounds 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import torch

from mapdistill_core.config import load_config
from mapdistill_core.data.batch import collate
from mapdistill_core.distill.config import DistillConfig
from mapdistill_core.distill.distiller import Distiller
from mapdistill_core.experiment.plan import ExperimentPlan, Plan
from mapdistill_core.models.criterion import MapCriterion
from mapdistill_core.models.matcher import build_matcher
from mapdistill_core.models.model import build_model
from mapdistill_core.training.config import ExperimentConfig
from mapdistill_core.training.datasets import build_dataset
from mapdistill_core.training.trainer import map_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", default="config/experiment_kd.yaml", help="experiment plan")
    parser.add_argument("--teacher", help="teacher weights (default: a random teacher of the plan's teacher config)")
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per variant and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each running every variant once")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1, as the plan's runs)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    plan = load_config(ExperimentPlan, args.plan)
    runs = Plan(plan, args.plan)
    student_config = load_config(ExperimentConfig, plan.student)
    torch.manual_seed(0)
    if args.teacher:
        from mapdistill_core.checkpoint import load_model

        teacher = load_model(args.teacher)[0]
    else:
        teacher = build_model(runs.teacher_config.model)
    dataset = build_dataset(student_config.data, "train")
    size = student_config.train.batch_size
    model_config = student_config.model
    grid = build_model(model_config).grid
    make = partial(collate, image_size=model_config.image_size, grid=grid, num_points=model_config.decoder.num_points)
    batches = [make([dataset[i] for i in range(b * size, (b + 1) * size)]) for b in range(args.steps)]
    setting = {k: v for k, v in runs.full_setting.items()}

    def variant(loss_fn):
        torch.manual_seed(0)
        model = build_model(model_config)
        optimizer = torch.optim.AdamW([*model.parameters(), *getattr(loss_fn, "parameters", list)()], lr=1e-4)
        return model, optimizer, loss_fn

    variants = {
        "student (map loss only)": variant(map_loss(MapCriterion(model_config.loss, build_matcher(model_config.loss)))),
        "distilled, teacher every step": variant(
            Distiller(DistillConfig("teacher", **setting | {"cache_teacher": False}), model_config, teacher)
        ),
        "distilled, teacher cached": variant(Distiller(DistillConfig("teacher", **setting), model_config, teacher)),
    }
    for batch in batches:  # fill the cache: its first epoch runs the teacher once per sample
        variants["distilled, teacher cached"][2].teacher_outputs(batch)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, (model, optimizer, loss_fn) in variants.items():
            model.train()
            for step, batch in enumerate(batches):
                start = time.perf_counter()
                terms, _ = loss_fn(model(batch), batch, model, 10_000 + step)
                optimizer.zero_grad(set_to_none=True)
                sum(terms.values()).backward()
                optimizer.step()
                times[name].append(time.perf_counter() - start)
    base = statistics.median(times["student (map loss only)"])
    print(f"{'variant':34s} {'median s/step':>14s} {'x student':>10s}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:34s} {median:14.3f} {median / base:10.2f}")
    print(f"({args.rounds} rounds x {args.steps} steps, batch {size}, {args.threads} thread(s), setting {setting})")


if __name__ == "__main__":
    main()
