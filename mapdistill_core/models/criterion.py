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
    """L_map: matched per decoder layer, summed over layers.

    ``__call__`` returns the total loss and a dict of its detached parts, plus the last layer's
    matching (used by distillation to pair queries with targets).
    """

    def __init__(self, config: LossConfig):
        self.config = config
        self.matcher = HungarianMatcher(config.classification, config.points, config.focal_alpha, config.focal_gamma)

    def layer_loss(self, logits: torch.Tensor, points: torch.Tensor, targets: list[dict]) -> tuple[dict, list]:
        c = self.config
        matches = self.matcher(logits, points, targets)
        num_gt = max(sum(len(t["labels"]) for t in targets), 1)
        cls_target = torch.zeros_like(logits)
        pred_pts, gt_pts = [], []
        for b, (rows, cols, perms) in enumerate(matches):
            cls_target[b, rows, targets[b]["labels"][cols]] = 1.0
            pred_pts.append(points[b, rows])
            gt_pts.append(targets[b]["permutations"][cols, perms])
        pred_pts, gt_pts = torch.cat(pred_pts), torch.cat(gt_pts)  # [M, Np, 2]
        cls = sigmoid_focal_loss(logits.float(), cls_target, c.focal_alpha, c.focal_gamma) / num_gt
        pts = F.l1_loss(pred_pts.float(), gt_pts, reduction="sum") / (num_gt * pred_pts.shape[1])
        pred_dir, gt_dir = torch.diff(pred_pts.float(), dim=1), torch.diff(gt_pts, dim=1)
        valid = gt_dir.norm(dim=-1) > 1e-6
        cos = F.cosine_similarity(pred_dir, gt_dir, dim=-1, eps=1e-6)
        direction = ((1 - cos) * valid).sum() / num_gt
        return {"cls": cls, "pts": pts, "dir": direction}, matches

    def __call__(self, outputs: dict, batch: dict) -> tuple[torch.Tensor, dict, list]:
        c = self.config
        targets = batch["targets"]
        total = outputs["logits"][0].new_zeros(())
        parts: dict[str, torch.Tensor] = {}
        matches = []
        for logits, points in zip(outputs["logits"], outputs["points"], strict=True):
            losses, matches = self.layer_loss(logits, points, targets)
            total = total + c.classification * losses["cls"] + c.points * losses["pts"] + c.direction * losses["dir"]
            for k, v in losses.items():
                parts[k] = parts.get(k, 0.0) + v.detach()
        if c.segmentation > 0:
            seg = sigmoid_focal_loss(outputs["segmentation"].float(), batch["segmentation"], 0.75, 2.0)
            seg = seg / max(float(batch["segmentation"].sum()), 1.0)
            total = total + c.segmentation * seg
            parts["seg"] = seg.detach()
        parts["total"] = total.detach()
        return total, parts, matches
