"""Map losses (MapTR): focal classification, point L1 on the best ordering, edge direction, and an
auxiliary BEV segmentation loss, on every decoder layer."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from mapdistill_core.models.config import LossConfig
from mapdistill_core.models.matcher import HungarianMatcher


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float, gamma: float) -> torch.Tensor:
    """Summed sigmoid focal loss of logits and 0/1 targets of the same shape."""
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    return (loss * (alpha * targets + (1 - alpha) * (1 - targets))).sum()


class MapCriterion:
    """L_map, in DETR's form: the matcher pairs each decoder layer's queries with the ground truth
    (over every equivalent ordering), then one method per loss, summed over the layers with the
    config's weights, plus the auxiliary BEV segmentation loss.

    Args:
        config: the loss weights and the focal loss' alpha and gamma.
        matcher: pairs queries with targets (``build_matcher(config)``: the same weights).
    """

    def __init__(self, config: LossConfig, matcher: HungarianMatcher):
        self.config, self.matcher = config, matcher

    def loss_labels(self, logits: torch.Tensor, targets: list[dict], matches: list, num_gt: int) -> torch.Tensor:
        """Sigmoid focal loss of logits [B, Q, K]: a matched query's target is its element's class,
        every other query's is background; summed, divided by the number of ground-truth elements."""
        c = self.config
        cls_target = torch.zeros_like(logits)
        for b, (rows, cols, _) in enumerate(matches):
            cls_target[b, rows, targets[b]["labels"][cols]] = 1.0
        return sigmoid_focal_loss(logits.float(), cls_target, c.focal_alpha, c.focal_gamma) / num_gt

    @staticmethod
    def matched_points(points: torch.Tensor, targets: list[dict], matches: list) -> tuple[torch.Tensor, torch.Tensor]:
        """The matched predictions [M, Np, 2] and their ground truth in the matched ordering [M, Np, 2]."""
        pred = [points[b, rows] for b, (rows, _, _) in enumerate(matches)]
        gt = [targets[b]["permutations"][cols, perms] for b, (_, cols, perms) in enumerate(matches)]
        return torch.cat(pred).float(), torch.cat(gt)

    @staticmethod
    def loss_points(pred: torch.Tensor, gt: torch.Tensor, num_gt: int) -> torch.Tensor:
        """Point L1 between matched predictions and ground truth [M, Np, 2] (normalized coordinates),
        per point, divided by the number of ground-truth elements."""
        return F.l1_loss(pred, gt, reduction="sum") / (num_gt * pred.shape[1])

    @staticmethod
    def loss_direction(pred: torch.Tensor, gt: torch.Tensor, num_gt: int) -> torch.Tensor:
        """1 - cosine between matched predicted and ground-truth edge vectors (MapTR's direction loss),
        zero-length ground-truth edges left out."""
        pred_dir, gt_dir = torch.diff(pred, dim=1), torch.diff(gt, dim=1)
        valid = gt_dir.norm(dim=-1) > 1e-6
        cos = F.cosine_similarity(pred_dir, gt_dir, dim=-1, eps=1e-6)
        return ((1 - cos) * valid).sum() / num_gt

    @staticmethod
    def loss_segmentation(segmentation: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Focal loss of the BEV segmentation logits against the rasterized map [B, 1, X, Y], per positive cell."""
        return sigmoid_focal_loss(segmentation.float(), target, 0.75, 2.0) / max(float(target.sum()), 1.0)

    def layer_losses(self, logits: torch.Tensor, points: torch.Tensor, targets: list[dict]) -> dict[str, torch.Tensor]:
        """One decoder layer's "cls", "pts" and "dir" losses (logits [B, Q, K], points [B, Q, Np, 2])."""
        matches = self.matcher(logits, points, targets)
        num_gt = max(sum(len(t["labels"]) for t in targets), 1)
        pred, gt = self.matched_points(points, targets, matches)
        return {
            "cls": self.loss_labels(logits, targets, matches, num_gt),
            "pts": self.loss_points(pred, gt, num_gt),
            "dir": self.loss_direction(pred, gt, num_gt),
        }

    def __call__(self, outputs: dict, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The total L_map and its detached parts: per decoder layer ``cls_<l>``, ``pts_<l>``, ``dir_<l>``
        (l = 0 first: ``aux_outputs`` then the final layer), their sums over the layers ``cls``,
        ``pts``, ``dir``, ``seg`` and ``total``."""
        c = self.config
        weights = {"cls": c.classification, "pts": c.points, "dir": c.direction}
        total = outputs["logits"].new_zeros(())
        parts: dict[str, torch.Tensor] = {}
        for layer, output in enumerate([*outputs["aux_outputs"], outputs]):
            for name, value in self.layer_losses(output["logits"], output["points"], batch["targets"]).items():
                total = total + weights[name] * value
                parts[f"{name}_{layer}"] = value.detach()
                parts[name] = parts.get(name, 0.0) + value.detach()
        if c.segmentation > 0:
            seg = self.loss_segmentation(outputs["segmentation"], batch["segmentation"])
            total = total + c.segmentation * seg
            parts["seg"] = seg.detach()
        parts["total"] = total.detach()
        return total, parts
