"""Ray casting against the terrain (with curbs) and against vehicle boxes, vectorized over rays.

World frame, metres, float32. The ground is the terrain height field, raised by the curb height
wherever the material raster says sidewalk or grass. A ray is marched on a geometric schedule
to bracket its first crossings of the road level (H) and of the raised level (H + curb), each
refined by the secant method; the raised level counts where the raster is raised there, and a
ray that passes the raised level over the road and meets the road level under a raised cell hit
the curb face.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mapdistill_core.data.synthetic.raster import CURB, RAISED, SKY, VEHICLE, MaterialRaster
from mapdistill_core.data.synthetic.terrain import Terrain

MARCH = np.geomspace(1.0, 250.0, 21).astype(np.float32)
"""Distances (m) at which rays are tested against the terrain."""


@dataclass
class Box:
    """An upright box: centre of its base (world) [3], yaw (rad), size (length, width, height)."""

    base: np.ndarray
    yaw: float
    size: tuple[float, float, float]


@dataclass
class Hits:
    """Per ray: distance t [R] (inf: no hit), material code [R], hit vehicle index [R] (-1: none)
    and surface normal [R, 3] at the hit (world frame; straight up for the ground)."""

    t: np.ndarray
    material: np.ndarray
    vehicle: np.ndarray
    normal: np.ndarray


def _crossing(origin, direction, level, terrain, t_lo, t_hi, g_lo, g_hi):
    """Secant refinement of z(t) - H(x(t), y(t)) - level = 0 inside [t_lo, t_hi]."""
    for _ in range(3):
        t = t_lo + (t_hi - t_lo) * g_lo / np.maximum(g_lo - g_hi, 1e-6)
        p = origin + t[:, None] * direction
        g = p[:, 2] - terrain.height(p[:, 0], p[:, 1]) - level
        above = g > 0
        t_lo, g_lo = np.where(above, t, t_lo), np.where(above, g, g_lo)
        t_hi, g_hi = np.where(above, t_hi, t), np.where(above, g_hi, g)
    return t_lo + (t_hi - t_lo) * g_lo / np.maximum(g_lo - g_hi, 1e-6)


def _first_below(g: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Index of the first march step below ``level`` and whether there is one, per ray."""
    below = g < level
    return below.argmax(axis=1), below.any(axis=1)


def cast_ground(
    origin: np.ndarray, direction: np.ndarray, terrain: Terrain, raster: MaterialRaster, curb: float
) -> tuple[np.ndarray, np.ndarray]:
    """First hit of rays with the ground.

    Args:
        origin: float32 [R, 3]; direction: float32 [R, 3] unit vectors (world frame).

    Returns:
        t float32 [R] (inf where the ray never meets the ground within the march) and
        material uint8 [R].
    """
    num = len(origin)
    t_out = np.full(num, np.inf, dtype=np.float32)
    material = np.full(num, SKY, dtype=np.uint8)
    # Rays that start above the ground and climb faster than any terrain slope never meet it.
    climbs = direction[:, 2] > terrain.max_slope * np.hypot(direction[:, 0], direction[:, 1])
    above = origin[:, 2] > terrain.height(origin[:, 0], origin[:, 1]) + curb
    idx = np.nonzero(~(climbs & above))[0]
    if len(idx) == 0:
        return t_out, material
    o, d = origin[idx], direction[idx]
    # March. Rays already below the road level (both crossings bracketed) are dropped from the
    # work arrays whenever they make up a fifth of them; their later entries stay -1 (below).
    g = np.full((len(idx), len(MARCH) + 1), -1.0, dtype=np.float32)
    g[:, 0] = o[:, 2] - terrain.height(o[:, 0], o[:, 1])
    active = np.arange(len(idx))
    ox, oy, oz, dx, dy, dz = (np.ascontiguousarray(a) for a in (*o.T, *d.T))
    for k, t in enumerate(MARCH, start=1):
        gk = oz + t * dz - terrain.height(ox + t * dx, oy + t * dy)
        g[active, k] = gk
        keep = gk >= 0
        if keep.sum() < 0.8 * len(keep):
            active, ox, oy, oz, dx, dy, dz = (a[keep] for a in (active, ox, oy, oz, dx, dy, dz))
    ts = np.concatenate([[0.0], MARCH]).astype(np.float32)
    rows = np.arange(len(idx))

    def level_hit(level: float) -> tuple[np.ndarray, np.ndarray]:
        k, found = _first_below(g, level)
        k = np.maximum(k, 1)
        t = _crossing(o, d, level, terrain, ts[k - 1], ts[k], g[rows, k - 1] - level, g[rows, k] - level)
        return np.where(found, t, np.inf).astype(np.float32), found

    t_top, top_found = level_hit(curb)
    t_road, road_found = level_hit(0.0)
    p_top = o + np.where(top_found, t_top, 0.0)[:, None] * d
    top_material = raster.lookup(p_top[:, 0], p_top[:, 1])
    top_raised = top_found & np.isin(top_material, RAISED)
    p_road = o + np.where(road_found, t_road, 0.0)[:, None] * d
    road_material = raster.lookup(p_road[:, 0], p_road[:, 1])
    road_raised = np.isin(road_material, RAISED)
    t_hit = np.where(top_raised, t_top, t_road)
    mat = np.where(top_raised, top_material, np.where(road_raised, CURB, road_material))
    mat = np.where(top_raised | road_found, mat, SKY)
    t_out[idx] = np.where(top_raised | road_found, t_hit, np.inf)
    material[idx] = mat
    return t_out, material


