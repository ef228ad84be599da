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

from mapdistill_core.bev_grid import BEVGrid
from mapdistill_core.models.backbone import conv_bn_relu
from mapdistill_core.models.config import AttentionViewConfig, LSSConfig


def inverse_3x3(m: torch.Tensor) -> torch.Tensor:
    """Inverse of [..., 3, 3] matrices by the adjugate (exportable to ONNX, unlike torch.linalg.inv):
    with rows r0, r1, r2, the inverse's columns are r1 x r2, r2 x r0, r0 x r1 over the determinant."""
    r0, r1, r2 = m.unbind(-2)
    adjugate = torch.stack([torch.linalg.cross(r1, r2), torch.linalg.cross(r2, r0), torch.linalg.cross(r0, r1)], -1)
    det = (r0 * adjugate[..., 0]).sum(-1)
    return adjugate / det[..., None, None]


def rigid_inverse(transform: torch.Tensor) -> torch.Tensor:
    """Inverse of rigid transforms [..., 4, 4] (rotation and translation): [R^T, -R^T t]."""
    rotation_t = transform[..., :3, :3].transpose(-1, -2)
    translation = -(rotation_t @ transform[..., :3, 3:])
    return torch.cat([torch.cat([rotation_t, translation], -1), transform[..., 3:, :]], -2)


def pixel_rays(intrinsics: torch.Tensor, h: int, w: int, stride: int) -> torch.Tensor:
    """Rays [B, N, h, w, 3] in the optical frame (z = 1) through feature-cell centres."""
    rows = (torch.arange(h, device=intrinsics.device, dtype=intrinsics.dtype) + 0.5) * stride
    cols = (torch.arange(w, device=intrinsics.device, dtype=intrinsics.dtype) + 0.5) * stride
    v, u = torch.meshgrid(rows, cols, indexing="ij")
    pix = torch.stack([u, v, torch.ones_like(u)], dim=-1)  # [h, w, 3]
    return torch.einsum("bnij,hwj->bnhwi", inverse_3x3(intrinsics), pix)


def static_shapes_wanted(features: torch.Tensor) -> bool:
    """Whether to run the static-shape code paths: on GPUs (no host synchronization, so CUDA graphs
    and torch.compile apply) and while exporting or compiling; eager CPU runs skip work instead."""
    return features.device.type != "cpu" or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export()


