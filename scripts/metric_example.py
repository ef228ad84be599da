"""Write a small, seeded example of MapTR-format ground truth and predictions for the metric demo.

Each sample is a straight road with two boundaries, lane dividers and a pedestrian crossing. The
predictions are the ground truth with Gaussian point noise growing from sample to sample, one
missed element per sample and one spurious divider, so the table shows AP falling with the
threshold.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mapdistill_core.map_elements import CLASS_IDS, MapElement
from mapdistill_core.metrics.maptr_json import ground_truth_document, predictions_document
from mapdistill_core.polyline import resample_polylines


def road(rng: np.random.Generator) -> list[MapElement]:
    half_width = rng.uniform(5.0, 9.0)
    lanes = int(rng.integers(2, 4))
    xs = np.linspace(-30.0, 30.0, 13)
    bend = rng.uniform(-0.004, 0.004)

    def line(y: float) -> np.ndarray:
        return np.stack([xs, y + bend * xs**2], axis=1)

    elements = [MapElement(CLASS_IDS["boundary"], line(side * half_width)) for side in (-1, 1)]
    for k in range(1, lanes):
        elements.append(MapElement(CLASS_IDS["divider"], line(-half_width + 2 * half_width * k / lanes)))
    x0 = rng.uniform(5.0, 20.0)
    crossing = np.array(
        [[x0, -half_width], [x0, half_width], [x0 + 4, half_width], [x0 + 4, -half_width], [x0, -half_width]]
    )
    elements.append(MapElement(CLASS_IDS["ped_crossing"], crossing))
    return elements


def predict(gt: list[MapElement], noise: float, rng: np.random.Generator) -> list[MapElement]:
    missed = int(rng.integers(len(gt)))
    kept = [g for i, g in enumerate(gt) if i != missed]
    preds = []
    for g in kept:
        pts = resample_polylines(g.points, 20) + rng.normal(0.0, noise, (20, 2))
        if g.closed:
            pts[-1] = pts[0]
        preds.append(MapElement(g.class_id, pts, float(rng.uniform(0.5, 1.0))))
    spurious = np.stack([np.linspace(-20, 20, 20), np.full(20, rng.uniform(-12, 12))], axis=1)
    preds.append(MapElement(CLASS_IDS["divider"], spurious, float(rng.uniform(0.3, 0.9))))
    return preds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="folder for gt.json and pred.json")
    parser.add_argument("--samples", type=int, default=8, help="number of samples (default: 8)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    gt, pred = {}, {}
    for i in range(args.samples):
        token = f"example-{i:03d}"
        gt[token] = road(rng)
        pred[token] = predict(gt[token], noise=0.1 + 0.15 * i, rng=rng)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gt.json").write_text(json.dumps(ground_truth_document(gt)))
    meta = {"source": "scripts/metric_example.py", "seed": args.seed}
    (args.out / "pred.json").write_text(json.dumps(predictions_document(pred, meta)))
    print(f"wrote {args.out / 'gt.json'} and {args.out / 'pred.json'} ({args.samples} samples, seed {args.seed})")


if __name__ == "__main__":
    main()
