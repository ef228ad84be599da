"""Student vs teacher, side by side in one run: parameters, FLOPs and forward latency.

Both models get the same input: one synthetic sample (six cameras and its LiDAR sweep), resized
to the configs' image size. FLOPs are counted by torch.utils.flop_counter (convolutions and dense
matrix products; grid sampling and the sparse lift-splat product are not counted). Latency is the
median of --iters timed forwards after --warmup untimed ones, in inference mode (CUDA events and
synchronization on a GPU).

    python benchmarks/model_speed.py [--pair synthetic|nuscenes|both] [--device auto] [--iters 10]
"""

from __future__ import annotations

import argparse

import torch
from torch.utils.flop_counter import FlopCounterMode

from mapdistill_core.config import load_config
from mapdistill_core.data.batch import to_device
from mapdistill_core.data.synthetic.config import SyntheticConfig
from mapdistill_core.data.synthetic.world import SyntheticScene
from mapdistill_core.inference import model_inputs, resolve_device
from mapdistill_core.models.model import build_model
from mapdistill_core.profiling import forward_latency_ms
from mapdistill_core.training.config import ExperimentConfig

PAIRS = {
    "synthetic": ("config/synthetic_student.yaml", "config/synthetic_teacher.yaml"),
    "nuscenes": ("config/nuscenes_student.yaml", "config/nuscenes_teacher.yaml"),
}


def measure(config_path: str, sample, device, warmup: int, iters: int) -> dict:
    config = load_config(ExperimentConfig, config_path).model
    torch.manual_seed(0)
    model = build_model(config).to(device).eval()
    batch = to_device(model_inputs([sample], config, model.grid), device)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(batch)
    return {
        "config": config_path,
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "gflops": counter.get_total_flops() / 1e9,
        "latency_ms": forward_latency_ms(model, batch, device, warmup, iters),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", choices=[*PAIRS, "both"], default="both")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    device = resolve_device(args.device)
    world = SyntheticConfig(samples_per_scene=1)
    sample = SyntheticScene(world, "test", 0).sample(0)
    print(f"device: {device}, torch threads: {torch.get_num_threads()}")
    print(f"{'pair':<10}{'model':<9}{'params (M)':>11}{'GFLOPs':>9}{'latency (ms)':>14}")
    for name in PAIRS if args.pair == "both" else [args.pair]:
        student, teacher = (measure(path, sample, device, args.warmup, args.iters) for path in PAIRS[name])
        for label, row in (("student", student), ("teacher", teacher)):
            print(f"{name:<10}{label:<9}{row['params_m']:>11.2f}{row['gflops']:>9.1f}{row['latency_ms']:>14.1f}")
        ratio = teacher["latency_ms"] / student["latency_ms"]
        print(f"{name:<10}student is {ratio:.2f}x faster than the teacher (target >= 4.5x)")


if __name__ == "__main__":
    main()
