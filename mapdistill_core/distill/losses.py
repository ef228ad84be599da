"""The three distillation losses of MapDistill, as plain functions of teacher and student tensors.

Tensors: BEV maps [B, C, X, Y]; decoder hidden states [B, Q, Np, C]; class logits [B, Q, K];
points [B, Q, Np, 2] normalized. Teacher tensors are expected detached.
"""

from __future__ import annotations

import math

import torch
from scipy.optimize import linear_sum_assignment
from torch.nn import functional as F


def relation_maps(a: torch.Tensor, b: torch.Tensor, patch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Log attention maps between two BEV streams' patch features, in both directions.

    Patches are ``patch`` x ``patch`` cell averages; with tokens A, B [B, T, C]:
    a->b = log softmax(A B^T / sqrt(C)), b->a = log softmax(B A^T / sqrt(C)), each [B, T, T].
    """
    ta = F.avg_pool2d(a, patch).flatten(2).transpose(1, 2)
    tb = F.avg_pool2d(b, patch).flatten(2).transpose(1, 2)
    scores = ta @ tb.transpose(1, 2) / math.sqrt(ta.shape[-1])
    return scores.log_softmax(-1), scores.transpose(1, 2).log_softmax(-1)


def relation_loss(student_views, teacher_views, patch: int) -> torch.Tensor:
    """KL(teacher || student) of the camera<->LiDAR relation maps (teacher) and the LSS<->attention
    relation maps (student), both directions, averaged over rows."""
    total = 0.0
    for s, t in zip(relation_maps(*student_views, patch), relation_maps(*teacher_views, patch), strict=True):
        total = total + F.kl_div(s, t, log_target=True, reduction="batchmean") / s.shape[1]
    return total


def match_queries(student_logits, student_points, teacher_logits, teacher_points) -> list[tuple]:
    """Pair every student query with a teacher query (Hungarian, per sample).

    Cost = L1 between class probabilities + mean point L1 (the closer of the teacher polyline and
    its reverse). Query indices of two independently trained DETR-style decoders mean nothing, so
    queries are paired by what they predict.

    Returns per sample (student indices [M], teacher indices [M], reversed [M] bool).
    """
    out = []
    with torch.no_grad():
        ps, pt = student_logits.float().sigmoid(), teacher_logits.float().sigmoid()
        for b in range(len(ps)):
            cls = torch.cdist(ps[b], pt[b], p=1)
            forward = (student_points[b, :, None] - teacher_points[b, None]).abs().mean((-1, -2))
            backward = (student_points[b, :, None] - teacher_points[b, None].flip(-2)).abs().mean((-1, -2))
            cost = cls + 5.0 * torch.minimum(forward, backward)
            rows, cols = linear_sum_assignment(cost.cpu().numpy())
            rows = torch.as_tensor(rows, device=ps.device)
            cols = torch.as_tensor(cols, device=ps.device)
            out.append((rows, cols, (backward < forward)[rows, cols]))
    return out


def bernoulli_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-class KL(teacher || student) of sigmoid probabilities at ``temperature``, times T^2: [..., K]."""
    t = temperature
    log_ps, log_qs = F.logsigmoid(student_logits / t), F.logsigmoid(-student_logits / t)
    pt = torch.sigmoid(teacher_logits / t)
    log_pt, log_qt = F.logsigmoid(teacher_logits / t), F.logsigmoid(-teacher_logits / t)
    return (pt * (log_pt - log_ps) + (1 - pt) * (log_qt - log_qs)) * t * t


def gather_matched(student: dict, teacher: dict, matches: list[tuple]) -> dict:
    """Matched pairs across the batch: logits, points (teacher reversed where that fits better),
    hidden states and teacher confidence, each [M, ...]."""
    out = {k: [] for k in ("s_logits", "t_logits", "s_points", "t_points", "s_hidden", "t_hidden")}
    for b, (rows, cols, flip) in enumerate(matches):
        t_points = teacher["points"][-1][b, cols]
        t_points = torch.where(flip[:, None, None], t_points.flip(-2), t_points)
        out["s_logits"].append(student["logits"][-1][b, rows])
        out["t_logits"].append(teacher["logits"][-1][b, cols])
        out["s_points"].append(student["points"][-1][b, rows])
        out["t_points"].append(t_points)
        out["s_hidden"].append(student["hidden"][-1][b, rows])
        out["t_hidden"].append(teacher["hidden"][-1][b, cols])
    pairs = {k: torch.cat(v) for k, v in out.items()}
    pairs["confidence"] = pairs["t_logits"].float().sigmoid().amax(-1)
    return pairs


def head_loss(pairs: dict, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(class KL, point L1) between matched student and teacher predictions, each weighted by the
    teacher's confidence so that its background queries teach little."""
    w = pairs["confidence"]
    norm = w.sum().clamp(min=1e-6)
    kl = (bernoulli_kl(pairs["s_logits"].float(), pairs["t_logits"].float(), temperature).sum(-1) * w).sum() / norm
    l1 = ((pairs["s_points"].float() - pairs["t_points"].float()).abs().mean((-1, -2)) * w).sum() / norm
    return kl, l1


def hidden_loss(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, confidence: torch.Tensor) -> torch.Tensor:
    """Confidence-weighted MSE between matched (adapted) student and teacher hidden states [M, Np, C]."""
    per_query = (student_hidden.float() - teacher_hidden.float()).pow(2).mean((-1, -2))
    return (per_query * confidence).sum() / confidence.sum().clamp(min=1e-6)
