"""Each distillation term's share of the student's gradient norm, and the cosine between its
gradient and the map loss's, on a few train batches.

Prints both at the distillation setting of an experiment plan, and with lambda_1 = 1 for the
relation KL summed over the map's rows (what the code does) and averaged over them (what it did
before): the measurement behind the plan's lambda_1. A share under 1 % means a mis-scaled term; a
negative cosine, a term that pulls against the task.

    python benchmarks/grad_shares.py [--teacher checkpoints/synthetic_teacher.safetensors]
        [--student-weights checkpoints/synthetic_student.safetensors] [--batches 2]
"""

from __future__ import annotations

import argparse

import torch

from mapdistill_core.checkpoint import load_model
from mapdistill_core.config import load_config
from mapdistill_core.data.batch import collate
from mapdistill_core.distill.config import DistillConfig
from mapdistill_core.distill.distiller import Distiller
from mapdistill_core.experiment.plan import ExperimentPlan
from mapdistill_core.models.model import build_model
from mapdistill_core.training.config import ExperimentConfig
from mapdistill_core.training.datasets import build_dataset
from mapdistill_core.training.trainer import gradient_cosines, gradient_shares, term_gradients


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", default="config/experiment_synthetic.yaml", help="experiment plan")
    parser.add_argument("--teacher", default="checkpoints/synthetic_teacher.safetensors", help="teacher weights")
    parser.add_argument(
        "--student-weights", help="a trained student's .safetensors (default: a fresh student, as at step 1)"
    )
    parser.add_argument("--batches", type=int, default=2, help="train batches to average over")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    plan = load_config(ExperimentPlan, args.plan)
    config = load_config(ExperimentConfig, plan.student)
    torch.manual_seed(args.seed)
    student = load_model(args.student_weights)[0].train() if args.student_weights else build_model(config.model)
    teacher, _ = load_model(args.teacher)
    dataset = build_dataset(config.data, "train")
    generator = torch.Generator().manual_seed(args.seed)
    order = torch.randperm(len(dataset), generator=generator).tolist()
    setting = {"relation": 1.0, "feature": 1.0, "head": 1.0} | dict(plan.distill)
    variants = {
        f"plan ({', '.join(f'{k} {v}' for k, v in setting.items())})": (setting, False),
        "lambda_1 = 1, KL summed over rows": (setting | {"relation": 1.0}, False),
        "lambda_1 = 1, KL averaged over rows (before)": (setting | {"relation": 1.0}, True),
    }
    size = config.train.batch_size
    for name, (values, averaged) in variants.items():
        distiller = Distiller(DistillConfig(args.teacher, **values), config.model, teacher)
        shares: dict[str, float] = {}
        cosines: dict[str, float] = {}
        for b in range(args.batches):
            samples = [dataset[i] for i in order[b * size : (b + 1) * size]]
            batch = collate(samples, config.model.image_size, student.grid, config.model.decoder.num_points)
            terms, _ = distiller(student(batch), batch, student)
            if averaged:  # divide by the rows' count: BEV patches of relation_patch cells a side
                rows = (config.model.bev_size[0] // values["relation_patch"]) * (
                    config.model.bev_size[1] // values["relation_patch"]
                )
                terms = terms | {"relation": terms["relation"] / rows}
            grads = term_gradients(terms, list(student.parameters()))
            for term, share in gradient_shares(grads).items():
                shares[term] = shares.get(term, 0.0) + share / args.batches
            for term, cos in gradient_cosines(grads).items():
                cosines[term] = cosines.get(term, 0.0) + cos / args.batches
        cells = [
            f"{t} {100 * s:.1f} %" + (f" (cos {cosines[t]:+.2f})" if t in cosines else "") for t, s in shares.items()
        ]
        print(f"{name}: " + ", ".join(cells))


if __name__ == "__main__":
    main()
