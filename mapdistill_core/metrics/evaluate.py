"""Chamfer-distance average precision over a dataset: the MapTR evaluation protocol.

Per class and per sample, every predicted and ground-truth element is resampled to
``NUM_EVAL_POINTS`` points evenly along its length (a prediction that already has exactly that
many points is used as given, as MapTR does). Pairs are scored by ``chamfer.score_matrix``,
predictions are assigned greedily by confidence, and AP is the area under the enveloped
precision-recall curve over all samples. mAP is the mean, over classes with at least one
ground-truth element, of the mean AP over the thresholds. Optionally, per class and threshold, the
precision and recall of the predictions that score at least a given confidence (an operating point).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mapdistill_core.errors import MapFileError
from mapdistill_core.map_elements import CLASS_NAMES, MapElement
from mapdistill_core.metrics.average_precision import (
    assign_true_positives,
    average_precision,
    precision_recall_at,
)
from mapdistill_core.metrics.chamfer import score_matrix
from mapdistill_core.polyline import resample_polylines

THRESHOLDS: tuple[float, ...] = (0.5, 1.0, 1.5)
NUM_EVAL_POINTS = 100


@dataclass
class EvalResult:
    """Result of ``evaluate_vectors``.

    Attributes:
        ap: class name -> {"0.5": ap, "1.0": ap, "1.5": ap, "mean": ap} as fractions, or None
            for a class without ground truth (left out of mAP).
        mean_ap: mAP as a fraction.
        counts: class name -> {"gt": n, "pred": n} elements evaluated.
        at_score: with a ``min_score``: {"score": min_score, class name -> {"kept": n,
            "precision": {"0.5": p, ...}, "recall": {"0.5": r, ...}, "f1": {"0.5": f, ...}} as
            fractions, or None for a class without ground truth; "mean_f1": {"0.5": f, ...}, the
            F1 averaged over the classes with ground truth (one number per Chamfer threshold to
            compare scores by)}; else empty.
    """

    ap: dict[str, dict[str, float] | None]
    mean_ap: float
    counts: dict[str, dict[str, int]]
    at_score: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The ``--out`` JSON layout: {"mAP", "AP", "counts"}, and "at_score" when there is one."""
        out = {"mAP": self.mean_ap, "AP": self.ap, "counts": self.counts}
        if self.at_score:
            out["at_score"] = self.at_score
        return out


def _resample_group(points: list[np.ndarray], keep_exact: bool) -> np.ndarray:
    """Resample polylines of any lengths to [len(points), NUM_EVAL_POINTS, 2], batching by length."""
    out = np.empty((len(points), NUM_EVAL_POINTS, 2))
    lengths = np.array([len(p) for p in points], dtype=int)
    for k in np.unique(lengths):
        idx = np.nonzero(lengths == k)[0]
        batch = np.stack([points[i] for i in idx])
        out[idx] = batch if keep_exact and k == NUM_EVAL_POINTS else resample_polylines(batch, NUM_EVAL_POINTS)
    return out


def _by_class(elements: list[MapElement], class_id: int) -> list[MapElement]:
    return [e for e in elements if e.class_id == class_id]


