"""The MapTR Chamfer-AP protocol written plainly, one pair at a time.

Slow and obviously faithful to hustvl/MapTR's ``custom_polyline_score`` / ``custom_tpfp_gen``:
shapely ``interpolate`` for resampling, a buffer-intersection test for every pair, scipy ``cdist``
for every candidate. It exists to check the vectorized ``evaluate_vectors`` (tests) and to
measure its speed-up (``benchmarks/eval_speed.py``).
"""

from __future__ import annotations

import numpy as np
import shapely
from scipy.spatial.distance import cdist

from mapdistill_core.map_elements import CLASS_NAMES, MapElement
from mapdistill_core.metrics.evaluate import NUM_EVAL_POINTS, THRESHOLDS


def _sample_points(points: np.ndarray) -> np.ndarray:
    line = shapely.LineString(points)
    distances = np.linspace(0, line.length, NUM_EVAL_POINTS)
    return np.array([line.interpolate(d).coords[0] for d in distances])


def _buffer(points: np.ndarray) -> shapely.Polygon:
    return shapely.LineString(points).buffer(2.0, cap_style="flat", join_style="mitre")


def _score_matrix(preds: list[np.ndarray], gts: list[np.ndarray]) -> np.ndarray:
    scores = np.full((len(preds), len(gts)), -100.0)
    gt_buffers = [_buffer(g) for g in gts]
    for i, pred in enumerate(preds):
        pred_buffer = _buffer(pred)
        for j, gt in enumerate(gts):
            if pred_buffer.intersects(gt_buffers[j]):
                dist = cdist(pred, gt)
                scores[i, j] = -(dist.min(axis=1).mean() + dist.min(axis=0).mean()) / 2
    return scores


def _area_ap(confidences: list[float], tp: list[bool], num_gt: int) -> float:
    """VOC "area" AP one detection at a time: precision and recall after each detection in
    confidence order, the precision envelope by a backward pass, then the area of its steps."""
    order = sorted(range(len(confidences)), key=lambda k: -confidences[k])
    recall, precision, hits = [0.0], [0.0], 0
    for rank, k in enumerate(order, start=1):
        hits += tp[k]
        recall.append(hits / num_gt)
        precision.append(hits / rank)
    recall.append(1.0)
    precision.append(0.0)
    for i in range(len(precision) - 2, -1, -1):
        precision[i] = max(precision[i], precision[i + 1])
    return sum((recall[i + 1] - recall[i]) * precision[i + 1] for i in range(len(recall) - 1))


def reference_mean_ap(
    predictions: dict[str, list[MapElement]], ground_truth: dict[str, list[MapElement]]
) -> tuple[float, dict[str, list[float]]]:
    """mAP and per-class APs (one per threshold in THRESHOLDS), classes without gt left out."""
    per_class = {}
    for class_id, name in enumerate(CLASS_NAMES):
        confidences, tps, num_gt = [], {t: [] for t in THRESHOLDS}, 0
        for token, gt_elements in ground_truth.items():
            gts = [_sample_points(g.points) for g in gt_elements if g.class_id == class_id]
            preds = [p for p in predictions.get(token, []) if p.class_id == class_id]
            num_gt += len(gts)
            pts = [p.points if len(p.points) == NUM_EVAL_POINTS else _sample_points(p.points) for p in preds]
            scores = _score_matrix(pts, gts)
            conf = [p.score for p in preds]
            confidences += conf
            for threshold in THRESHOLDS:
                covered = [False] * len(gts)
                tp = [False] * len(preds)
                for i in sorted(range(len(preds)), key=lambda k: -conf[k]):
                    if not gts:
                        break
                    j = int(np.argmax(scores[i]))
                    if scores[i, j] >= -threshold and not covered[j]:
                        covered[j] = True
                        tp[i] = True
                tps[threshold] += tp
        if num_gt:
            per_class[name] = [_area_ap(confidences, tps[t], num_gt) for t in THRESHOLDS]
    mean_ap = float(np.mean([np.mean(v) for v in per_class.values()])) if per_class else 0.0
    return mean_ap, per_class
