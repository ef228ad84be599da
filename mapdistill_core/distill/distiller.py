"""The distillation objective: a frozen teacher, the adapters, and L_map + the three losses."""

from __future__ import annotations

import torch
from torch import nn

from mapdistill_core.checkpoint import load_model
from mapdistill_core.data.batch import element_targets, rasterize
from mapdistill_core.distill.config import DistillConfig
from mapdistill_core.distill.losses import (
    bev_feature_loss,
    head_loss,
    hidden_loss,
    map_cell_weights,
    pair_queries,
    patch_tokens,
    relation_directions,
)
from mapdistill_core.distill.pseudo_labels import pseudo_elements, teacher_is_right
from mapdistill_core.errors import ConfigError
from mapdistill_core.map_elements import MapElement
from mapdistill_core.models.config import ModelConfig
from mapdistill_core.models.criterion import MapCriterion
from mapdistill_core.models.matcher import build_matcher
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


class TeacherCache:
    """The teacher's outputs that the terms read, per training sample (by token), on the CPU.

    Per sample: ``logits`` [Q, K], ``points`` [Q, Np, 2], ``hidden`` [Q, Np, C] of the final decoder
    layer; ``confident`` bool [1, X, Y] (segmentation probability of some class at least the
    pseudo-label threshold); and, when the terms need them, ``bev`` [C, X, Y] and the relation's
    patch tokens ``tokens_a``, ``tokens_b`` [T, C]. A sample is read without augmentation, so its
    teacher outputs never change: the first forward's are kept.
    """

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, torch.Tensor]] = {}

    def get(self, tokens: list[str]) -> list[dict] | None:
        """The entries of every token, or None if one is missing."""
        if any(t not in self.entries for t in tokens):
            return None
        return [self.entries[t] for t in tokens]

    def put(self, tokens: list[str], batched: dict[str, torch.Tensor]) -> None:
        for b, token in enumerate(tokens):
            self.entries[token] = {k: v[b].detach().cpu() for k, v in batched.items()}


