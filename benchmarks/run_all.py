"""Every speed and memory figure of mapdistill, measured side by side in one run, as one table.

Rows (each compares two things measured here, now, on this machine):
  - forward latency, teacher vs student, at the synthetic and at the nuScenes-size configs
    (random weights; one synthetic sample resized to the config; target student >= 4.5x faster);
  - CUDA only: for both configs, student and teacher, float32 / bfloat16 / float16 autocast, the
    whole backend call (host copies included) as a CUDA graph vs eager, and the nuScenes-size
    student's best against the 5 ms goal;
  - onnxruntime vs PyTorch, the shipped student (exported here to a temporary file), naming the
    execution provider onnxruntime really used;
  - node overhead: decode + preprocess + postprocess (message building) + publish, p50, as a share
    of the model forward p50, from an offline replay of a synthetic JPEG bag (target <= 10%; on
    CUDA the model runs as the node would run it fastest: float16 and CUDA graphs);
  - replay throughput: camera sets per second through the whole replay vs the model forward alone;
  - Chamfer AP evaluation: vectorized vs the plain reference, samples per second;
  - synthetic world: samples per second on one core vs the target of 4;
  - memory of a forward pass, teacher vs student (CUDA: max allocated; CPU: how far the resident
    set of a fresh process grows during it, sampled every millisecond).
Latencies are medians after warm-up (CUDA events on a GPU). A row whose backend or device is
missing here says "not available" with the reason, and the table goes on.

    python benchmarks/run_all.py [--device auto] [--iters 5] [--seed 0]     (or: make bench)
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import torch
from eval_speed import make_dataset
from soak import rss_mib

from mapdistill_core.config import load_config
from mapdistill_core.data.batch import to_device
from mapdistill_core.data.synthetic.config import SyntheticConfig
from mapdistill_core.data.synthetic.world import SyntheticScene
from mapdistill_core.export import export_onnx
from mapdistill_core.inference import MapPredictor, TorchBackend, model_inputs, resolve_device
from mapdistill_core.metrics import evaluate_vectors
from mapdistill_core.metrics.reference import reference_mean_ap
from mapdistill_core.models.model import build_model
from mapdistill_core.profiling import forward_latency_ms, median_ms
from mapdistill_core.training.config import ExperimentConfig
from mapdistill_ros.bags.replay import BagReplay
from mapdistill_ros.bags.synthetic2bag import write_synthetic_bag

CONFIGS = {
    "synthetic": ("config/synthetic_student.yaml", "config/synthetic_teacher.yaml"),
    "nuScenes-size": ("config/nuscenes_student.yaml", "config/nuscenes_teacher.yaml"),
}
STUDENT_WEIGHTS = "checkpoints/synthetic_student.safetensors"
OVERHEAD_STAGES = ("decode", "preprocess", "postprocess", "publish")


@dataclass
class Row:
    """One comparison: ``a`` against ``b`` (each a value with its unit), their ratio and the target."""

    what: str
    a: str
    b: str
    ratio: str
    target: str = ""


def model_batch(config_path: str, sample, device: torch.device, seed: int):
    config = load_config(ExperimentConfig, config_path).model
    torch.manual_seed(seed)
    model = build_model(config).to(device).eval()
    batch = model_inputs([sample], config, model.grid)
    return model, to_device(batch, device)


UNAVAILABLE = (ImportError, ValueError, RuntimeError, OSError)
"""What a missing backend, execution provider or device raises."""


def unavailable(what: str, error: Exception) -> Row:
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    return Row(what, "not available", reason[:100], "")


def guarded(what: str, rows: Callable[[], list[Row]]) -> list[Row]:
    """``rows()``, or one row saying why ``what`` is not available here, so one missing piece does not
    end the table."""
    try:
        return rows()
    except UNAVAILABLE as e:
        return [unavailable(what, e)]


PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}


def graph_and_eager_ms(model, batch: dict, device, dtype, warmup: int, iters: int) -> tuple[float, float]:
    """Median milliseconds of the whole backend call (host copies included), as a CUDA graph and eagerly."""
    out = []
    for graphs in (True, False):
        backend = TorchBackend(model, device, amp_dtype=dtype, cuda_graphs=graphs)
        out.append(median_ms(lambda backend=backend: backend(batch), warmup, iters))
    return out[0], out[1]


def cuda_rows(sample, device, warmup: int, iters: int, seed: int) -> list[Row]:
    """CUDA graph vs eager for both configs, both models and every precision (CUDA only)."""
    rows, fastest = [], None
    for name, (student_path, teacher_path) in CONFIGS.items():
        for label, path in (("student", student_path), ("teacher", teacher_path)):
            model, batch = model_batch(path, sample, torch.device("cpu"), seed)
            for precision, dtype in PRECISIONS.items():
                what = f"{name} {label} {precision}: CUDA graph vs eager"
                try:
                    graph, eager = graph_and_eager_ms(model, batch, device, dtype, warmup, iters)
                except UNAVAILABLE as e:
                    rows.append(unavailable(what, e))
                    continue
                rows.append(Row(what, f"{graph:.2f} ms", f"{eager:.2f} ms", f"{graph / eager:.2f}"))
                if (name, label) == ("nuScenes-size", "student"):
                    fastest = min(fastest or float("inf"), graph, eager)
    if fastest is not None:
        rows.append(
            Row(
                "nuScenes-size student, fastest of the above vs goal",
                f"{fastest:.2f} ms",
                "5 ms",
                f"{fastest / 5:.2f}",
                "<= 1",
            )
        )
    return rows


def forward_rows(sample, device, warmup: int, iters: int, seed: int) -> list[Row]:
    rows = []
    for name, (student_path, teacher_path) in CONFIGS.items():
        ms = {}
        for label, path in (("student", student_path), ("teacher", teacher_path)):
            model, batch = model_batch(path, sample, device, seed)
            ms[label] = forward_latency_ms(model, batch, device, warmup, iters)
        rows.append(
            Row(
                f"forward, {name} config: teacher vs student",
                f"{ms['teacher']:.1f} ms",
                f"{ms['student']:.1f} ms",
                f"{ms['teacher'] / ms['student']:.2f}",
                ">= 4.5",
            )
        )
    return rows


def backend_rows(sample, device, warmup: int, iters: int) -> list[Row]:
    """onnxruntime vs PyTorch on the shipped student, and (CUDA) float16 vs float32."""
    torch_predictor = MapPredictor.from_checkpoint(STUDENT_WEIGHTS, str(device))
    config = torch_predictor.config
    batch = model_inputs([sample], config, torch_predictor.grid)
    torch_ms = median_ms(lambda: torch_predictor.backend(batch), warmup, iters)

    def onnx_row() -> list[Row]:
        with tempfile.TemporaryDirectory() as tmp:
            onnx_path = export_onnx(STUDENT_WEIGHTS, Path(tmp) / "student.onnx")
            runtime = MapPredictor.from_checkpoint(onnx_path, "auto", backend="onnxruntime")
            onnx_ms = median_ms(lambda: runtime.backend(batch), warmup, iters)
        provider = runtime.backend.session.get_providers()[0]
        return [
            Row(
                f"student forward: onnxruntime ({provider}) vs PyTorch ({device.type})",
                f"{onnx_ms:.1f} ms",
                f"{torch_ms:.1f} ms",
                f"{onnx_ms / torch_ms:.2f}",
            )
        ]

    rows = guarded("student forward: onnxruntime vs PyTorch", onnx_row)
    if device.type == "cuda":
        half = MapPredictor.from_checkpoint(STUDENT_WEIGHTS, str(device), half=True)
        half_ms = median_ms(lambda: half.backend(batch), warmup, iters)
        rows.append(
            Row(
                "student forward: float16 vs float32",
                f"{half_ms:.1f} ms",
                f"{torch_ms:.1f} ms",
                f"{torch_ms / half_ms:.2f}x",
            )
        )
    return rows


def replay_rows(device, scenes: int, samples: int) -> list[Row]:
    """Node overhead and replay throughput from an offline replay of a synthetic JPEG bag."""
    world = load_config(SyntheticConfig, "config/synthetic_train_world.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        bag = Path(tmp) / "bag"
        write_synthetic_bag(world, "test", scenes, bag, samples=samples)
        cuda = device.type == "cuda"
        predictor = MapPredictor.from_checkpoint(STUDENT_WEIGHTS, str(device), half=cuda, cuda_graphs=cuda)
        replay = BagReplay(predictor, min_cameras=6)
        start = time.perf_counter()
        result = replay.run(bag)
        seconds = time.perf_counter() - start
    stages = result.timing["stages"]
    overhead = sum(stages[name]["p50_ms"] for name in OVERHEAD_STAGES if stages[name]["count"])
    inference = stages["inference"]["p50_ms"]
    frames = result.timing["frames"]
    detail = ", ".join(f"{n} {stages[n]['p50_ms']:.1f}" for n in OVERHEAD_STAGES if stages[n]["count"])
    return [
        Row(
            f"node overhead ({detail} ms p50) vs model forward",
            f"{overhead:.1f} ms",
            f"{inference:.1f} ms",
            f"{100 * overhead / inference:.1f}%",
            "<= 10%",
        ),
        Row(
            f"replay throughput ({frames} camera sets, bag read to metrics) vs model forward alone",
            f"{frames / seconds:.2f} sets/s",
            f"{1000 / inference:.2f} sets/s",
            f"{frames / seconds / (1000 / inference):.2f}",
        ),
    ]


def metric_row(samples: int, reference_samples: int, seed: int) -> Row:
    predictions, ground_truth = make_dataset(samples, 50, 20, seed)
    start = time.perf_counter()
    evaluate_vectors(predictions, ground_truth)
    fast = samples / (time.perf_counter() - start)
    subset = list(ground_truth)[:reference_samples]
    start = time.perf_counter()
    reference_mean_ap({t: predictions[t] for t in subset}, {t: ground_truth[t] for t in subset})
    reference = reference_samples / (time.perf_counter() - start)
    return Row(
        "Chamfer AP (50 pred x 20 gt per sample): vectorized vs reference",
        f"{fast:.0f} samples/s",
        f"{reference:.0f} samples/s",
        f"{fast / reference:.1f}",
    )


def synthetic_row(samples: int) -> Row:
    cv2.setNumThreads(1)
    config = load_config(SyntheticConfig, "config/synthetic.yaml")
    start = time.perf_counter()
    scene = SyntheticScene(config, "test", 0)
    for i in range(samples):
        scene.sample(i)
    rate = samples / (time.perf_counter() - start)
    return Row(
        f"synthetic world ({config.image_height}x{config.image_width} x 6 cameras + LiDAR + GT), one core",
        f"{rate:.2f} samples/s",
        "4 samples/s",
        f"{rate / 4:.2f}",
        ">= 1",
    )


def forward_memory_mb(config_path: str, sample, device_name: str, seed: int) -> float:
    """Memory one forward pass needs, in a fresh process: CUDA max allocated during it, or on a CPU
    the peak of the process's resident set (sampled every millisecond) over its level before it (MiB)."""
    device = torch.device(device_name)
    model, batch = model_batch(config_path, sample, device, seed)
    with torch.inference_mode():
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            model(batch)
            return torch.cuda.max_memory_allocated(device) / 2**20
        before, peak, done = rss_mib(), [0.0], threading.Event()

        def watch() -> None:
            while not done.wait(0.001):
                peak[0] = max(peak[0], rss_mib())

        watcher = threading.Thread(target=watch)
        watcher.start()
        model(batch)
        done.set()
        watcher.join()
    return max(peak[0], rss_mib()) - before


