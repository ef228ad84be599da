"""Map encoder and MapTR-style map decoder with hierarchical instance x point queries.

The decoder reads a BEV map [B, C, X, Y]. Queries are instance embeddings [Q, C] plus point
embeddings [Np, C] ([Q, Np, C]); each layer runs self-attention across instances and within each
instance (MapTRv2's decoupled attention), samples the BEV around each point's reference position
(deformable-attention-like, learned offsets and weights), an FFN, then refines the reference
points. Points are normalized (BEVGrid) coordinates.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from mapdistill_core.bev_grid import BEVGrid
from mapdistill_core.map_elements import CLASS_NAMES
from mapdistill_core.models.backbone import BasicBlock
from mapdistill_core.models.config import DecoderConfig


def inverse_sigmoid(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """log(x / (1 - x)) with both terms clamped at ``eps`` (finite in float16, where 1 - 1e-5 == 1)."""
    x = x.clamp(0, 1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


class BEVSampling(nn.Module):
    """Each query samples the BEV at its reference point plus M learned offsets per head."""

    def __init__(self, channels: int, heads: int, points: int, grid: BEVGrid):
        super().__init__()
        self.heads, self.points = heads, points
        extent = torch.tensor([grid.region[2] - grid.region[0], grid.region[3] - grid.region[1]])
        self.register_buffer("cell", torch.tensor(grid.cell) / extent, persistent=False)
        self.offsets = nn.Linear(channels, heads * points * 2)
        self.weights = nn.Linear(channels, heads * points)
        self.value = nn.Conv2d(channels, channels, 1)
        self.out = nn.Linear(channels, channels)
        nn.init.zeros_(self.offsets.weight)
        with torch.no_grad():
            angles = torch.arange(heads * points) * (2 * torch.pi / (heads * points))
            self.offsets.bias.copy_(torch.stack([angles.cos(), angles.sin()], -1).flatten() * 2.0)

    def forward(self, query: torch.Tensor, reference: torch.Tensor, bev: torch.Tensor) -> torch.Tensor:
        """query [B, L, C], reference [B, L, 2] normalized, bev [B, C, X, Y] -> [B, L, C]."""
        b, length, c = query.shape
        h, m = self.heads, self.points
        offsets = self.offsets(query).view(b, length, h, m, 2) * self.cell  # cells -> normalized
        weights = self.weights(query).view(b, length, h, m).softmax(-1)
        locations = reference[:, :, None, None] + offsets  # [B, L, H, M, 2]
        grid = BEVGrid.sampling_grid(locations).permute(0, 2, 1, 3, 4).flatten(0, 1)  # [B*H, L, M, 2]
        value = self.value(bev).view(b * h, c // h, *bev.shape[-2:])
        sampled = F.grid_sample(value, grid, align_corners=False)  # [B*H, C/H, L, M]
        weights = weights.permute(0, 2, 1, 3).flatten(0, 1)[:, None]  # [B*H, 1, L, M]
        out = (sampled * weights).sum(-1).view(b, c, length).transpose(1, 2)
        return self.out(out)


class DecoderLayer(nn.Module):
    def __init__(self, channels: int, heads: int, ffn: int, points: int, grid: BEVGrid):
        super().__init__()
        self.inter = nn.MultiheadAttention(channels, heads, batch_first=True)
        self.intra = nn.MultiheadAttention(channels, heads, batch_first=True)
        self.cross = BEVSampling(channels, heads, points, grid)
        self.ffn = nn.Sequential(nn.Linear(channels, ffn), nn.ReLU(inplace=True), nn.Linear(ffn, channels))
        self.norms = nn.ModuleList(nn.LayerNorm(channels) for _ in range(4))

    def forward(self, x: torch.Tensor, reference: torch.Tensor, bev: torch.Tensor) -> torch.Tensor:
        """x [B, Q, Np, C], reference [B, Q, Np, 2] -> [B, Q, Np, C]."""
        b, q, n, c = x.shape
        t = x.transpose(1, 2).reshape(b * n, q, c)  # across instances
        t = self.norms[0](t + self.inter(t, t, t, need_weights=False)[0])
        t = t.view(b, n, q, c).transpose(1, 2).reshape(b * q, n, c)  # within an instance
        t = self.norms[1](t + self.intra(t, t, t, need_weights=False)[0])
        t = t.view(b, q * n, c)
        t = self.norms[2](t + self.cross(t, reference.reshape(b, q * n, 2), bev))
        t = self.norms[3](t + self.ffn(t))
        return t.view(b, q, n, c)


class MapDecoder(nn.Module):
    """Outputs in DETR's form: the final layer's class logits [B, Q, K], points [B, Q, Np, 2]
    (normalized) and hidden states [B, Q, Np, C] at the top level, the earlier layers' in
    ``aux_outputs`` (a list, first layer first, of dicts with the same three keys)."""

    def __init__(self, config: DecoderConfig, channels: int, grid: BEVGrid):
        super().__init__()
        self.instance = nn.Embedding(config.num_queries, channels)
        self.point = nn.Embedding(config.num_points, channels)
        self.reference = nn.Linear(channels, 2)
        self.layers = nn.ModuleList(
            DecoderLayer(channels, config.heads, config.ffn_channels, config.sampling_points, grid)
            for _ in range(config.layers)
        )
        self.classify = nn.ModuleList(nn.Linear(channels, len(CLASS_NAMES)) for _ in range(config.layers))
        self.regress = nn.ModuleList(
            nn.Sequential(nn.Linear(channels, channels), nn.ReLU(inplace=True), nn.Linear(channels, 2))
            for _ in range(config.layers)
        )
        prior = -torch.log(torch.tensor((1 - 0.01) / 0.01))
        for head in self.classify:
            nn.init.constant_(head.bias, prior.item())

    def forward(self, bev: torch.Tensor) -> dict:
        b = bev.shape[0]
        x = (self.instance.weight[:, None] + self.point.weight[None]).expand(b, -1, -1, -1)
        reference = self.reference(x).sigmoid()
        layers = []
        for layer, classify, regress in zip(self.layers, self.classify, self.regress, strict=True):
            x = layer(x, reference.detach(), bev)
            # Layer 0 refines the learned initial reference (which it trains); later layers refine
            # the previous layer's points without back-propagating into them, as in MapTR.
            refined = (inverse_sigmoid(reference) + regress(x)).sigmoid()
            layers.append({"logits": classify(x.mean(dim=2)), "points": refined, "hidden": x})
            reference = refined.detach()
        return {**layers[-1], "aux_outputs": layers[:-1]}


class MapEncoder(nn.Module):
    """Residual conv blocks over the BEV: [B, C, X, Y] -> [B, C, X, Y]."""

    def __init__(self, channels: int, blocks: int):
        super().__init__()
        self.blocks = nn.Sequential(*(BasicBlock(channels, channels, 1) for _ in range(blocks)))

    def forward(self, bev: torch.Tensor) -> torch.Tensor:
        return self.blocks(bev)
