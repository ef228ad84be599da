"""Permutation-equivalent Hungarian matching of predicted map elements to ground truth (MapTR).

The cost of assigning query q to ground-truth element g is
    w_cls * focal classification cost(q, label_g)
  + w_pts * min over the equivalent orderings p of g of mean |points_q - points_g,p|_1
so an open polyline matches in either direction and a closed one from any start point.
"""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment

from mapdistill_core.models.config import LossConfig


def focal_cost(logits: torch.Tensor, labels: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """DETR-style focal classification cost [Q, G] from logits [Q, K] and labels [G]."""
    prob = logits.sigmoid()
    neg = (1 - alpha) * prob**gamma * -(1 - prob + 1e-8).log()
    pos = alpha * (1 - prob) ** gamma * -(prob + 1e-8).log()
    return pos[:, labels] - neg[:, labels]


def permutation_l1(points: torch.Tensor, permutations: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance of every prediction to every target under each target ordering.

    Args:
        points: [Q, Np, 2]; permutations: [G, P, Np, 2]; mask: bool [G, P] valid orderings.

    Returns:
        [Q, G, P] distances, +inf where an ordering is padding.
    """
    dist = (points[:, None, None] - permutations[None]).abs().mean(dim=(-1, -2))
    return dist.masked_fill(~mask[None], float("inf"))


class HungarianMatcher:
    """Optimal one-to-one assignment of queries to ground-truth elements, per sample."""

    def __init__(self, cls_weight: float, pts_weight: float, alpha: float = 0.25, gamma: float = 2.0):
        self.cls_weight, self.pts_weight, self.alpha, self.gamma = cls_weight, pts_weight, alpha, gamma

    @torch.no_grad()
    def __call__(self, logits: torch.Tensor, points: torch.Tensor, targets: list[dict]) -> list[tuple]:
        """Match one decoder layer's outputs.

        Args:
            logits: [B, Q, K]; points: [B, Q, Np, 2] normalized; targets: per sample "labels" [G],
                "permutations" [G, P, Np, 2], "permutation_mask" [G, P].

        Returns:
            per sample (query indices [M], target indices [M], best ordering indices [M]).
        """
        out = []
        for b, target in enumerate(targets):
            if len(target["labels"]) == 0:
                empty = torch.zeros(0, dtype=torch.long, device=logits.device)
                out.append((empty, empty, empty))
                continue
            l1 = permutation_l1(points[b].float(), target["permutations"], target["permutation_mask"])
            best_l1, best_perm = l1.min(dim=2)  # [Q, G]
            cost = self.cls_weight * focal_cost(logits[b].float(), target["labels"], self.alpha, self.gamma)
            cost = cost + self.pts_weight * best_l1
            rows, cols = linear_sum_assignment(cost.cpu().numpy())
            rows = torch.as_tensor(rows, dtype=torch.long, device=logits.device)
            cols = torch.as_tensor(cols, dtype=torch.long, device=logits.device)
            out.append((rows, cols, best_perm[rows, cols]))
        return out


def build_matcher(config: LossConfig) -> HungarianMatcher:
    """The matcher of a model's losses: their classification and point weights and focal parameters."""
    return HungarianMatcher(config.classification, config.points, config.focal_alpha, config.focal_gamma)