class LiftSplat(nn.Module):
    """Lift-splat-shoot: a depth distribution per feature pixel lifts its context feature into a
    frustum of points (depth bins along the optical axis), each point's feature (depth probability x
    context) summed into the BEV cell it falls in."""

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

        Geometry and sums run in float32 (half-precision pixel rays are too coarse, and a cell sums
        many points); the BEV [B, C, X, Y] comes back in the context's dtype. Eager runs use a
        sparse matrix product (never materializes the [B, N, D, h, w, C] frustum features); static
        shapes (see ``static_shapes_wanted``) an index_add into a spare cell for outside points."""
        dtype = context.dtype
        with torch.autocast(depth.device.type, enabled=False):
            cell = self._frustum_cells(intrinsics.float(), cam_to_ego.float(), *depth.shape[-2:])
            splat = self._splat_static if static_shapes_wanted(depth) else self._splat_sparse
            bev = splat(depth.float(), context.float(), cell)  # [B, X * Y, C]
        b, c = bev.shape[0], bev.shape[2]
        return bev.view(b, *self.grid.size, c).permute(0, 3, 1, 2).to(dtype).contiguous()

    def _splat_sparse(self, depth, context, cell) -> torch.Tensor:
        b, n, d, h, w = depth.shape
        cells = self.grid.size[0] * self.grid.size[1]
        inside = cell < cells
        batch = torch.arange(b, device=depth.device)[:, None, None, None, None].expand(b, n, d, h, w)
        pixel = torch.arange(b * n * h * w, device=depth.device).view(b, n, 1, h, w).expand(b, n, d, h, w)
        rows = (batch * cells + cell)[inside]
        matrix = torch.sparse_coo_tensor(
            torch.stack([rows, pixel[inside]]), depth[inside], (b * cells, b * n * h * w), check_invariants=False
        )
        flat = context.permute(0, 1, 3, 4, 2).reshape(b * n * h * w, -1)
        return torch.sparse.mm(matrix, flat).view(b, cells, -1)

    def _splat_static(self, depth, context, cell) -> torch.Tensor:
        b, n, d, h, w = depth.shape
        c = context.shape[2]
        cells = self.grid.size[0] * self.grid.size[1]
        index = cell + (torch.arange(b, device=cell.device) * cells).view(b, 1, 1, 1, 1)
        index = torch.where(cell < cells, index, b * cells)  # outside the grid: the spare cell
        values = (depth[:, :, :, None] * context[:, :, None]).permute(0, 1, 2, 4, 5, 3).reshape(-1, c)
        bev = values.new_zeros(b * cells + 1, c).index_add_(0, index.reshape(-1), values)
        return bev[:-1].view(b, cells, c)

    def _frustum_cells(self, intrinsics, cam_to_ego, h: int, w: int) -> torch.Tensor:
        """Flat BEV cell [B, N, D, h, w] (int64) of every frustum point; X * Y where it lies outside
        the grid or the z range."""
        rays = pixel_rays(intrinsics, h, w, self.stride)  # [B, N, h, w, 3]
        points = rays[:, :, None] * self.depths.to(rays)[None, None, :, None, None, None]  # [B, N, D, h, w, 3]
        points = (
            torch.einsum("bnij,bndhwj->bndhwi", cam_to_ego[..., :3, :3], points)
            + cam_to_ego[:, :, None, None, None, :3, 3]
        )
        cell, inside = self.grid.cell_index(points[..., :2])
        inside &= (points[..., 2] >= self.z_range[0]) & (points[..., 2] < self.z_range[1])
        return torch.where(inside, cell, self.grid.size[0] * self.grid.size[1])


NO_LOGIT = -1e30
"""Logit of a sample that does not count (finite, so the running max needs no special case); the
attention state is always float32, whatever autocast does around it."""


class AttentionView(nn.Module):
    """GKT-like view transform: every BEV cell has a learned query; at each configured height its
    centre is projected into every camera, a kernel of feature pixels around the projection is
    sampled (grid_sample), and the query attends over the samples of all cameras that see it
    (one softmax of q.k / sqrt(C) over heights, cameras and kernel samples, accumulated camera by
    camera to bound memory).

    Two equal computations: eager CPU runs sample only the cells each camera sees (data-dependent
    shapes, about 2x faster there); GPU runs, ONNX export and torch.compile sample every cell in
    every camera and mask (static shapes); see ``static_shapes_wanted``.
    """

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
        keys_values = torch.cat([self.key(features.flatten(0, 1)), self.value(features.flatten(0, 1))], 1)
        keys_values = keys_values.unflatten(0, (b, n))  # [B, N, 2C, h, w]
        # camera geometry (pixel coordinates up to ~10^3) and the softmax state in float32 even under
        # float16/bfloat16 autocast; only the sampling of the key/value maps runs in their dtype
        with torch.autocast(features.device.type, enabled=False):
            uv, seen = self._project(intrinsics.float(), cam_to_ego.float(), camera_mask, h, w)
            attend = self._attend_dense if static_shapes_wanted(features) else self._attend_gathered
            attended = attend(keys_values, uv, seen, h, w)  # [B, C, P] float32
        bev = attended.to(features.dtype).view(b, -1, *self.grid.size) + self.query[None]
        return self.out(bev)

    def _project(self, intrinsics, cam_to_ego, camera_mask, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Cell centres at every height in pixels, uv [Z, B, N, P, 2] float32, and whether the
        camera is present and the point is in front of it and near its image, seen [Z, B, N, P]."""
        centers = self.grid.centers(intrinsics.device).reshape(-1, 2).float()  # [P, 2]
        num = centers.shape[0]
        image_size = self._image_size(centers, h, w)
        margin = self.offsets.abs().max()
        ego_to_cam = rigid_inverse(cam_to_ego)  # [B, N, 4, 4]
        uvs, seens = [], []
        for z in self.heights:
            points = torch.cat([centers, centers.new_full((num, 1), z), centers.new_ones(num, 1)], 1)
            cam_points = torch.einsum("bnij,pj->bnpi", ego_to_cam, points)[..., :3]  # [B, N, P, 3]
            uv = torch.einsum("bnij,bnpj->bnpi", intrinsics, cam_points)
            uv = uv[..., :2] / uv[..., 2:].clamp(min=0.1)  # [B, N, P, 2] pixels
            near_image = (uv >= -margin).all(-1) & (uv < image_size + margin).all(-1)
            seens.append(near_image & (cam_points[..., 2] > 0.1) & camera_mask[:, :, None])
            uvs.append(uv)
        return torch.stack(uvs), torch.stack(seens)

    def _image_size(self, like: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """(width, height) of the camera images in pixels, [2] float32 on ``like``'s device (filled on
        the device, not copied from the host, so a CUDA graph can capture it)."""
        width, height = (like.new_full((), float(v), dtype=torch.float32) for v in (w * self.stride, h * self.stride))
        return torch.stack([width, height])

    def _sample(self, keys_values, uv, valid, image_size):
        """Kernel samples around pixels uv [M, P, 2] of key-value maps [M, 2C, h, w].

        Returns whether each sample counts, [M, P, K] (on the image and ``valid`` [M, P]), and the
        sampled keys and values, each [M, C, P, K]."""
        c = self.query.shape[0]
        samples = uv[:, :, None] + self.offsets  # [M, P, K, 2]
        inside = ((samples >= 0) & (samples < image_size)).all(-1) & valid[..., None]
        grid = (samples / image_size * 2 - 1).to(keys_values.dtype)
        sampled = F.grid_sample(keys_values, grid, align_corners=False)  # [M, 2C, P, K]
        return inside, sampled[:, :c], sampled[:, c:]

    def _attend_dense(self, keys_values, uv, seen, h: int, w: int) -> torch.Tensor:
        """Every cell sampled in every camera, masked: static shapes. Returns [B, C, P] float32."""
        b, n = keys_values.shape[:2]
        image_size = self._image_size(uv, h, w)
        query = self.query.flatten(1).float()  # [C, P]
        state = self._empty_state(b, uv)
        for z in range(len(self.heights)):
            for cam in range(n):
                samples = self._sample(keys_values[:, cam], uv[z, :, cam], seen[z, :, cam], image_size)
                state = self._accumulate(state, query, *samples)
        return self._attended(state)

    def _attend_gathered(self, keys_values, uv, seen, h: int, w: int) -> torch.Tensor:
        """Only the cells each camera sees (nonzero, a host synchronization per camera). Returns
        [B, C, P] float32."""
        b, n = keys_values.shape[:2]
        image_size = self._image_size(uv, h, w)
        query = self.query.flatten(1).float()  # [C, P]
        running_max, total, acc = self._empty_state(b, uv)
        for z in range(len(self.heights)):
            for i in range(b):
                for cam in range(n):
                    idx = seen[z, i, cam].nonzero().squeeze(1)
                    if len(idx) == 0:
                        continue
                    samples = self._sample(
                        keys_values[i, cam, None], uv[z, i, cam, idx][None], seen[z, i, cam, idx][None], image_size
                    )
                    state = (running_max[i, idx][None], total[i, idx][None], acc[i][:, idx][None])
                    new_max, new_total, new_acc = self._accumulate(state, query[:, idx], *samples)
                    running_max[i, idx], total[i, idx], acc[i, :, idx] = new_max[0], new_total[0], new_acc[0]
        return self._attended((running_max, total, acc))

    def _empty_state(self, batch: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Online-softmax state over no samples yet: running max [B, P] (a finite stand-in for -inf),
        weight total [B, P] and weighted value sum [B, C, P], float32."""
        c, num = self.query.shape[0], self.query[0].numel()
        f32 = {"dtype": torch.float32, "device": like.device}
        return (
            torch.full((batch, num), NO_LOGIT, **f32),
            torch.zeros(batch, num, **f32),
            torch.zeros(batch, c, num, **f32),
        )

    def _accumulate(self, state, query, inside, keys, values):
        """One step of the softmax over all samples, accumulated (flash-attention style).

        Args:
            state: (running max [M, P], total [M, P], weighted sum [M, C, P]) over the samples so far.
            query: [C, P]; inside: [M, P, K] samples that count; keys, values: [M, C, P, K].
        Returns the state including these samples.
        """
        running_max, total, acc = state
        logits = torch.einsum("cp,mcpk->mpk", query, keys.float()) / math.sqrt(query.shape[0])
        logits = logits.masked_fill(~inside, NO_LOGIT)
        new_max = torch.maximum(running_max, logits.amax(-1))
        scale = torch.exp(running_max - new_max)
        weights = torch.exp(logits - new_max[..., None]) * inside  # [M, P, K], 0 where a sample does not count
        total = total * scale + weights.sum(-1)
        acc = acc * scale[:, None] + torch.einsum("mpk,mcpk->mcp", weights, values.float())
        return new_max, total, acc

    @staticmethod
    def _attended(state) -> torch.Tensor:
        """The softmax-weighted value sum [B, C, P] (zero for a cell no camera sees)."""
        _, total, acc = state
        return acc / total.clamp(min=1e-6)[:, None]


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