class Distiller(nn.Module):
    """The Trainer's loss for a distilled student: (student outputs, batch, student, step) -> (terms, parts).

    ``terms`` are the weighted summands of L = L_map + lambda_1 relation + lambda_2 feature +
    lambda_3 head, named "map", "relation", "feature" and "head" (a term whose lambda is 0 is left
    out), the lambdas ramped up over ``warmup_steps``; ``parts`` are their detached pieces, for the
    log. Holds the frozen teacher (eval mode, no gradients) and the trainable adapters; only the
    adapters are parameters of this module. Queries are paired with the criterion's own matcher
    (``pair_queries``, the student's matching weights).

    Unlabelled samples (``batch["labeled"]`` False) get the teacher's pseudo labels as their map
    targets, so L_map teaches them what the teacher sees; the pseudo head term acts on the labelled
    samples only (on the others it would repeat L_map).
    """

    def __init__(self, config: DistillConfig, student: ModelConfig, teacher: MapModel, amp_dtype=None):
        super().__init__()
        self.config, self.amp_dtype = config, amp_dtype
        check_compatible(student, teacher.config, config.teacher)
        teacher.requires_grad_(False)
        self._teacher = [teacher.eval()]  # a list keeps it out of this module's parameters and state
        self.num_points = student.decoder.num_points
        cs, ct = student.bev_channels, teacher.config.bev_channels
        adapt = config.feature_adapter or cs != ct
        self.low_adapter = nn.Conv2d(cs, ct, 1) if adapt else nn.Identity()
        self.high_adapter = nn.Linear(cs, ct) if adapt else nn.Identity()
        self.matcher = build_matcher(student.loss)  # the criterion's, shared with the query pairing
        self.criterion = MapCriterion(student.loss, self.matcher)
        self.cache = TeacherCache() if config.cache_teacher else None
        self.to(next(teacher.parameters()).device)

    @classmethod
    def from_config(cls, config: DistillConfig, student: ModelConfig, device: torch.device, amp_dtype=None):
        """Load the teacher named by ``config.teacher`` onto ``device``."""
        teacher, _ = load_model(config.teacher, device)
        return cls(config, student, teacher, amp_dtype)

    @property
    def teacher(self) -> MapModel:
        return self._teacher[0]

    def run_teacher(self, batch: dict) -> dict[str, torch.Tensor]:
        """The teacher's outputs the terms read, batched (see ``TeacherCache`` for the keys)."""
        c = self.config
        device = batch["images"].device
        with torch.no_grad(), torch.autocast(device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            out = self.teacher(batch)
        confident = out["segmentation"].float().sigmoid().amax(1, keepdim=True) >= c.pseudo_threshold
        kept = {"logits": out["logits"], "points": out["points"], "confident": confident}
        if c.feature > 0:
            kept.update(hidden=out["hidden"], bev=out["bev"])
        if c.relation > 0:
            kept.update(tokens_a=patch_tokens(out["bev_views"][0], c.relation_patch))
            kept.update(tokens_b=patch_tokens(out["bev_views"][1], c.relation_patch))
        return {k: v if v.dtype == torch.bool else v.float() for k, v in kept.items()}

    def teacher_outputs(self, batch: dict) -> dict[str, torch.Tensor]:
        """``run_teacher``'s outputs, from the cache where every sample of the batch is in it."""
        if self.cache is None:
            return self.run_teacher(batch)
        tokens = batch["tokens"]
        entries = self.cache.get(tokens)
        if entries is None:
            out = self.run_teacher(batch)
            self.cache.put(tokens, out)
            return out
        device = batch["images"].device
        return {k: torch.stack([e[k] for e in entries]).to(device) for k in entries[0]}

    def needs_teacher(self, batch: dict) -> bool:
        c = self.config
        return c.relation > 0 or c.feature > 0 or c.head > 0 or not bool(batch["labeled"].all())

    def forward(self, outputs: dict, batch: dict, student: MapModel, step: int | None = None) -> tuple[dict, dict]:
        """(terms, parts) at optimizer step ``step`` (None: after the warm-up)."""
        pieces = {}
        if self.needs_teacher(batch):
            teacher = self.teacher_outputs(batch)
            pseudo = self.pseudo_labels(teacher, batch) if self.reads_pseudo_labels(batch) else []
            batch = self.with_pseudo_targets(batch, pseudo)
            pieces = self.pieces(outputs, batch, teacher, pseudo)
        map_total, map_parts = self.criterion(outputs, batch)
        terms = {"map": map_total, **self.weighted(pieces, self.config.ramp(step))}
        parts = {f"map_{k}": v for k, v in map_parts.items()} | {k: v.detach() for k, v in pieces.items()}
        if "relation_ab" in pieces:
            parts["relation"] = (parts["relation_ab"] + parts["relation_ba"]) / 2
        parts["total"] = sum(t.detach() for t in terms.values())
        return terms, parts

    def reads_pseudo_labels(self, batch: dict) -> bool:
        """Whether something reads the pseudo labels: the pseudo head term, or unlabelled samples' targets."""
        c = self.config
        return (c.head > 0 and c.head_targets == "pseudo") or not bool(batch["labeled"].all())

    def weighted(self, pieces: dict[str, torch.Tensor], ramp: float) -> dict[str, torch.Tensor]:
        """The distillation terms from their pieces: lambda x ramp x (the pieces' combination)."""
        c = self.config
        terms = {}
        if c.relation > 0:
            terms["relation"] = c.relation * ramp * (pieces["relation_ab"] + pieces["relation_ba"]) / 2
        if c.feature > 0:
            terms["feature"] = c.feature * ramp * (pieces["feature_low"] + pieces["feature_high"])
        if c.head > 0 and c.head_targets == "soft":
            terms["head"] = c.head * ramp * (pieces["head_cls"] + c.head_points * pieces["head_points"])
        elif c.head > 0:
            w = self.criterion.config
            pseudo = w.classification * pieces["head_cls"] + w.points * pieces["head_points"]
            terms["head"] = c.head * ramp * (pseudo + w.direction * pieces["head_dir"])
        return terms

    def pseudo_labels(self, teacher: dict, batch: dict) -> list[list[MapElement]]:
        """Per sample, the teacher's predictions at or above the pseudo-label threshold; on a labelled
        sample with ``teacher_gate``, only those near a ground-truth element of their class."""
        c = self.config
        out = []
        for b in range(len(batch["tokens"])):
            elements = pseudo_elements(teacher["logits"][b], teacher["points"][b], self.grid, c.pseudo_threshold)
            if c.teacher_gate > 0 and bool(batch["labeled"][b]):
                right = teacher_is_right(elements, batch["ground_truth"][b], c.teacher_gate)
                elements = [e for e, ok in zip(elements, right, strict=True) if ok]
            out.append(elements)
        return out

    @property
    def grid(self):
        return self.teacher.grid

    def with_pseudo_targets(self, batch: dict, pseudo: list[list[MapElement]]) -> dict:
        """The batch with each unlabelled sample's map targets and raster made from its pseudo labels."""
        unlabeled = (~batch["labeled"]).nonzero().flatten().tolist()
        if not unlabeled:
            return batch
        targets, raster = list(batch["targets"]), batch["segmentation"].clone()
        device = raster.device
        for b in unlabeled:
            made = element_targets(pseudo[b], self.grid, self.num_points)
            targets[b] = {k: v.to(device) for k, v in made.items()}
            raster[b] = torch.from_numpy(rasterize(pseudo[b], self.grid)).to(device)
        return batch | {"targets": targets, "segmentation": raster}

    def pieces(self, outputs: dict, batch: dict, teacher: dict, pseudo: list) -> dict[str, torch.Tensor]:
        """Every part of every distillation term with a lambda > 0, undetached: relation_ab,
        relation_ba; feature_low, feature_high; head_cls, head_points (and head_dir for pseudo)."""
        c = self.config
        pieces = {}
        if c.relation > 0:
            tokens = (teacher["tokens_a"], teacher["tokens_b"])
            pieces["relation_ab"], pieces["relation_ba"] = relation_directions(
                outputs["bev_views"], tokens, c.relation_patch
            )
        if c.feature > 0 or (c.head > 0 and c.head_targets == "soft"):
            pairs = self.gated_pairs(outputs, batch, teacher)
        if c.feature > 0:
            weights = None
            if c.feature_background < 1:
                confident = teacher["confident"]
                if c.teacher_gate > 0:  # on labelled samples only the ground truth's map counts
                    confident = confident & ~batch["labeled"][:, None, None, None]
                weights = map_cell_weights(batch["segmentation"], confident, c.feature_dilate, c.feature_background)
            pieces["feature_low"] = bev_feature_loss(
                self.low_adapter(outputs["bev"].float()), teacher["bev"], weights, c.feature_norm
            )
            pieces["feature_high"] = hidden_loss(
                self.high_adapter(pairs["s_hidden"].float()), pairs["t_hidden"], pairs["confidence"]
            )
        if c.head > 0 and c.head_targets == "soft":
            pieces["head_cls"], pieces["head_points"] = head_loss(pairs, c.temperature)
        elif c.head > 0:
            pieces.update(self.pseudo_head(outputs, batch, pseudo))
        return pieces

    def gated_pairs(self, outputs: dict, batch: dict, teacher: dict) -> dict:
        """``pair_queries`` with the teacher's outputs; with ``teacher_gate``, a pair whose teacher
        query is wrong on a labelled sample (no ground truth of its class within the gate) gets
        confidence 0, so it teaches nothing."""
        c = self.config
        pairs = pair_queries(self.matcher, outputs, teacher)
        if c.teacher_gate > 0:
            right = torch.ones(teacher["logits"].shape[:2], dtype=torch.bool)
            for b in batch["labeled"].nonzero().flatten().tolist():
                every = pseudo_elements(teacher["logits"][b], teacher["points"][b], self.grid, 0.0)
                right[b] = torch.tensor(teacher_is_right(every, batch["ground_truth"][b], c.teacher_gate))
            keep = right.flatten().to(pairs["confidence"].device)[pairs["t_index"]]
            pairs["confidence"] = pairs["confidence"] * keep
        return pairs

    def pseudo_head(self, outputs: dict, batch: dict, pseudo: list[list[MapElement]]) -> dict[str, torch.Tensor]:
        """The map criterion's classification, point and direction losses of every decoder layer
        against the pseudo labels, on the labelled samples: head_cls, head_points, head_dir."""
        labeled = batch["labeled"].nonzero().flatten()
        zero = outputs["logits"].new_zeros(()).float()
        pieces = {"head_cls": zero, "head_points": zero, "head_dir": zero}
        if len(labeled) == 0:
            return pieces
        device = outputs["logits"].device
        targets = [
            {k: v.to(device) for k, v in element_targets(pseudo[b], self.grid, self.num_points).items()}
            for b in labeled.tolist()
        ]
        for output in [*outputs["aux_outputs"], outputs]:
            losses = self.criterion.layer_losses(output["logits"][labeled], output["points"][labeled], targets)
            pieces["head_cls"] = pieces["head_cls"] + losses["cls"]
            pieces["head_points"] = pieces["head_points"] + losses["pts"]
            pieces["head_dir"] = pieces["head_dir"] + losses["dir"]
        return pieces