def memory_rows(sample, device, seed: int) -> list[Row]:
    rows = []
    kind = "CUDA max allocated" if device.type == "cuda" else "RSS growth"
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        for name, (student_path, teacher_path) in CONFIGS.items():
            student = pool.apply(forward_memory_mb, (student_path, sample, str(device), seed))
            teacher = pool.apply(forward_memory_mb, (teacher_path, sample, str(device), seed))
            rows.append(
                Row(
                    f"forward memory ({kind}), {name} config: teacher vs student",
                    f"{teacher:.0f} MiB",
                    f"{student:.0f} MiB",
                    f"{teacher / student:.2f}",
                )
            )
    return rows


def print_table(rows: list[Row]) -> None:
    header = Row("measurement: A vs B", "A", "B", "A / B", "target")
    widths = [max(len(getattr(r, f)) for r in [header, *rows]) for f in ("what", "a", "b", "ratio", "target")]
    for i, row in enumerate([header, *rows]):
        cells = [getattr(row, f) for f in ("what", "a", "b", "ratio", "target")]
        print("| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (cuda if present), cpu, cuda ...")
    parser.add_argument("--iters", type=int, default=5, help="timed forwards per model (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed forwards first")
    parser.add_argument("--seed", type=int, default=0, help="model initialisation and metric data")
    parser.add_argument("--replay-scenes", type=int, default=1)
    parser.add_argument("--replay-samples", type=int, default=20, help="samples per replayed scene")
    args = parser.parse_args()
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"device: {device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} threads")
    sample = SyntheticScene(SyntheticConfig(samples_per_scene=1), "test", 0).sample(0)
    rows = forward_rows(sample, device, args.warmup, args.iters, args.seed)
    if device.type == "cuda":
        rows += cuda_rows(sample, device, args.warmup, args.iters, args.seed)
    rows += backend_rows(sample, device, args.warmup, args.iters)
    rows += replay_rows(device, args.replay_scenes, args.replay_samples)
    rows.append(metric_row(200, 20, args.seed))
    rows.append(synthetic_row(10))
    rows += memory_rows(sample, device, args.seed)
    print()
    print_table(rows)


if __name__ == "__main__":
    main()
