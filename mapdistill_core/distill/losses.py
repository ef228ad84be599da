"""The three distillation losses of MapDistill, and the pairing of student with teacher queries.

Tensors: BEV maps [B, C, X, Y]; BEV patch tokens [B, T, C]; decoder hidden states [B, Q, Np, C];
class logits [B, Q, K]; points [B, Q, Np, 2] normalized to the BEV region. Teacher tensors are
expected detached.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

from mapdistill_core.data.batch import ordering_targets
from mapdistill_core.distill.pseudo_labels import CLOSED_CLASSES
from mapdistill_core.models.matcher import HungarianMatcher


def patch_tokens(bev: torch.Tensor, patch: int) -> torch.Tensor:
    """BEV [B, C, X, Y] -> tokens [B, T, C]: averages of ``patch`` x ``patch`` cells, row-major."""
    return F.avg_pool2d(bev.float(), patch).flatten(2).transpose(1, 2)


def relation_maps(ta: torch.Tensor, tb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log attention maps between two BEV streams' patch tokens [B, T, C], in both directions:
    a->b = log softmax(A B^T / sqrt(C)), b->a = log softmax(B A^T / sqrt(C)), each [B, T, T]."""
    scores = ta @ tb.transpose(1, 2) / math.sqrt(ta.shape[-1])
    return scores.log_softmax(-1), scores.transpose(1, 2).log_softmax(-1)


