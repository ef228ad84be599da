"""Polyline geometry: even resampling by arc length, clipping to the region, permutation sets.

All points are 2-D (x, y) in base_link, metres.
"""

from __future__ import annotations

import numpy as np
import shapely

from mapdistill_core.map_elements import REGION, is_closed


def resample_polylines(points: np.ndarray, num: int) -> np.ndarray:
    """Resample a batch of polylines to ``num`` points evenly spaced along their length.

    The first and last output points are the first and last input points, so a closed polyline
    (first == last) stays closed. A polyline of zero length becomes ``num`` copies of its point.
    Equivalent to shapely's ``LineString.interpolate`` at ``linspace(0, length, num)``.

    Args:
        points: float [M, K, 2] (or [K, 2] for one polyline), K >= 2.
        num: number of output points, >= 2.

    Returns:
        float64 [M, num, 2] (or [num, 2]).
    """
    points = np.asarray(points, dtype=np.float64)
    single = points.ndim == 2
    if single:
        points = points[None]
    if points.ndim != 3 or points.shape[-1] != 2 or points.shape[1] < 2:
        raise ValueError(f"expected polylines of shape [M, K>=2, 2], got {list(points.shape)}")
    if num < 2:
        raise ValueError(f"num must be >= 2, got {num}")
    seg = np.linalg.norm(np.diff(points, axis=1), axis=-1)  # [M, K-1]
    cum = np.concatenate([np.zeros((len(points), 1)), np.cumsum(seg, axis=1)], axis=1)  # [M, K]
    length = cum[:, -1:]  # [M, 1]
    targets = np.linspace(0.0, 1.0, num)[None] * length  # [M, num]
    # Segment index of every target: the last vertex whose arc length is <= target, kept off the end.
    idx = np.clip((cum[:, None, :] <= targets[:, :, None]).sum(-1) - 1, 0, points.shape[1] - 2)
    start = np.take_along_axis(cum, idx, axis=1)
    seg_len = np.take_along_axis(seg, idx, axis=1)
    t = np.divide(targets - start, seg_len, out=np.zeros_like(targets), where=seg_len > 0)
    t = np.clip(t, 0.0, 1.0)[..., None]
    a = np.take_along_axis(points, idx[..., None], axis=1)
    b = np.take_along_axis(points, idx[..., None] + 1, axis=1)
    out = a + t * (b - a)
    out[:, -1] = points[:, -1]
    return out[0] if single else out


def region_box(region: tuple[float, float, float, float] = REGION) -> shapely.Polygon:
    """The perception region as a shapely box."""
    return shapely.box(*region)


def _parts(geometry: shapely.Geometry) -> list[shapely.Geometry]:
    if geometry.is_empty:
        return []
    return list(getattr(geometry, "geoms", [geometry]))


def clip_polyline(points: np.ndarray, region: tuple[float, float, float, float] = REGION) -> list[np.ndarray]:
    """Clip a polyline [K, 2] to the region; it may come back as several pieces.

    A closed polyline that leaves and re-enters the region is cut into open pieces; the piece that
    runs through the ring's start point is joined back into one. A closed polyline fully inside
    stays closed.

    Returns:
        list of float64 [K_i, 2] pieces with K_i >= 2, in traversal order.
    """
    line = shapely.LineString(np.asarray(points, dtype=np.float64))
    clipped = shapely.intersection(line, region_box(region))
    lines = [g for g in _parts(clipped) if isinstance(g, shapely.LineString) and g.length > 0]
    if is_closed(np.asarray(points)) and len(lines) > 1:
        merged = shapely.line_merge(shapely.MultiLineString(lines))
        lines = [g for g in _parts(merged) if isinstance(g, shapely.LineString)]
    return [np.asarray(g.coords, dtype=np.float64) for g in lines]


def clip_polygon(points: np.ndarray, region: tuple[float, float, float, float] = REGION) -> list[np.ndarray]:
    """Clip a polygon outline [K, 2] to the region and return each piece's closed exterior ring.

    Used for areas that stay areas when cut (pedestrian crossings): the clipped shape is closed
    along the region's border.

    Returns:
        list of float64 [K_i, 2] closed rings (first point repeated at the end).
    """
    polygon = shapely.make_valid(shapely.Polygon(np.asarray(points, dtype=np.float64)))
    clipped = shapely.intersection(polygon, region_box(region))
    polys = [g for g in _parts(clipped) if isinstance(g, shapely.Polygon) and g.area > 0]
    return [np.asarray(p.exterior.coords, dtype=np.float64) for p in polys]


def polyline_permutations(points: np.ndarray) -> np.ndarray:
    """All orderings of a polyline that describe the same shape (permutation-equivalent set).

    Open polyline [N, 2]: forward and reversed, shape [2, N, 2].
    Closed polyline [N, 2] (first == last, N - 1 distinct vertices): every cyclic shift of the
    distinct vertices in both directions, each re-closed, shape [2 * (N - 1), N, 2]; index 0 is
    the input itself and index N - 1 the input reversed.
    """
    points = np.asarray(points)
    if not is_closed(points):
        return np.stack([points, points[::-1]])
    ring = points[:-1]
    n = len(ring)
    shifts = np.arange(n)
    forward = ring[(shifts[:, None] + shifts[None, :]) % n]  # [n, n, 2]
    backward = np.roll(ring[::-1], 1, axis=0)[(shifts[:, None] + shifts[None, :]) % n]
    both = np.concatenate([forward, backward])
    return np.concatenate([both, both[:, :1]], axis=1)
