"""True/false positive assignment and VOC "area" average precision (MapTR / mmdet protocol)."""

from __future__ import annotations

import numpy as np


def assign_true_positives(scores: np.ndarray, confidences: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy matching of one sample's predictions of one class to its ground truth.

    Predictions are visited by descending confidence. Each takes its single best-scoring ground
    truth (the first one on ties); it is a true positive if that score is at least ``-threshold``
    and that ground truth is not yet taken, otherwise a false positive.

    Args:
        scores: float [P, G] pair scores (minus Chamfer distance, or -100 for non-candidates).
        confidences: float [P] prediction confidences.
        threshold: Chamfer distance threshold in metres (> 0).

    Returns:
        bool [P]: True where the prediction is a true positive.
    """
    num_pred, num_gt = scores.shape
    tp = np.zeros(num_pred, dtype=bool)
    if num_pred == 0 or num_gt == 0:
        return tp
    best_gt = scores.argmax(axis=1)
    good = scores[np.arange(num_pred), best_gt] >= -threshold
    taken = np.zeros(num_gt, dtype=bool)
    for i in np.argsort(-confidences, kind="stable"):
        if good[i] and not taken[best_gt[i]]:
            taken[best_gt[i]] = True
            tp[i] = True
    return tp


def precision_recall_at(confidences: np.ndarray, tp: np.ndarray, num_gt: int, min_score: float) -> tuple[float, float]:
    """Precision and recall of the predictions of one class scoring at least ``min_score``.

    Greedy assignment visits predictions by descending confidence, so the true positives among
    those kept are the ones they would get alone: this is the operating point of a consumer that
    keeps only them (the node's ``score_threshold``, a pseudo-label threshold).

    Args:
        confidences: float [D] confidences of every prediction of one class over the dataset.
        tp: bool [D] whether each prediction is a true positive.
        num_gt: number of ground-truth elements of that class over the dataset.
        min_score: keep predictions with confidence >= this.

    Returns:
        (precision, recall) as fractions in [0, 1]; precision is 0 when nothing is kept, recall 0
        without ground truth.
    """
    kept = confidences >= min_score
    hits = int(np.count_nonzero(tp & kept))
    count = int(np.count_nonzero(kept))
    return hits / count if count else 0.0, hits / num_gt if num_gt else 0.0


def average_precision(confidences: np.ndarray, tp: np.ndarray, num_gt: int) -> float:
    """Area under the precision-recall curve with the precision envelope (VOC "area" mode).

    Args:
        confidences: float [D] confidences of every prediction of one class over the dataset.
        tp: bool [D] whether each prediction is a true positive; the rest are false positives.
        num_gt: number of ground-truth elements of that class over the dataset.

    Returns:
        AP as a fraction in [0, 1]; 0 when there are no predictions or no ground truth.
    """
    if num_gt == 0 or len(confidences) == 0:
        return 0.0
    order = np.argsort(-confidences, kind="stable")
    tp_cum = np.cumsum(tp[order])
    fp_cum = np.cumsum(~tp[order])
    eps = np.finfo(np.float32).eps
    recall = tp_cum / max(num_gt, eps)
    precision = tp_cum / np.maximum(tp_cum + fp_cum, eps)
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))
