"""Chamfer scores between predicted and ground-truth polylines, gated by buffer overlap (MapTR).

A (pred, gt) pair is a candidate only if the two polylines, each buffered by ``BUFFER_RADIUS``
metres with flat caps and mitre joins, intersect. A candidate scores minus its Chamfer distance,
any other pair scores ``NON_CANDIDATE`` (-100), as in hustvl/MapTR ``tpfp_chamfer.py``.
"""

from __future__ import annotations

import numpy as np
import shapely

BUFFER_RADIUS = 2.0
NON_CANDIDATE = -100.0
_CHUNK_PAIRS = 256


def paired_chamfer(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Symmetric Chamfer distance between pred[k] and gt[k] for every k.

    Chamfer = (mean over pred points of the distance to the nearest gt point
               + mean over gt points of the distance to the nearest pred point) / 2.

    Args:
        pred: float [K, N, 2] polylines.
        gt: float [K, M, 2] polylines.

    Returns:
        float64 [K] distances in metres.
    """
    out = np.empty(len(pred))
    for start in range(0, len(pred), _CHUNK_PAIRS):
        a, b = pred[start : start + _CHUNK_PAIRS], gt[start : start + _CHUNK_PAIRS]
        # [k, N, M] squared distances, one coordinate at a time (much faster than a trailing axis of 2).
        sq = (a[:, :, None, 0] - b[:, None, :, 0]) ** 2 + (a[:, :, None, 1] - b[:, None, :, 1]) ** 2
        pred_to_gt = np.sqrt(sq.min(axis=2)).mean(axis=1)
        gt_to_pred = np.sqrt(sq.min(axis=1)).mean(axis=1)
        out[start : start + _CHUNK_PAIRS] = (pred_to_gt + gt_to_pred) / 2
    return out


def chamfer_matrix(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Chamfer distance between every pred [P, N, 2] and every gt [G, M, 2]: float64 [P, G]."""
    rows, cols = np.meshgrid(np.arange(len(pred)), np.arange(len(gt)), indexing="ij")
    return paired_chamfer(pred[rows.ravel()], gt[cols.ravel()]).reshape(len(pred), len(gt))


def bounding_box_gap(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Distance between the bounding boxes of every pred [P, N, 2] and gt [G, M, 2]: [P, G].

    Every point of one polyline is at least this far from every point of the other, so it is a
    lower bound of their Chamfer distance.
    """
    lo_p, hi_p = pred.min(axis=1)[:, None], pred.max(axis=1)[:, None]  # [P, 1, 2]
    lo_g, hi_g = gt.min(axis=1)[None], gt.max(axis=1)[None]  # [1, G, 2]
    gap = np.maximum(0.0, np.maximum(lo_p - hi_g, lo_g - hi_p))  # [P, G, 2]
    return np.hypot(gap[..., 0], gap[..., 1])


def _mean_distance_to_boxes(points: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Mean distance from points [K, N, 2] to the boxes [lo[k], hi[k]] (each [K, 2]): [K]."""
    gap = np.maximum(0.0, np.maximum(lo[:, None] - points, points - hi[:, None]))
    return np.hypot(gap[..., 0], gap[..., 1]).mean(axis=1)


def paired_chamfer_lower_bound(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """A cheap lower bound of ``paired_chamfer``: [K].

    A point's distance to the nearest point of a polyline is at least its distance to that
    polyline's bounding box, so each mean in the Chamfer distance is bounded from below.
    """
    to_gt = _mean_distance_to_boxes(pred, gt.min(axis=1), gt.max(axis=1))
    to_pred = _mean_distance_to_boxes(gt, pred.min(axis=1), pred.max(axis=1))
    return (to_gt + to_pred) / 2


def buffers(polylines: np.ndarray) -> np.ndarray:
    """Flat-capped, mitre-joined buffers of radius BUFFER_RADIUS around polylines [K, N, 2]."""
    lines = shapely.linestrings(polylines)
    return shapely.buffer(lines, BUFFER_RADIUS, cap_style="flat", join_style="mitre")


def buffers_intersect(pred: np.ndarray, gt: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Whether the buffers of pred[rows[k]] and gt[cols[k]] intersect, for each k.

    Polylines that cross each other lie inside their own buffers, so they pass without building
    the (costly) buffers; each remaining polyline is buffered once however many pairs it is in.

    Args:
        pred: float [P, N, 2]; gt: float [G, M, 2] polylines.
        rows, cols: int [K] indices into pred and gt.

    Returns:
        bool [K].
    """
    if len(rows) == 0:
        return np.zeros(0, dtype=bool)
    result = shapely.intersects(shapely.linestrings(pred[rows]), shapely.linestrings(gt[cols]))
    todo = np.nonzero(~result)[0]
    if len(todo):
        pred_ids, pred_inv = np.unique(rows[todo], return_inverse=True)
        gt_ids, gt_inv = np.unique(cols[todo], return_inverse=True)
        result[todo] = shapely.intersects(buffers(pred[pred_ids])[pred_inv], buffers(gt[gt_ids])[gt_inv])
    return result


def score_matrix(pred: np.ndarray, gt: np.ndarray, max_threshold: float) -> np.ndarray:
    """MapTR's pairwise score: -Chamfer for buffer-gated candidates, NON_CANDIDATE otherwise.

    Work is only spent where it can change a decision at a threshold <= ``max_threshold``:
    pairs whose Chamfer distance is bounded below by more than that (bounding-box gap, then
    ``paired_chamfer_lower_bound``) score NON_CANDIDATE without computing it, and the buffer
    gate is only evaluated for pairs whose Chamfer distance is within ``max_threshold``; the
    other pairs keep -Chamfer, which is below -max_threshold like NON_CANDIDATE. Every TP/FP
    outcome therefore equals MapTR's.

    Args:
        pred: float [P, N, 2]; gt: float [G, M, 2].
        max_threshold: largest Chamfer threshold (metres) the scores will be compared against.

    Returns:
        float64 [P, G].
    """
    scores = np.full((len(pred), len(gt)), NON_CANDIDATE)
    rows, cols = np.nonzero(bounding_box_gap(pred, gt) <= max_threshold)
    keep = paired_chamfer_lower_bound(pred[rows], gt[cols]) <= max_threshold
    rows, cols = rows[keep], cols[keep]
    chamfer = paired_chamfer(pred[rows], gt[cols])
    near = chamfer <= max_threshold
    gated_out = np.zeros(len(rows), dtype=bool)
    gated_out[near] = ~buffers_intersect(pred, gt, rows[near], cols[near])
    scores[rows, cols] = np.where(gated_out, NON_CANDIDATE, -chamfer)
    return scores
