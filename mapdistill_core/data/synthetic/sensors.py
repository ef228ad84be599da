"""The sensor rig: six pinhole cameras placed like nuScenes' and a 32-beam roof LiDAR.

Cameras look out of base_link at the yaws below; each camera frame is the optical frame (z
forward, x right, y down). Images are rendered by casting one ray per pixel into the world and
shading what it meets under the scene's light: daylight, dusk, or night where only the
headlights light the road ahead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mapdistill_core.data.synthetic.raster import (
    ASPHALT,
    CURB,
    GRASS,
    PAINT_WHITE,
    PAINT_YELLOW,
    SIDEWALK,
    SKY,
    VEHICLE,
)
from mapdistill_core.data.synthetic.raycast import Hits

# name, (x, y, z) in base_link, yaw (deg), horizontal field of view (deg); nuScenes order.
RIG = (
    ("CAM_FRONT", (1.70, 0.00, 1.55), 0.0, 70.0),
    ("CAM_FRONT_RIGHT", (1.55, -0.50, 1.55), -55.0, 70.0),
    ("CAM_FRONT_LEFT", (1.55, 0.50, 1.55), 55.0, 70.0),
    ("CAM_BACK", (0.05, 0.00, 1.55), 180.0, 110.0),
    ("CAM_BACK_LEFT", (1.05, 0.50, 1.55), 110.0, 70.0),
    ("CAM_BACK_RIGHT", (1.05, -0.50, 1.55), -110.0, 70.0),
)
HORIZON_ROW = 0.38
"""Principal point row as a fraction of the height: images are cropped to show more ground than sky."""

LIDAR_ORIGIN = np.array([0.94, 0.0, 1.84])
HEADLIGHTS = np.array([3.6, 0.0, 0.7])

ALBEDO = {
    GRASS: (0.12, 0.22, 0.07),
    SIDEWALK: (0.42, 0.41, 0.38),
    ASPHALT: (0.13, 0.13, 0.14),
    PAINT_WHITE: (0.75, 0.75, 0.72),
    PAINT_YELLOW: (0.72, 0.55, 0.12),
    CURB: (0.55, 0.55, 0.52),
}
REFLECTIVITY = {
    GRASS: 0.10,
    SIDEWALK: 0.16,
    ASPHALT: 0.05,
    PAINT_WHITE: 0.85,
    PAINT_YELLOW: 0.75,
    CURB: 0.2,
    VEHICLE: 0.3,
}
"""LiDAR reflectivity per material: paint is retro-reflective."""


def camera_intrinsics(height: int, width: int, fov_deg: float) -> np.ndarray:
    """Pinhole K [3, 3] with square pixels and the given horizontal field of view."""
    f = (width / 2) / np.tan(np.radians(fov_deg) / 2)
    return np.array([[f, 0, width / 2], [0, f, HORIZON_ROW * height], [0, 0, 1]], dtype=np.float32)


def camera_to_ego(position: tuple[float, float, float], yaw_deg: float) -> np.ndarray:
    """Optical frame -> base_link [4, 4] for a level camera at ``yaw_deg`` (0 = forward)."""
    yaw = np.radians(yaw_deg)
    forward = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    right = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
    down = np.array([0.0, 0.0, -1.0])
    pose = np.eye(4, dtype=np.float32)
    pose[:3, :3] = np.stack([right, down, forward], axis=1)
    pose[:3, 3] = position
    return pose


@dataclass(frozen=True)
class Rig:
    """Calibration of the six cameras: intrinsics [6, 3, 3], cam_to_ego [6, 4, 4]."""

    intrinsics: np.ndarray
    cam_to_ego: np.ndarray
    height: int
    width: int

    @staticmethod
    def build(height: int, width: int) -> Rig:
        intrinsics = np.stack([camera_intrinsics(height, width, fov) for _, _, _, fov in RIG])
        cam_to_ego = np.stack([camera_to_ego(pos, yaw) for _, pos, yaw, _ in RIG])
        return Rig(intrinsics, cam_to_ego, height, width)

    def pixel_rays(self, camera: int) -> np.ndarray:
        """Unit ray directions [H * W, 3] in base_link through pixel centres, row-major."""
        v, u = np.mgrid[0 : self.height, 0 : self.width].astype(np.float32) + 0.5
        pix = np.stack([u.ravel(), v.ravel(), np.ones(u.size, np.float32)], axis=1)
        rays = pix @ np.linalg.inv(self.intrinsics[camera]).T @ self.cam_to_ego[camera, :3, :3].T
        return rays / np.linalg.norm(rays, axis=1, keepdims=True)


def lidar_rays(beams: int, azimuth_steps: int, elevation_deg: tuple[float, float]) -> np.ndarray:
    """Unit ray directions [beams * azimuth_steps, 3] in base_link, beam-major."""
    elevation = np.radians(np.linspace(elevation_deg[0], elevation_deg[1], beams))[:, None]
    azimuth = np.linspace(0, 2 * np.pi, azimuth_steps, endpoint=False)[None]
    rays = np.stack(
        [np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation) + 0 * azimuth],
        axis=-1,
    )
    return rays.reshape(-1, 3).astype(np.float32)


def _hash_noise(x: np.ndarray, y: np.ndarray, cell: float, seed: int) -> np.ndarray:
    """Deterministic value noise in [0, 1) from integer world cells (textures that stay put)."""
    ix = np.floor(x / cell).astype(np.int64)
    iy = np.floor(y / cell).astype(np.int64)
    h = (ix * 73856093) ^ (iy * 19349663) ^ (seed * 83492791)
    h = (h * 2654435761) & 0xFFFFFFFF
    return ((h >> 8) & 0xFFFF).astype(np.float32) / 65536.0


@dataclass(frozen=True)
class Lighting:
    """How a condition lights the scene (linear units) and how the camera exposes it."""

    ambient: float
    sun: float
    tint: tuple[float, float, float]
    headlights: float
    exposure: float
    noise: float
    sky_top: tuple[float, float, float]
    sky_horizon: tuple[float, float, float]
    haze_m: float


LIGHTING = {
    "day": Lighting(0.55, 0.6, (1.0, 1.0, 1.0), 0.0, 1.5, 0.012, (0.22, 0.33, 0.6), (0.5, 0.55, 0.6), 400.0),
    "dusk": Lighting(0.16, 0.12, (1.0, 0.78, 0.6), 0.8, 2.0, 0.03, (0.08, 0.08, 0.16), (0.35, 0.2, 0.13), 500.0),
    "night": Lighting(0.006, 0.0, (0.8, 0.85, 1.0), 3.0, 2.5, 0.05, (0.0, 0.0, 0.002), (0.003, 0.003, 0.005), 1e9),
}


def shade(
    hits: Hits,
    points: np.ndarray,
    directions: np.ndarray,
    points_ego: np.ndarray,
    vehicles: np.ndarray,
    condition: str,
    sun: np.ndarray,
    paint_wear: float,
    texture_seed: int,
) -> np.ndarray:
    """Linear RGB radiance [R, 3] seen along each ray.

    Args:
        hits: ray hits; points: float [R, 3] world hit points (finite where hit);
        directions: float [R, 3] world ray directions; points_ego: float [R, 3] hit points in
        base_link (for the headlights); vehicles: float [V, 5] per vehicle linear RGB albedo,
        base height (world z) and body height (m).
    """
    light = LIGHTING[condition]
    albedo = np.zeros((len(hits.t), 3), dtype=np.float32)
    for code, color in ALBEDO.items():
        sel = hits.material == code
        if sel.any():
            albedo[sel] = color
    paint = (hits.material == PAINT_WHITE) | (hits.material == PAINT_YELLOW)
    albedo[paint] *= paint_wear
    ground = (hits.material != SKY) & (hits.material != VEHICLE)
    fine = _hash_noise(points[:, 0], points[:, 1], 0.07, texture_seed)
    coarse = _hash_noise(points[:, 0], points[:, 1], 1.3, texture_seed + 1)
    albedo[ground] *= (0.75 + 0.35 * fine[ground] + 0.2 * coarse[ground])[:, None]
    on_vehicle = hits.vehicle >= 0
    if on_vehicle.any():
        info = vehicles[hits.vehicle[on_vehicle]]
        albedo[on_vehicle] = info[:, :3]
        # Windows: a dark band in the upper part of the sides.
        rel_height = (points[on_vehicle, 2] - info[:, 3]) / info[:, 4]
        window = (rel_height > 0.55) & (rel_height < 0.9) & (hits.normal[on_vehicle, 2] < 0.5)
        albedo[np.nonzero(on_vehicle)[0][window]] *= 0.2
    lit = np.maximum(hits.normal @ sun.astype(np.float32), 0.0)
    irradiance = light.ambient + light.sun * lit
    if light.headlights > 0:
        rel = points_ego - HEADLIGHTS
        dist = np.linalg.norm(rel, axis=1)
        ahead = np.clip((rel[:, 0] / np.maximum(dist, 1e-3) - 0.5) / 0.35, 0.0, 1.0)
        irradiance = irradiance + light.headlights * ahead / (1 + (dist / 5.5) ** 3)
    radiance = albedo * irradiance[:, None] * np.array(light.tint, dtype=np.float32)
    elevation = np.clip(directions[:, 2], 0, 1)[:, None]
    sky = (1 - elevation) * np.array(light.sky_horizon) + elevation * np.array(light.sky_top)
    sky = sky.astype(np.float32)
    fog = (1 - np.exp(-np.where(np.isfinite(hits.t), hits.t, 1e9) / light.haze_m))[:, None].astype(np.float32)
    return np.where((hits.material == SKY)[:, None], sky, radiance * (1 - fog) + sky * fog)


def expose(radiance: np.ndarray, condition: str, rng: np.random.Generator) -> np.ndarray:
    """Camera response: exposure, gamma, sensor noise, 8-bit quantization. [R, 3] -> uint8."""
    light = LIGHTING[condition]
    value = np.clip(radiance * light.exposure, 0, 1) ** (1 / 2.2)
    value = value + rng.normal(0.0, light.noise, value.shape).astype(np.float32)
    return np.clip(value * 255 + 0.5, 0, 255).astype(np.uint8)
