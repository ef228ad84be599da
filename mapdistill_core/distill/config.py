"""The ``distill:`` section of an experiment config."""

from __future__ import annotations

from dataclasses import dataclass, field

from mapdistill_core.config import input_file

TERMS = ("relation", "feature", "head")  # the distillation terms, each weighted by its lambda


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
        head: lambda_3, map-head distillation: class KL at ``temperature`` + ``head_points`` x
            point L1, on student queries matched to teacher queries.
        relation_patch: BEV cells per patch side for the relation maps.
    """

    teacher: str = field(metadata=input_file("checkpoints", must_exist=False))
    relation: float = 0.1
    feature: float = 1.0
    head: float = 1.0
    relation_patch: int = 4
    temperature: float = 2.0
    head_points: float = 5.0
    feature_adapter: bool = False

    def __post_init__(self) -> None:
        if min(self.relation, self.feature, self.head) < 0:
            raise ValueError("distillation weights must be >= 0")
        if self.relation_patch < 1 or self.temperature <= 0:
            raise ValueError("relation_patch must be >= 1 and temperature > 0")