def relation_directions(student_views, teacher_tokens, patch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """KL(teacher || student) of the a->b and of the b->a relation maps: the teacher's camera<->LiDAR
    maps (from its patch tokens) taught to the student's LSS<->attention maps.

    Each of the T rows of a map is one patch's attention distribution over the T patches of the
    other stream; a direction's KL is summed over the rows (the KL of the whole map) and averaged
    over the batch. Averaging over rows instead would shrink the term by T (200 patches on the
    synthetic grid) and leave it two to three orders of magnitude below the others.
    """
    student = relation_maps(*(patch_tokens(v, patch) for v in student_views))
    teacher = relation_maps(*teacher_tokens)
    ab, ba = (F.kl_div(s, t, log_target=True, reduction="batchmean") for s, t in zip(student, teacher, strict=True))
    return ab, ba


def relation_loss(student_views, teacher_views, patch: int) -> torch.Tensor:
    """The relation term: the mean of ``relation_directions`` over its two directions."""
    ab, ba = relation_directions(student_views, tuple(patch_tokens(v, patch) for v in teacher_views), patch)
    return (ab + ba) / 2


def map_cell_weights(
    raster: torch.Tensor, confident: torch.Tensor | None, dilate: int, background: float
) -> torch.Tensor:
    """Per-cell weights of the BEV feature term [B, 1, X, Y]: 1 on the map, ``background`` elsewhere.

    The map is the line raster [B, K, X, Y] (any class) widened by ``dilate`` cells on each side,
    plus the cells where ``confident`` (bool [B, 1, X, Y], the teacher's confident segmentation) is
    set (None: none).
    """
    lines = raster.amax(1, keepdim=True).float()
    if dilate:
        lines = F.max_pool2d(lines, 2 * dilate + 1, stride=1, padding=dilate)
    on_map = lines > 0
    if confident is not None:
        on_map = on_map | confident
    return torch.where(on_map, 1.0, background)


def bev_feature_loss(
    student: torch.Tensor, teacher: torch.Tensor, weights: torch.Tensor | None, normalize: bool
) -> torch.Tensor:
    """Low-level feature term: per-cell MSE between (adapted) student and teacher BEV [B, C, X, Y],
    weighted by ``weights`` [B, 1, X, Y] (None: every cell alike) and divided by the weights' sum;
    with ``normalize`` each cell's feature vector is first standardized over the channels."""
    student, teacher = student.float(), teacher.float()
    if normalize:
        student = F.layer_norm(student.transpose(1, -1), student.shape[1:2]).transpose(1, -1)
        teacher = F.layer_norm(teacher.transpose(1, -1), teacher.shape[1:2]).transpose(1, -1)
    per_cell = (student - teacher).pow(2).mean(1, keepdim=True)
    if weights is None:
        return per_cell.mean()
    return (per_cell * weights).sum() / weights.sum().clamp(min=1e-6)


def prediction_targets(logits: torch.Tensor, points: torch.Tensor) -> list[dict]:
    """A model's predictions in the form of matching targets (``HungarianMatcher``'s ``targets``):
    every query is an element of its most likely class, closed (its last point set to its first)
    when that class is closed, and built into targets like ground truth (``ordering_targets``).

    Args:
        logits: [B, Q, K]; points: [B, Q, Np, 2] normalized.

    Returns:
        per sample "labels" [Q], "points" [Q, Np, 2], "permutations" [Q, 2 (Np - 1), Np, 2],
        "permutation_mask" [Q, 2 (Np - 1)].
    """
    labels = logits.argmax(-1).cpu()
    array = points.detach().float().cpu().numpy().copy()
    closed = np.isin(labels.numpy(), list(CLOSED_CLASSES))
    array[closed, -1] = array[closed, 0]
    out = []
    for b in range(len(array)):
        targets = ordering_targets(labels[b].tolist(), array[b])
        out.append({k: v.to(points.device) for k, v in targets.items()})
    return out


def pair_queries(matcher: HungarianMatcher, student: dict, teacher: dict) -> dict:
    """Pair every student query with a teacher query by the training matcher, the teacher's final-layer
    predictions standing in for the ground truth (see ``prediction_targets``); both dicts hold the
    final layer's "logits", "points" and (optionally for the teacher) "hidden" at the top level.

    Query indices of two independently trained DETR-style decoders mean nothing, so queries are
    paired by what they predict. Returns the pairs across the batch, each [M, ...]: ``s_logits``,
    ``t_logits``, ``s_points``, ``t_points`` (the teacher's element in the ordering closest to the
    student's), ``s_hidden``, ``t_hidden``, ``confidence`` (the teacher's top class probability) and
    ``t_index`` (the teacher query, b * Q + q); the hidden states only where ``teacher`` has them.
    """
    targets = prediction_targets(teacher["logits"], teacher["points"])
    matches = matcher(student["logits"], student["points"], targets)
    keys = ["s_logits", "t_logits", "s_points", "t_points", "t_index"]
    if "hidden" in teacher:
        keys += ["s_hidden", "t_hidden"]
    out = {k: [] for k in keys}
    queries = teacher["logits"].shape[1]
    for b, (rows, cols, perms) in enumerate(matches):
        out["t_index"].append(b * queries + cols)
        out["s_logits"].append(student["logits"][b, rows])
        out["t_logits"].append(teacher["logits"][b, cols])
        out["s_points"].append(student["points"][b, rows])
        out["t_points"].append(targets[b]["permutations"][cols, perms])
        if "hidden" in teacher:
            out["s_hidden"].append(student["hidden"][b, rows])
            out["t_hidden"].append(teacher["hidden"][b, cols])
    pairs = {k: torch.cat(v) for k, v in out.items()}
    pairs["confidence"] = pairs["t_logits"].float().sigmoid().amax(-1)
    return pairs


def bernoulli_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-class KL(teacher || student) of sigmoid probabilities at ``temperature``, times T^2: [..., K]."""
    t = temperature
    log_ps, log_qs = F.logsigmoid(student_logits / t), F.logsigmoid(-student_logits / t)
    pt = torch.sigmoid(teacher_logits / t)
    log_pt, log_qt = F.logsigmoid(teacher_logits / t), F.logsigmoid(-teacher_logits / t)
    return (pt * (log_pt - log_ps) + (1 - pt) * (log_qt - log_qs)) * t * t


def head_loss(pairs: dict, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(class KL, point L1) between paired student and teacher predictions, each weighted by the
    teacher's confidence so that its background queries teach little."""
    w = pairs["confidence"]
    norm = w.sum().clamp(min=1e-6)
    kl = (bernoulli_kl(pairs["s_logits"].float(), pairs["t_logits"].float(), temperature).sum(-1) * w).sum() / norm
    l1 = ((pairs["s_points"].float() - pairs["t_points"].float()).abs().mean((-1, -2)) * w).sum() / norm
    return kl, l1


def hidden_loss(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, confidence: torch.Tensor) -> torch.Tensor:
    """Confidence-weighted MSE between paired (adapted) student and teacher hidden states [M, Np, C]."""
    per_query = (student_hidden.float() - teacher_hidden.float()).pow(2).mean((-1, -2))
    return (per_query * confidence).sum() / confidence.sum().clamp(min=1e-6)
