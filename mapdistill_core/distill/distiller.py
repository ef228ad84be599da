"""The distillation objective: a frozen teacher, the adapters, and L_map + the three losses."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from mapdistill_core.checkpoint import load_model
from mapdistill_core.config import ConfigError
from mapdistill_core.distill.config import DistillConfig
from mapdistill_core.distill.losses import gather_matched, head_loss, hidden_loss, match_queries, relation_loss
from mapdistill_core.models.config import ModelConfig
from mapdistill_core.models.criterion import MapCriterion
from mapdistill_core.models.model import MapModel


def check_compatible(student: ModelConfig, teacher: ModelConfig, source: str) -> None:
    """A student can learn from a teacher that predicts on the same BEV grid and point count."""
    if teacher.kind != "teacher":
        raise ConfigError(f"{source}: distill.teacher is a {teacher.kind}, not a teacher")
    if tuple(student.bev_size) != tuple(teacher.bev_size):
        raise ConfigError(f"{source}: student bev_size {list(student.bev_size)} != teacher {list(teacher.bev_size)}")
    if student.decoder.num_points != teacher.decoder.num_points:
        raise ConfigError(f"{source}: student and teacher predict different numbers of points per element")
    if student.view_transform != "dual":
        raise ConfigError(f"{source}: relation distillation needs the student's dual BEV transform")


class Distiller(nn.Module):
    """Callable as the Trainer's loss: (student outputs, batch, student) -> (loss, parts).

    Holds the frozen teacher (eval mode, no gradients) and the trainable adapters; only the
    adapters are parameters of this module.
    """

    def __init__(self, config: DistillConfig, student: ModelConfig, device: torch.device, amp_dtype=None):
        super().__init__()
        self.config, self.amp_dtype = config, amp_dtype
        teacher, _ = load_model(config.teacher, device)
        check_compatible(student, teacher.config, config.teacher)
        teacher.requires_grad_(False)
        self._teacher = [teacher.eval()]  # a list keeps it out of this module's parameters and state
        cs, ct = student.bev_channels, teacher.config.bev_channels
        self.low_adapter = nn.Conv2d(cs, ct, 1) if cs != ct else nn.Identity()
        self.high_adapter = nn.Linear(cs, ct) if cs != ct else nn.Identity()
        self.criterion = MapCriterion(student.loss)
        self.to(device)

    @property
    def teacher(self) -> MapModel:
        return self._teacher[0]

    def teacher_outputs(self, batch: dict) -> dict:
        device = batch["images"].device
        with torch.no_grad(), torch.autocast(device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            return self.teacher(batch)

    def forward(self, outputs: dict, batch: dict, student: MapModel) -> tuple[torch.Tensor, dict]:
        c = self.config
        total, parts, _ = self.criterion(outputs, batch)
        parts = {f"map_{k}": v for k, v in parts.items()}
        if c.relation > 0 or c.feature > 0 or c.head > 0:
            total = total + self.distillation(outputs, batch, parts)
        parts["total"] = total.detach()
        return total, parts

    def distillation(self, outputs: dict, batch: dict, parts: dict) -> torch.Tensor:
        """lambda_1 relation + lambda_2 feature + lambda_3 head; detached parts go into ``parts``."""
        c = self.config
        total = outputs["bev"].new_zeros(())
        teacher = self.teacher_outputs(batch)
        if c.relation > 0:
            relation = relation_loss(outputs["bev_views"], teacher["bev_views"], c.relation_patch)
            total = total + c.relation * relation
            parts["relation"] = relation.detach()
        if c.feature > 0 or c.head > 0:
            matches = match_queries(
                outputs["logits"][-1], outputs["points"][-1], teacher["logits"][-1], teacher["points"][-1]
            )
            pairs = gather_matched(outputs, teacher, matches)
        if c.feature > 0:
            low = F.mse_loss(self.low_adapter(outputs["bev"].float()), teacher["bev"].float())
            high = hidden_loss(self.high_adapter(pairs["s_hidden"].float()), pairs["t_hidden"], pairs["confidence"])
            total = total + c.feature * (low + high)
            parts.update(feature_low=low.detach(), feature_high=high.detach())
        if c.head > 0:
            kl, l1 = head_loss(pairs, c.temperature)
            total = total + c.head * (kl + c.head_points * l1)
            parts.update(head_cls=kl.detach(), head_points=l1.detach())
        return total
