"""Map element classes, the perception region and the element type shared by every layer.

Frame: ego ``base_link`` (REP-103: x forward, y left, metres).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLASS_NAMES: tuple[str, ...] = ("divider", "ped_crossing", "boundary")
"""Class names in class-id order (0 divider, 1 ped_crossing, 2 boundary)."""

CLASS_IDS: dict[str, int] = {name: i for i, name in enumerate(CLASS_NAMES)}

CLASS_COLORS: dict[str, str] = {"divider": "orange", "ped_crossing": "blue", "boundary": "green"}
"""Display colours used by every plot and RViz marker."""

REGION: tuple[float, float, float, float] = (-30.0, -15.0, 30.0, 15.0)
"""Perception region (x_min, y_min, x_max, y_max) in base_link: MapTR's 60 m x 30 m."""

NUM_POINTS: int = 20
"""Points the model predicts per element (the default of the decoder's ``num_points``)."""

CLOSED_TOLERANCE: float = 1e-6
"""Two end points closer than this (metres) make a polyline closed."""


def is_closed(points: np.ndarray) -> bool:
    """Whether a polyline [K, 2] repeats its first point at the end (a closed shape)."""
    return len(points) > 2 and bool(np.linalg.norm(points[0] - points[-1]) <= CLOSED_TOLERANCE)


@dataclass(frozen=True)
class MapElement:
    """One vectorized map element in base_link.

    Attributes:
        class_id: index into CLASS_NAMES.
        points: float64 [K, 2] polyline (x, y); closed shapes repeat the first point at the end.
        score: confidence in [0, 1]; 1.0 for ground truth.
    """

    class_id: int
    points: np.ndarray
    score: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.class_id < len(CLASS_NAMES):
            raise ValueError(f"class_id {self.class_id} is not one of 0..{len(CLASS_NAMES) - 1}")
        points = np.asarray(self.points, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 2:
            raise ValueError(f"points must have shape [K, 2], got {list(points.shape)}")
        object.__setattr__(self, "points", points)

    @property
    def class_name(self) -> str:
        return CLASS_NAMES[self.class_id]

    @property
    def closed(self) -> bool:
        return is_closed(self.points)
