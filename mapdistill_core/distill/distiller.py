"""The distillation objective: a frozen teacher, the adapters, and L_map + the three losses."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from mapdistill_core.checkpoint import load_model
from mapdistill_core.distill.config import DistillConfig
from mapdistill_core.distill.losses import head_loss, hidden_loss, pair_queries, relation_loss
from mapdistill_core.errors import ConfigError
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
    """The Trainer's loss for a distilled student: (student outputs, batch, student) -> (terms, parts).

    ``terms`` are the weighted summands of L = L_map + lambda_1 relation + lambda_2 feature +
    lambda_3 head, named "map", "relation", "feature" and "head" (a term whose lambda is 0 is left
    out); ``parts`` are their detached pieces, for the log. Holds the frozen teacher (eval mode, no
    gradients) and the trainable adapters; only the adapters are parameters of this module. Queries
    are paired with the training matcher (``pair_queries``), with the student's matching weights.
    """

    def __init__(self, config: DistillConfig, student: ModelConfig, teacher: MapModel, amp_dtype=None):
        super().__init__()
        self.config, self.amp_dtype = config, amp_dtype
        check_compatible(student, teacher.config, config.teacher)
        teacher.requires_grad_(False)
        self._teacher = [teacher.eval()]  # a list keeps it out of this module's parameters and state
        cs, ct = student.bev_channels, teacher.config.bev_channels
        adapt = config.feature_adapter or cs != ct
        self.low_adapter = nn.Conv2d(cs, ct, 1) if adapt else nn.Identity()
        self.high_adapter = nn.Linear(cs, ct) if adapt else nn.Identity()
        self.criterion = MapCriterion(student.loss)
        self.to(next(teacher.parameters()).device)

    @classmethod
    def from_config(cls, config: DistillConfig, student: ModelConfig, device: torch.device, amp_dtype=None):
        """Load the teacher named by ``config.teacher`` onto ``device``."""
        teacher, _ = load_model(config.teacher, device)
        return cls(config, student, teacher, amp_dtype)

    @property
    def teacher(self) -> MapModel:
        return self._teacher[0]

    def teacher_outputs(self, batch: dict) -> dict:
        device = batch["images"].device
        with torch.no_grad(), torch.autocast(device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            return self.teacher(batch)

    def forward(self, outputs: dict, batch: dict, student: MapModel) -> tuple[dict, dict]:
        c = self.config
        map_total, map_parts = self.criterion(outputs, batch)
        terms = {"map": map_total}
        parts = {f"map_{k}": v for k, v in map_parts.items()}
        if c.relation > 0 or c.feature > 0 or c.head > 0:
            terms.update(self.distillation(outputs, batch, parts))
        parts["total"] = sum(t.detach() for t in terms.values())
        return terms, parts

    def distillation(self, outputs: dict, batch: dict, parts: dict) -> dict[str, torch.Tensor]:
        """The weighted distillation terms with a lambda > 0; their detached pieces go into ``parts``."""
        c = self.config
        terms = {}
        teacher = self.teacher_outputs(batch)
        if c.relation > 0:
            relation = relation_loss(outputs["bev_views"], teacher["bev_views"], c.relation_patch)
            terms["relation"] = c.relation * relation
            parts["relation"] = relation.detach()
        if c.feature > 0 or c.head > 0:
            pairs = pair_queries(self.criterion.matcher, outputs, teacher)
        if c.feature > 0:
            low = F.mse_loss(self.low_adapter(outputs["bev"].float()), teacher["bev"].float())
            high = hidden_loss(self.high_adapter(pairs["s_hidden"].float()), pairs["t_hidden"], pairs["confidence"])
            terms["feature"] = c.feature * (low + high)
            parts.update(feature_low=low.detach(), feature_high=high.detach())
        if c.head > 0:
            kl, l1 = head_loss(pairs, c.temperature)
            terms["head"] = c.head * (kl + c.head_points * l1)
            parts.update(head_cls=kl.detach(), head_points=l1.detach())
        return terms
