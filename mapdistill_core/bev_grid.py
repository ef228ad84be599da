"""The BEV grid over the perception region, and conversions between metres and normalized units.

A BEV map is [B, C, X, Y]: row i covers x in [x_min + i * dx, x_min + (i + 1) * dx) (forward),
column j covers y in [y_min + j * dy, ...) (left). Normalized point coordinates are
((x - x_min) / (x_max - x_min), (y - y_min) / (y_max - y_min)) in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mapdistill_core.map_elements import REGION


@dataclass(frozen=True)
class BEVGrid:
    size: tuple[int, int]
    region: tuple[float, float, float, float] = REGION

    @property
    def cell(self) -> tuple[float, float]:
        x_min, y_min, x_max, y_max = self.region
        return (x_max - x_min) / self.size[0], (y_max - y_min) / self.size[1]

    def centers(self, device: torch.device | None = None) -> torch.Tensor:
        """Cell centres [X, Y, 2] (x, y) in metres."""
        x_min, y_min, _, _ = self.region
        dx, dy = self.cell
        xs = x_min + (torch.arange(self.size[0], device=device) + 0.5) * dx
        ys = y_min + (torch.arange(self.size[1], device=device) + 0.5) * dy
        return torch.stack(torch.meshgrid(xs, ys, indexing="ij"), dim=-1)

    def cell_index(self, xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat cell index (i * Y + j) of points [..., 2] and whether they fall inside the grid."""
        x_min, y_min, _, _ = self.region
        dx, dy = self.cell
        i = torch.floor((xy[..., 0] - x_min) / dx).long()
        j = torch.floor((xy[..., 1] - y_min) / dy).long()
        inside = (i >= 0) & (i < self.size[0]) & (j >= 0) & (j < self.size[1])
        return i * self.size[1] + j, inside

    def normalize(self, xy: torch.Tensor) -> torch.Tensor:
        """Metres [..., 2] -> normalized [..., 2]."""
        x_min, y_min, x_max, y_max = self.region
        lo = xy.new_tensor([x_min, y_min])
        return (xy - lo) / xy.new_tensor([x_max - x_min, y_max - y_min])

    def denormalize(self, uv: torch.Tensor) -> torch.Tensor:
        """Normalized [..., 2] -> metres [..., 2]."""
        x_min, y_min, x_max, y_max = self.region
        return uv * uv.new_tensor([x_max - x_min, y_max - y_min]) + uv.new_tensor([x_min, y_min])

    @staticmethod
    def sampling_grid(uv: torch.Tensor) -> torch.Tensor:
        """Normalized points [..., 2] -> the (w, h) = (y, x) coordinates in [-1, 1] that
        ``grid_sample`` reads on a [B, C, X, Y] map (align_corners=False)."""
        return torch.stack([uv[..., 1], uv[..., 0]], dim=-1) * 2 - 1