def evaluate_vectors(
    predictions: dict[str, list[MapElement]],
    ground_truth: dict[str, list[MapElement]],
    thresholds: tuple[float, ...] = THRESHOLDS,
    min_score: float | None = None,
) -> EvalResult:
    """Chamfer AP of predicted map elements against ground truth, MapTR protocol.

    Args:
        predictions: sample token -> predicted elements (points in base_link, with scores).
        ground_truth: sample token -> ground-truth elements. Every sample here is evaluated; one
            missing from ``predictions`` has no predictions.
        thresholds: Chamfer distance thresholds in metres.
        min_score: if given, also the precision and recall of the predictions scoring at least
            this (``EvalResult.at_score``), from the same assignment as AP.

    Raises:
        MapFileError: a prediction's sample token has no ground truth.
    """
    unknown = [t for t in predictions if t not in ground_truth]
    if unknown:
        raise MapFileError(
            f"predictions for {len(unknown)} sample(s) that have no ground truth, e.g. sample '{unknown[0]}'"
        )
    max_threshold = max(thresholds)
    keys = [f"{th:.1f}" for th in thresholds]
    ap: dict[str, dict[str, float] | None] = {}
    counts: dict[str, dict[str, int]] = {}
    class_means = []
    at_score: dict = {} if min_score is None else {"score": min_score}
    for class_id, name in enumerate(CLASS_NAMES):
        confidences, tps, num_gt = [], [[] for _ in thresholds], 0
        for token, gt_elements in ground_truth.items():
            gts = _by_class(gt_elements, class_id)
            preds = _by_class(predictions.get(token, []), class_id)
            num_gt += len(gts)
            if not preds:
                continue
            conf = np.array([p.score for p in preds], dtype=np.float64)
            confidences.append(conf)
            if not gts:
                for t in tps:
                    t.append(np.zeros(len(preds), dtype=bool))
                continue
            scores = score_matrix(
                _resample_group([p.points for p in preds], keep_exact=True),
                _resample_group([g.points for g in gts], keep_exact=False),
                max_threshold,
            )
            for t, threshold in zip(tps, thresholds, strict=True):
                t.append(assign_true_positives(scores, conf, threshold))
        conf_all = np.concatenate(confidences) if confidences else np.zeros(0)
        counts[name] = {"gt": num_gt, "pred": len(conf_all)}
        if num_gt == 0:
            ap[name] = None
            if min_score is not None:
                at_score[name] = None
            continue
        tp_all = {key: np.concatenate(t) if t else np.zeros(0, bool) for t, key in zip(tps, keys, strict=True)}
        per_threshold = {key: average_precision(conf_all, tp, num_gt) for key, tp in tp_all.items()}
        if min_score is not None:
            points = {key: precision_recall_at(conf_all, tp, num_gt, min_score) for key, tp in tp_all.items()}
            at_score[name] = {
                "kept": int(np.count_nonzero(conf_all >= min_score)),
                "precision": {key: p for key, (p, _) in points.items()},
                "recall": {key: r for key, (_, r) in points.items()},
                "f1": {key: 2 * p * r / (p + r) if p + r else 0.0 for key, (p, r) in points.items()},
            }
        per_threshold["mean"] = float(np.mean(list(per_threshold.values())))
        ap[name] = per_threshold
        class_means.append(per_threshold["mean"])
    mean_ap = float(np.mean(class_means)) if class_means else 0.0
    if min_score is not None:
        rows = [at_score[name] for name in CLASS_NAMES if at_score[name] is not None]
        at_score["mean_f1"] = {key: float(np.mean([row["f1"][key] for row in rows])) if rows else 0.0 for key in keys}
    return EvalResult(ap=ap, mean_ap=mean_ap, counts=counts, at_score=at_score)


def format_table(result: EvalResult, thresholds: tuple[float, ...] = THRESHOLDS) -> str:
    """A plain-text table of AP (percent) per class and threshold, with counts and mAP."""
    keys = [f"{t:.1f}" for t in thresholds]
    header = f"{'class':<14}" + "".join(f"{'AP@' + k:>9}" for k in keys) + f"{'mean':>9}{'gt':>8}{'pred':>8}"
    lines = ["Chamfer AP (%), MapTR protocol", header, "-" * len(header)]
    for name in CLASS_NAMES:
        row = result.ap[name]
        cells = [row[k] for k in [*keys, "mean"]] if row else [None] * (len(keys) + 1)
        text = "".join(f"{'n/a':>9}" if v is None else f"{100 * v:>9.1f}" for v in cells)
        lines.append(f"{name:<14}{text}{result.counts[name]['gt']:>8}{result.counts[name]['pred']:>8}")
    lines.append("-" * len(header))
    lines.append(f"{'mAP':<14}{100 * result.mean_ap:>9.1f}")
    if result.at_score:
        lines += ["", f"Predictions scoring >= {result.at_score['score']:g}: precision / recall (%)"]
        header = f"{'class':<14}" + "".join(f"{'@' + k:>13}" for k in keys) + f"{'kept':>8}{'gt':>8}"
        lines += [header, "-" * len(header)]
        for name in CLASS_NAMES:
            row = result.at_score[name]
            if row is None:
                text = "".join(f"{'n/a':>13}" for _ in keys) + f"{'':>8}"
            else:
                pairs = [f"{100 * row['precision'][k]:.1f} / {100 * row['recall'][k]:.1f}" for k in keys]
                text = "".join(f"{pair:>13}" for pair in pairs) + f"{row['kept']:>8}"
            lines.append(f"{name:<14}{text}{result.counts[name]['gt']:>8}")
        lines.append("-" * len(header))
        f1 = result.at_score["mean_f1"]
        lines.append(f"{'F1 (mean)':<14}" + "".join(f"{100 * f1[k]:>13.1f}" for k in keys))
    return "\n".join(lines)