def cast_boxes(
    origin: np.ndarray, direction: np.ndarray, boxes: list[Box], candidates: list[np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First hit of rays with upright boxes (slab method in each box's frame).

    Args:
        origin, direction: float32 [R, 3] (world).
        boxes: the boxes.
        candidates: per box, the indices of the only rays that can hit it (None: all rays).

    Returns:
        t float32 [R] (inf: no hit), box index int32 [R] (-1), outward normal float32 [R, 3].
    """
    num = len(origin)
    t_best = np.full(num, np.inf, dtype=np.float32)
    index = np.full(num, -1, dtype=np.int32)
    normal = np.zeros((num, 3), dtype=np.float32)
    for i, box in enumerate(boxes):
        rays = np.arange(num) if candidates is None else candidates[i]
        c, s = np.cos(box.yaw), np.sin(box.yaw)
        rot = np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]], dtype=np.float32)  # world -> box
        half = np.array([box.size[0] / 2, box.size[1] / 2, box.size[2] / 2], dtype=np.float32)
        centre = np.asarray(box.base, dtype=np.float32) + [0, 0, half[2]]
        o = (origin[rays] - centre) @ rot.T
        d = direction[rays] @ rot.T
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = 1.0 / d
            t1, t2 = (-half - o) * inv, (half - o) * inv
            t_near = np.where(np.isnan(t1), -np.inf, np.minimum(t1, t2))
            t_far = np.where(np.isnan(t1), np.inf, np.maximum(t1, t2))
        enter = t_near.max(axis=1)
        hit = (enter <= t_far.min(axis=1)) & (enter > 0) & (enter < t_best[rays])
        if not hit.any():
            continue
        axis = t_near[hit].argmax(axis=1)
        local = np.zeros((len(axis), 3), dtype=np.float32)
        local[np.arange(len(axis)), axis] = -np.sign(d[hit][np.arange(len(axis)), axis])
        t_best[rays[hit]] = enter[hit]
        index[rays[hit]] = i
        normal[rays[hit]] = local @ rot
    return t_best, index, normal


def cast(
    origin: np.ndarray,
    direction: np.ndarray,
    terrain: Terrain,
    raster: MaterialRaster,
    curb: float,
    boxes: list[Box],
    candidates: list[np.ndarray] | None = None,
) -> Hits:
    """First hit of each ray with the ground or a vehicle (``candidates`` as in cast_boxes)."""
    t_ground, material = cast_ground(origin, direction, terrain, raster, curb)
    t_box, vehicle, normal = cast_boxes(origin, direction, boxes, candidates)
    on_box = t_box < t_ground
    normal[~on_box] = (0.0, 0.0, 1.0)
    return Hits(
        t=np.where(on_box, t_box, t_ground),
        material=np.where(on_box, VEHICLE, material).astype(np.uint8),
        vehicle=np.where(on_box, vehicle, -1),
        normal=normal,
    )
