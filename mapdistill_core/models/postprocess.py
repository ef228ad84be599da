"""The model's outputs as map elements (DETR's PostProcess): top-k (query, class) pairs by score."""

from __future__ import annotations

import numpy as np
import torch

from mapdistill_core.bev_grid import BEVGrid
from mapdistill_core.map_elements import MapElement


def decode(
    logits: torch.Tensor, points: torch.Tensor, grid: BEVGrid, top_k: int | None = None
) -> list[list[MapElement]]:
    """Last-layer outputs -> per sample the top-k (query, class) pairs by score, as MapTR does.

    Args:
        logits: [B, Q, K]; points: [B, Q, Np, 2] normalized.
    """
    b, q, k = logits.shape
    top_k = top_k or q
    scores = logits.float().sigmoid().flatten(1)  # [B, Q * K]
    values, index = scores.topk(min(top_k, q * k), dim=1)
    metres = grid.denormalize(points.float())
    out = []
    for i in range(b):
        labels = (index[i] % k).tolist()
        queries = (index[i] // k).tolist()
        pts = metres[i, queries].cpu().numpy().astype(np.float32)
        out.append([MapElement(c, p, float(s)) for c, p, s in zip(labels, pts, values[i].tolist(), strict=True)])
    return out
