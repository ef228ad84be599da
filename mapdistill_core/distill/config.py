"""The ``distill:`` section of an experiment config."""

from __future__ import annotations

from dataclasses import dataclass, field

from mapdistill_core.config import check_ranges, input_file, number

TERMS = ("relation", "feature", "head")  # the distillation terms, each weighted by its lambda
HEAD_TARGETS = ("soft", "pseudo")


@dataclass(frozen=True)
class DistillConfig:
    """L = L_map + relation * L_relation + feature * L_feature + head * L_head.

    Attributes:
        teacher: weights (.safetensors) of a trained teacher; frozen during distillation.
        relation: lambda_1, cross-modal relation distillation (0 turns it off); its KL is summed
            over the rows of the relation maps, so it grows with the number of patches.
        feature: lambda_2, dual-level feature distillation: fused BEV (low) + decoder hidden
            states (high), MSE through 1x1 adapters where channels differ.
        feature_adapter: learned 1x1 adapters also where the channels agree (FitNets' regressor):
            the student then matches the teacher's features through a map it learns, not with its
            own features, which its map head reads.
        feature_norm: compare BEV features normalized per cell (zero mean, unit variance over the
            channels, as a parameter-free layer norm), student (adapted) and teacher alike.
        feature_background: weight of a BEV cell off the map in the low-level feature term; map
            cells (the ground truth's lines widened by ``feature_dilate`` cells, plus the cells
            where the teacher's segmentation is confident) weigh 1. 1: every cell alike.
        feature_dilate: cells the map's line raster is widened by, on each side.
        head: lambda_3, map-head distillation; ``head_targets`` says how:
            "soft": class KL at ``temperature`` + ``head_points`` x point L1 on student queries
            matched to teacher queries, weighted by the teacher's confidence;
            "pseudo": the teacher's predictions scoring at least ``pseudo_threshold`` are ground
            truth for the training criterion (focal classification, permutation-invariant point
            L1, direction; the one matcher), as MapDistill's head term does.
        pseudo_threshold: score from which a teacher prediction is a pseudo label (the pseudo head
            term, and the map targets of unlabelled samples).
        teacher_gate: metres; above 0, on a labelled sample a teacher prediction teaches (head
            term, and the confident cells of the feature term) only if its Chamfer distance to a
            ground-truth element of its class is at most this: the teacher teaches where it is
            right. 0: no gate.
        warmup_steps: the distillation weights ramp linearly from 0 to their values over this many
            optimizer steps (0: full weight from the first step).
        cache_teacher: keep the teacher's outputs per training sample after its first forward
            (the samples are not augmented, so they never change) instead of running it every step.
        relation_patch: BEV cells per patch side for the relation maps.
    """

    teacher: str = field(metadata=input_file("checkpoints", must_exist=False))
    relation: float = field(default=0.1, metadata=number(0))
    feature: float = field(default=1.0, metadata=number(0))
    head: float = field(default=1.0, metadata=number(0))
    relation_patch: int = field(default=4, metadata=number(1))
    temperature: float = field(default=2.0, metadata=number(0, low_open=True))
    head_points: float = field(default=5.0, metadata=number(0))
    feature_adapter: bool = False
    feature_norm: bool = False
    feature_background: float = field(default=1.0, metadata=number(0, 1))
    feature_dilate: int = field(default=2, metadata=number(0))
    head_targets: str = "soft"
    pseudo_threshold: float = field(default=0.4, metadata=number(0, 1, low_open=True, high_open=True))
    teacher_gate: float = field(default=0.0, metadata=number(0))
    warmup_steps: int = field(default=0, metadata=number(0))
    cache_teacher: bool = True

    def __post_init__(self) -> None:
        check_ranges(self, "distill")
        if self.head_targets not in HEAD_TARGETS:
            raise ValueError(f"head_targets must be one of {list(HEAD_TARGETS)}, got '{self.head_targets}'")

    def ramp(self, step: int | None) -> float:
        """The share of the distillation weights at optimizer step ``step`` (0-based; None: 1)."""
        if step is None or self.warmup_steps == 0:
            return 1.0
        return min(1.0, step / self.warmup_steps)
