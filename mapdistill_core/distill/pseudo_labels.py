"""The teacher's predictions as map labels: pseudo ground truth (the pseudo head term, and the map
targets of unlabelled samples) and the gate that keeps only the predictions the teacher gets right.

Elements are MapElements in base_link (metres); a prediction of a closed class is closed (its last
point set to its first), so that as a target it gets every cyclic ordering, like closed ground truth.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mapdistill_core.bev_grid import BEVGrid
from mapdistill_core.map_elements import CLASS_IDS, MapElement
from mapdistill_core.metrics.chamfer import chamfer_matrix
from mapdistill_core.polyline import resample_polylines

CLOSED_CLASSES = frozenset({CLASS_IDS["ped_crossing"]})
"""Classes whose elements are closed outlines (their last point repeats the first)."""

GATE_POINTS = 20
"""Points both polylines are resampled to before the gate's Chamfer distance."""


def pseudo_elements(logits: torch.Tensor, points: torch.Tensor, grid: BEVGrid, threshold: float) -> list[MapElement]:
    """One sample's teacher predictions scoring at least ``threshold``, as elements of their most
    likely class (score = that class' probability).

    Args:
        logits: [Q, K]; points: [Q, Np, 2] normalized (the teacher's final decoder layer).
    """
    scores, labels = logits.detach().float().sigmoid().max(-1)
    keep = (scores >= threshold).nonzero().flatten().tolist()
    metres = grid.denormalize(points.detach().float()).cpu().numpy().astype(np.float64)
    out = []
    for q in keep:
        label, element = int(labels[q]), metres[q].copy()
        if label in CLOSED_CLASSES:
            element[-1] = element[0]
        out.append(MapElement(label, element, float(scores[q])))
    return out


def teacher_is_right(
    elements: Sequence[MapElement], ground_truth: Sequence[MapElement], max_distance: float
) -> list[bool]:
    """For each element, whether a ground-truth element of its class lies within ``max_distance``
    metres of it (symmetric Chamfer distance of the two resampled polylines)."""
    out = [False] * len(elements)
    for class_id in {e.class_id for e in elements}:
        mine = [i for i, e in enumerate(elements) if e.class_id == class_id]
        gts = [g.points for g in ground_truth if g.class_id == class_id]
        if not gts:
            continue
        pred = np.stack([resample_polylines(elements[i].points, GATE_POINTS) for i in mine])
        gt = np.stack([resample_polylines(g, GATE_POINTS) for g in gts])
        near = chamfer_matrix(pred, gt).min(axis=1) <= max_distance
        for i, ok in zip(mine, near, strict=True):
            out[i] = bool(ok)
    return out
