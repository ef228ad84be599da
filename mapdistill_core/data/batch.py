"""Samples -> model input tensors (and training targets).

Batch dict:
    images: float32 [B, N, 3, H, W], normalized with the ImageNet mean and std
    intrinsics: float32 [B, N, 3, 3] for the resized images
    cam_to_ego: float32 [B, N, 4, 4]
    camera_mask: bool [B, N], False for a missing camera (its image is zeros)
    lidar: float32 [M, 5] (batch index, x, y, z, intensity) in base_link
    tokens: list of B sample tokens
    labeled: bool [B], False for a sample nobody annotated
    targets (with targets only): list of B dicts, None for an unlabelled sample (whoever trains on
        one must supply its targets: the distiller's pseudo labels)
        labels: int64 [G]; points: float32 [G, Np, 2] normalized;
        permutations: float32 [G, P, Np, 2] every equivalent ordering (padded);
        permutation_mask: bool [G, P]
    segmentation (with targets only): float32 [B, K, X, Y] rasterized ground truth (zeros where unlabelled)
    ground_truth (with targets only): list of B tuples of MapElements in base_link
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch

from mapdistill_core.bev_grid import BEVGrid
from mapdistill_core.data.sample import Sample
from mapdistill_core.map_elements import CLASS_NAMES, MapElement, is_closed
from mapdistill_core.polyline import polyline_permutations, resample_polylines

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 [h, w, 3] -> [H, W, 3] at ``size`` (H, W), area interpolation (unchanged if already that size)."""
    height, width = size
    if image.shape[:2] == (height, width):
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def resize_camera(image: np.ndarray, intrinsics: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A camera's uint8 [h, w, 3] image at ``size`` (H, W) (``resize_image``) and its K [3, 3] scaled to
    match, in K's dtype: the one place where an image and its intrinsics change size together."""
    (h, w), (height, width) = image.shape[:2], size
    scale = np.diag([width / w, height / h, 1.0]).astype(intrinsics.dtype)
    return resize_image(image, size), scale @ intrinsics


def placeholder_intrinsics(size: tuple[int, int]) -> np.ndarray:
    """float32 [3, 3] K of a camera with no calibration (a masked camera, a blank warm-up set): a
    valid pinhole at image ``size`` (H, W), focal length = width, principal point in the centre."""
    height, width = size
    return np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], dtype=np.float32)


