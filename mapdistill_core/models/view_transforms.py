"""Image features -> BEV: lift-splat (depth-based), attention (GKT-like) and the dual transform.

Inputs of every transform: image features [B, N, C_in, h, w] at stride s of the input images,
intrinsics [B, N, 3, 3] for the input image size (pixel (col, row) covers [col, col + 1)),
cam_to_ego [B, N, 4, 4] (optical frame -> base_link), camera_mask [B, N] (False: camera missing).
Output BEV [B, C, X, Y] over the BEVGrid.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from mapdistill_core.models.backbone import conv_bn_relu
from mapdistill_core.models.bev_grid import BEVGrid
from mapdistill_core.models.config import AttentionViewConfig, LSSConfig


def pixel_rays(intrinsics: torch.Tensor, h: int, w: int, stride: int) -> torch.Tensor:
    """Rays [B, N, h, w, 3] in the optical frame (z = 1) through feature-cell centres."""
    rows = (torch.arange(h, device=intrinsics.device, dtype=intrinsics.dtype) + 0.5) * stride
    cols = (torch.arange(w, device=intrinsics.device, dtype=intrinsics.dtype) + 0.5) * stride
    v, u = torch.meshgrid(rows, cols, indexing="ij")
    pix = torch.stack([u, v, torch.ones_like(u)], dim=-1)  # [h, w, 3]
    return torch.einsum("bnij,hwj->bnhwi", torch.linalg.inv(intrinsics), pix)


class LiftSplat(nn.Module):
    """Lift-splat-shoot: a depth distribution per feature pixel lifts its context feature into a
    frustum of points (depth bins along the optical axis), splatted into BEV cells by a sparse
    matrix product (sum over every pixel and depth that falls into a cell)."""

    def __init__(self, in_channels: int, channels: int, grid: BEVGrid, config: LSSConfig, stride: int):
        super().__init__()
        start, stop, step = config.depth_bins
        self.register_buffer("depths", torch.arange(start, stop, step), persistent=False)
        self.grid, self.stride, self.z_range = grid, stride, config.z_range
        self.channels = channels
        self.head = nn.Sequential(
            conv_bn_relu(in_channels, in_channels), nn.Conv2d(in_channels, len(self.depths) + channels, 1)
        )

    def forward(self, features, intrinsics, cam_to_ego, camera_mask) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns BEV [B, C, X, Y] and the depth distribution [B, N, D, h, w]."""
        b, n, _, h, w = features.shape
        out = self.head(features.flatten(0, 1)).unflatten(0, (b, n))
        depth = out[:, :, : len(self.depths)].softmax(dim=2) * camera_mask[:, :, None, None, None]
        context = out[:, :, len(self.depths) :]  # [B, N, C, h, w]
        return self.splat(depth, context, intrinsics, cam_to_ego), depth

    def splat(self, depth, context, intrinsics, cam_to_ego) -> torch.Tensor:
        """Sum depth-weighted context into BEV cells: depth [B, N, D, h, w], context [B, N, C, h, w].

        Runs in float32 (sparse products have no half-precision kernels)."""
        with torch.autocast(depth.device.type, enabled=False):
            return self._splat(depth.float(), context.float(), intrinsics.float(), cam_to_ego.float())

    def _splat(self, depth, context, intrinsics, cam_to_ego) -> torch.Tensor:
        b, n, d, h, w = depth.shape
        rays = pixel_rays(intrinsics, h, w, self.stride)  # [B, N, h, w, 3]
        points = rays[:, :, None] * self.depths.to(rays)[None, None, :, None, None, None]  # [B, N, D, h, w, 3]
        points = (
            torch.einsum("bnij,bndhwj->bndhwi", cam_to_ego[..., :3, :3], points)
            + cam_to_ego[:, :, None, None, None, :3, 3]
        )
        cell, inside = self.grid.cell_index(points[..., :2])
        inside &= (points[..., 2] >= self.z_range[0]) & (points[..., 2] < self.z_range[1])
        cells_per_sample = self.grid.size[0] * self.grid.size[1]
        batch = torch.arange(b, device=depth.device)[:, None, None, None, None].expand(b, n, d, h, w)
        pixel = torch.arange(b * n * h * w, device=depth.device).view(b, n, 1, h, w).expand(b, n, d, h, w)
        rows = (batch * cells_per_sample + cell)[inside]
        cols = pixel[inside]
        matrix = torch.sparse_coo_tensor(
            torch.stack([rows, cols]), depth[inside], (b * cells_per_sample, b * n * h * w), check_invariants=False
        )
        flat = context.permute(0, 1, 3, 4, 2).reshape(b * n * h * w, -1)
        bev = torch.sparse.mm(matrix, flat)  # [B * X * Y, C]
        return bev.view(b, *self.grid.size, -1).permute(0, 3, 1, 2).contiguous()


