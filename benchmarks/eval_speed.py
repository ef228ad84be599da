"""Speed of the MapTR-protocol Chamfer AP (`evaluate_vectors`).

Times the vectorized evaluation on 1,000 samples x 50 predictions x 20 ground-truth elements
(smooth random curves; predictions are shifted, noisy copies of the ground truth plus spurious
ones, 20 points each as the model outputs). Then, on a subset, times the plain one-pair-at-a-time reference
(MapTR's algorithm) side by side with the vectorized code, checks both give the same mAP, and
prints the speed-up.

    python benchmarks/eval_speed.py [--samples 1000] [--reference-samples 50] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mapdistill_core.map_elements import MapElement
from mapdistill_core.metrics import evaluate_vectors
from mapdistill_core.metrics.reference import reference_mean_ap


def smooth_curves(rng: np.random.Generator, num: int) -> np.ndarray:
    """Random arcs like lane lines and road edges: float [num, 20, 2] in the 60 m x 30 m region."""
    start = rng.uniform([-30, -15], [30, 15], (num, 1, 2))
    heading = rng.uniform(-np.pi, np.pi, (num, 1)) + rng.uniform(-0.05, 0.05, (num, 1)) * np.arange(20)
    step = rng.uniform(0.5, 2.5, (num, 1, 1))
    return start + step * np.cumsum(np.stack([np.cos(heading), np.sin(heading)], axis=-1), axis=1)


def make_dataset(num_samples: int, num_pred: int, num_gt: int, seed: int):
    """Per sample: num_gt smooth ground-truth curves; predictions are most of them, shifted by up
    to a few metres with a little point noise (high confidence), plus spurious curves (low)."""
    rng = np.random.default_rng(seed)
    predictions, ground_truth = {}, {}
    for s in range(num_samples):
        gt_pts = smooth_curves(rng, num_gt)
        classes = rng.integers(0, 3, num_gt)
        gts = [MapElement(int(c), p) for c, p in zip(classes, gt_pts, strict=True)]
        preds = []
        for i in range(num_pred):
            if i < num_gt and rng.random() < 0.8:
                shift = rng.normal(0, rng.choice([0.2, 0.6, 1.5]), 2)
                pts = gt_pts[i] + shift + rng.normal(0, 0.05, (20, 2))
                preds.append(MapElement(int(classes[i]), pts, float(rng.uniform(0.3, 1.0))))
            else:
                pts = smooth_curves(rng, 1)[0]
                preds.append(MapElement(int(rng.integers(0, 3)), pts, float(rng.uniform(0.0, 0.5))))
        predictions[f"sample-{s:05d}"], ground_truth[f"sample-{s:05d}"] = preds, gts
    return predictions, ground_truth


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--predictions", type=int, default=50)
    parser.add_argument("--gt", type=int, default=20)
    parser.add_argument("--reference-samples", type=int, default=50, help="subset timed with the plain reference")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    pred, gt = make_dataset(args.samples, args.predictions, args.gt, args.seed)
    result, seconds = timed(evaluate_vectors, pred, gt)
    print(
        f"evaluate_vectors: {args.samples} samples x {args.predictions} pred x {args.gt} gt "
        f"in {seconds:.2f} s ({args.samples / seconds:.0f} samples/s), mAP {100 * result.mean_ap:.2f}"
    )

    subset = list(gt)[: args.reference_samples]
    sub_pred, sub_gt = {t: pred[t] for t in subset}, {t: gt[t] for t in subset}
    fast, fast_seconds = timed(evaluate_vectors, sub_pred, sub_gt)
    (ref_map, _), ref_seconds = timed(reference_mean_ap, sub_pred, sub_gt)
    print(
        f"side by side on {len(subset)} samples: vectorized {fast_seconds:.2f} s, "
        f"plain reference {ref_seconds:.2f} s, speed-up {ref_seconds / fast_seconds:.1f}x; "
        f"mAP {100 * fast.mean_ap:.4f} vs {100 * ref_map:.4f} "
        f"({'equal' if abs(fast.mean_ap - ref_map) < 1e-12 else 'DIFFERENT'})"
    )


if __name__ == "__main__":
    main()