def blank_cameras(n: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The one blank set of ``n`` cameras at ``size`` (H, W), for masked cameras, the warm-up and the
    export's example: black uint8 images [n, H, W, 3], placeholder K float32 [n, 3, 3] and cam_to_ego
    float32 [n, 4, 4] of a camera at the ego origin looking forward (optical frame: z forward, x right,
    y down)."""
    height, width = size
    pose = np.eye(4, dtype=np.float32)
    pose[:3, :3] = [[0, 0, 1], [-1, 0, 0], [0, -1, 0]]
    images = np.zeros((n, height, width, 3), dtype=np.uint8)
    return images, np.tile(placeholder_intrinsics(size), (n, 1, 1)), np.tile(pose, (n, 1, 1))


def prepare_images(images: np.ndarray, intrinsics: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Resize uint8 [N, h, w, 3] images to ``size`` (H, W) and scale the intrinsics to match.

    Returns float32 [N, 3, H, W] normalized images and float32 [N, 3, 3] intrinsics.
    """
    resized = [resize_camera(im, k, size) for im, k in zip(images, intrinsics.astype(np.float32), strict=True)]
    images = np.stack([image for image, _ in resized])
    out = (images.astype(np.float32) / 255.0 - MEAN) / STD
    return out.transpose(0, 3, 1, 2), np.stack([k for _, k in resized])


def ordering_targets(labels: Sequence[int], polylines: np.ndarray) -> dict:
    """Matching targets of labelled polylines [G, Np, 2] (normalized coordinates; G may be 0): the one place they
    are built, for ground truth and for a teacher's predictions alike. A polyline whose last point is
    its first is closed and matches from any start point in either direction, any other in either
    direction (``polyline_permutations``); orderings are padded to 2 (Np - 1) per element."""
    polylines = np.asarray(polylines, dtype=np.float32)
    num_points = polylines.shape[1]
    perms = np.zeros((len(labels), 2 * (num_points - 1), num_points, 2), dtype=np.float32)
    mask = np.zeros(perms.shape[:2], dtype=bool)
    for g, polyline in enumerate(polylines):
        p = polyline_permutations(polyline)
        perms[g, : len(p)] = p
        mask[g, : len(p)] = True
    return {
        "labels": torch.tensor(list(labels), dtype=torch.long),
        "points": torch.from_numpy(polylines),
        "permutations": torch.from_numpy(perms),
        "permutation_mask": torch.from_numpy(mask),
    }


def element_targets(elements: Sequence[MapElement], grid: BEVGrid, num_points: int) -> dict:
    """Training targets of one sample's ground truth: each element resampled to ``num_points``
    evenly spaced points (a closed one kept exactly closed), normalized, then ``ordering_targets``."""
    polylines = np.zeros((len(elements), num_points, 2), dtype=np.float32)
    for g, element in enumerate(elements):
        resampled = resample_polylines(element.points, num_points)
        if is_closed(element.points):
            resampled[-1] = resampled[0]
        polylines[g] = grid.normalize(torch.from_numpy(resampled)).numpy().clip(0, 1)
    return ordering_targets([e.class_id for e in elements], polylines)


def rasterize(elements: Sequence[MapElement], grid: BEVGrid) -> np.ndarray:
    """Ground truth drawn as 1-cell-wide lines per class: float32 [K, X, Y]."""
    raster = np.zeros((len(CLASS_NAMES), *grid.size), dtype=np.uint8)
    dx, dy = grid.cell
    for element in elements:
        pts = element.points
        cols = (pts[:, 1] - grid.region[1]) / dy - 0.5
        rows = (pts[:, 0] - grid.region[0]) / dx - 0.5
        pixels = np.round(np.stack([cols, rows], axis=1) * 16).astype(np.int32)
        cv2.polylines(raster[element.class_id], [pixels], False, 1, thickness=1, lineType=cv2.LINE_8, shift=4)
    return raster.astype(np.float32)


def collate(
    samples: list[Sample],
    image_size: tuple[int, int],
    grid: BEVGrid,
    num_points: int,
    with_targets: bool = True,
    camera_mask: np.ndarray | None = None,
) -> dict:
    """Stack Samples into a batch (see the module docstring).

    Args:
        camera_mask: bool [B, N] cameras present (default: all).
    """
    images, intrinsics = zip(*(prepare_images(s.images, s.intrinsics, image_size) for s in samples), strict=True)
    mask = np.ones((len(samples), len(samples[0].images)), dtype=bool) if camera_mask is None else camera_mask
    images = np.stack(images) * mask[:, :, None, None, None]
    lidar = [np.c_[np.full((len(s.lidar), 1), b, np.float32), s.lidar] for b, s in enumerate(samples)]
    batch = {
        "images": torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)),
        "intrinsics": torch.from_numpy(np.stack(intrinsics)),
        "cam_to_ego": torch.from_numpy(np.stack([s.cam_to_ego for s in samples]).astype(np.float32)),
        "camera_mask": torch.from_numpy(mask),
        "lidar": torch.from_numpy(np.concatenate(lidar).astype(np.float32)),
        "tokens": [s.token for s in samples],
        "labeled": torch.tensor([s.labeled for s in samples], dtype=torch.bool),
    }
    if with_targets:
        batch["targets"] = [element_targets(s.ground_truth, grid, num_points) if s.labeled else None for s in samples]
        batch["segmentation"] = torch.from_numpy(np.stack([rasterize(s.ground_truth, grid) for s in samples]))
        batch["ground_truth"] = [s.ground_truth for s in samples]
    return batch


def to_device(batch: dict, device: torch.device) -> dict:
    """Move every tensor of a batch (targets included) to ``device``."""
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            out[key] = value.to(device, non_blocking=True)
        elif key == "targets":
            out[key] = [
                None if t is None else {k: v.to(device, non_blocking=True) for k, v in t.items()} for t in value
            ]
        else:
            out[key] = value
    return out