class AttentionView(nn.Module):
    """GKT-like view transform: every BEV cell has a learned query; at each configured height its
    centre is projected into every camera that sees it, a kernel of feature pixels around the
    projection is sampled (grid_sample), and the query attends over all samples of all cameras
    (softmax of q.k / sqrt(C), accumulated camera by camera to bound memory)."""

    def __init__(self, in_channels: int, channels: int, grid: BEVGrid, config: AttentionViewConfig, stride: int):
        super().__init__()
        self.grid, self.stride, self.heights = grid, stride, config.heights
        self.query = nn.Parameter(torch.randn(channels, *grid.size) * 0.1)
        self.key = nn.Conv2d(in_channels, channels, 1)
        self.value = nn.Conv2d(in_channels, channels, 1)
        r = config.kernel_size // 2
        offsets = torch.stack(torch.meshgrid(torch.arange(-r, r + 1), torch.arange(-r, r + 1), indexing="ij"), -1)
        self.register_buffer("offsets", offsets.reshape(-1, 2).float() * stride, persistent=False)  # pixels (du, dv)
        self.out = conv_bn_relu(channels, channels)

    def forward(self, features, intrinsics, cam_to_ego, camera_mask) -> torch.Tensor:
        b, n, _, h, w = features.shape
        c = self.query.shape[0]
        keys_values = torch.cat([self.key(features.flatten(0, 1)), self.value(features.flatten(0, 1))], 1)
        keys_values = keys_values.unflatten(0, (b, n))  # [B, N, 2C, h, w]
        query = self.query.flatten(1)  # [C, P]
        centers = self.grid.centers(features.device).reshape(-1, 2).to(features.dtype)  # [P, 2]
        num = centers.shape[0]
        image_size = centers.new_tensor([w * self.stride, h * self.stride])
        running_max = features.new_full((b, num), -math.inf)
        total = features.new_zeros(b, num)
        acc = features.new_zeros(b, c, num)
        ego_to_cam = torch.linalg.inv(cam_to_ego)  # [B, N, 4, 4]
        for z in self.heights:
            points = torch.cat([centers, centers.new_full((num, 1), z), centers.new_ones(num, 1)], 1)
            cam_points = torch.einsum("bnij,pj->bnpi", ego_to_cam, points)[..., :3]  # [B, N, P, 3]
            uv = torch.einsum("bnij,bnpj->bnpi", intrinsics, cam_points)
            uv = uv[..., :2] / uv[..., 2:].clamp(min=0.1)  # [B, N, P, 2] pixels
            margin = self.offsets.abs().max()
            near_image = (uv >= -margin).all(-1) & (uv < image_size + margin).all(-1)
            seen = near_image & (cam_points[..., 2] > 0.1) & camera_mask[:, :, None]  # [B, N, P]
            for i in range(b):
                for cam in range(n):
                    idx = seen[i, cam].nonzero().squeeze(1)
                    if len(idx) == 0:
                        continue
                    samples = uv[i, cam, idx, None] + self.offsets.to(uv)  # [P', K, 2]
                    inside = ((samples >= 0) & (samples < image_size)).all(-1)
                    grid = (samples / image_size * 2 - 1)[None]
                    kv = F.grid_sample(keys_values[i, cam, None], grid, align_corners=False)[0]  # [2C, P', K]
                    logits = torch.einsum("cp,cpk->pk", query[:, idx], kv[:c]) / math.sqrt(c)
                    logits = logits.masked_fill(~inside, -math.inf)
                    old_max = running_max[i, idx]
                    new_max = torch.maximum(old_max, logits.amax(dim=1))
                    safe = torch.where(torch.isfinite(new_max), new_max, torch.zeros_like(new_max))
                    scale = torch.exp(old_max - safe)
                    weights = torch.exp(logits - safe[:, None])  # [P', K], 0 outside the image
                    total[i, idx] = total[i, idx] * scale + weights.sum(dim=1)
                    acc[i, :, idx] = acc[i, :, idx] * scale + torch.einsum("pk,cpk->cp", weights, kv[c:])
                    running_max[i, idx] = new_max
        attended = acc / total.clamp(min=1e-6)[:, None]
        bev = attended.view(b, c, *self.grid.size) + self.query[None]
        return self.out(bev)


class DualView(nn.Module):
    """The student's dual BEV transform: lift-splat and attention views fused by convolution.

    Returns the fused BEV [B, C, X, Y] and the two views (lss, attention), each [B, C, X, Y].
    """

    def __init__(self, lss: LiftSplat, attention: AttentionView, channels: int):
        super().__init__()
        self.lss, self.attention = lss, attention
        self.fuse = nn.Sequential(conv_bn_relu(2 * channels, channels), conv_bn_relu(channels, channels))

    def forward(self, features, intrinsics, cam_to_ego, camera_mask):
        lss_bev, _ = self.lss(features, intrinsics, cam_to_ego, camera_mask)
        attention_bev = self.attention(features, intrinsics, cam_to_ego, camera_mask)
        return self.fuse(torch.cat([lss_bev, attention_bev], dim=1)), (lss_bev, attention_bev)
