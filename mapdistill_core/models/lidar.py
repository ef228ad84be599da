"""The teacher's LiDAR branch: pillar encoder on a fine grid, scattered to BEV, then a conv net."""

from __future__ import annotations

import torch
from torch import nn

from mapdistill_core.bev_grid import BEVGrid
from mapdistill_core.models.backbone import conv_bn_relu
from mapdistill_core.models.config import LidarConfig


class PillarEncoder(nn.Module):
    """Points -> BEV [B, C, X, Y].

    Each point (x, y, z, intensity in base_link) gets the features (x, y, z, intensity / 255,
    x - pillar centre x, y - pillar centre y, z - mean z of its pillar), a shared MLP, and a max
    over its pillar; pillars live on a grid ``grid_scale`` times finer than the BEV, which strided
    convolutions bring back to the BEV size.
    """

    def __init__(self, grid: BEVGrid, config: LidarConfig, channels: int):
        super().__init__()
        self.fine = BEVGrid((grid.size[0] * config.grid_scale, grid.size[1] * config.grid_scale), grid.region)
        self.z_range = config.z_range
        c = config.channels
        self.mlp = nn.Sequential(nn.Linear(7, c), nn.LayerNorm(c), nn.ReLU(inplace=True), nn.Linear(c, c))
        layers = [conv_bn_relu(c, c), conv_bn_relu(c, c)]
        scale = config.grid_scale
        while scale > 1:
            layers.append(conv_bn_relu(c, c, 3, 2))
            scale //= 2
        layers.append(conv_bn_relu(c, channels))
        self.net = nn.Sequential(*layers)

    def forward(self, points: torch.Tensor, batch_size: int) -> torch.Tensor:
        """points: [M, 5] (batch index, x, y, z, intensity).

        Points outside the grid or the height range go to one spare pillar that is dropped at the
        end, rather than being filtered out, so the shapes do not depend on the data (no host
        synchronization: CUDA graphs can capture it)."""
        cell, inside = self.fine.cell_index(points[:, 1:3])
        inside &= (points[:, 3] >= self.z_range[0]) & (points[:, 3] < self.z_range[1])
        cells = self.fine.size[0] * self.fine.size[1]
        total = batch_size * cells
        pillar = torch.where(inside, points[:, 0].long() * cells + cell, total)  # [M], total = the spare pillar
        count = torch.zeros(total + 1, device=points.device).index_add_(0, pillar, torch.ones_like(points[:, 3]))
        z_sum = torch.zeros(total + 1, device=points.device).index_add_(0, pillar, points[:, 3])
        z_mean = (z_sum / count.clamp(min=1))[pillar]
        centers = self.fine.centers(points.device).reshape(-1, 2)[torch.where(inside, cell, 0)]
        feats = torch.cat(
            [points[:, 1:4], points[:, 4:5] / 255.0, points[:, 1:3] - centers, (points[:, 3] - z_mean)[:, None]], 1
        )
        feats = self.mlp(feats)
        pooled = feats.new_zeros(total + 1, feats.shape[1])
        pooled = pooled.scatter_reduce(0, pillar[:, None].expand_as(feats), feats, "amax", include_self=False)
        bev = pooled[:total].view(batch_size, *self.fine.size, -1).permute(0, 3, 1, 2)
        return self.net(bev.contiguous())
