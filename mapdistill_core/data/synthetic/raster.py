"""What covers the ground around the ego: a material raster drawn with OpenCV for each sample.

The raster is world-axis-aligned, centred on the ego, ``half_size`` metres each way; cell (row,
col) covers world x in [x0 + col * res, ...) and y in [y0 + row * res, ...). Outside it the
ground is grass.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import shapely

from mapdistill_core.data.synthetic.road_network import WHITE, YELLOW
from mapdistill_core.data.synthetic.scene import Scene

GRASS, SIDEWALK, ASPHALT, PAINT_WHITE, PAINT_YELLOW, CURB, VEHICLE, SKY = range(8)
RAISED = (GRASS, SIDEWALK)
"""Materials that stand a curb height above the road."""

_SHIFT = 4  # cv2 sub-pixel bits


@dataclass
class MaterialRaster:
    """uint8 [N, N] material codes over a world-aligned square window."""

    codes: np.ndarray
    origin: np.ndarray
    resolution: float

    def lookup(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Material code at world (x, y) (any shape); GRASS outside the window."""
        col = np.floor((x - self.origin[0]) / self.resolution).astype(np.int32)
        row = np.floor((y - self.origin[1]) / self.resolution).astype(np.int32)
        n = self.codes.shape[0]
        inside = (col >= 0) & (col < n) & (row >= 0) & (row < n)
        out = np.full(np.shape(x), GRASS, dtype=np.uint8)
        out[inside] = self.codes[row[inside], col[inside]]
        return out


def _pixels(points: np.ndarray, origin: np.ndarray, resolution: float) -> np.ndarray:
    return np.round((points - origin) / resolution * (1 << _SHIFT)).astype(np.int32)


def _fill(codes: np.ndarray, geometry: shapely.Geometry, value: int, origin: np.ndarray, res: float) -> None:
    polygons = [g for g in getattr(geometry, "geoms", [geometry]) if isinstance(g, shapely.Polygon)]
    contours = [
        _pixels(np.asarray(ring.coords)[:, :2], origin, res)
        for poly in polygons
        for ring in [poly.exterior, *poly.interiors]
    ]
    if contours:
        cv2.fillPoly(codes, contours, value, lineType=cv2.LINE_8, shift=_SHIFT)


def draw_raster(scene: Scene, center: np.ndarray, half_size: float, resolution: float) -> MaterialRaster:
    """Draw the ground materials of ``scene`` in a window around ``center`` (world xy)."""
    n = int(round(2 * half_size / resolution))
    origin = np.asarray(center, dtype=np.float64) - half_size
    window = shapely.box(origin[0], origin[1], origin[0] + n * resolution, origin[1] + n * resolution)
    codes = np.full((n, n), GRASS, dtype=np.uint8)
    _fill(codes, shapely.intersection(scene.sidewalk, window), SIDEWALK, origin, resolution)
    _fill(codes, shapely.intersection(scene.network.surface, window), ASPHALT, origin, resolution)
    lo, hi = origin - 5.0, origin + n * resolution + 5.0
    for value, paint in ((PAINT_WHITE, WHITE), (PAINT_YELLOW, YELLOW)):
        lines = [
            _pixels(p, origin, resolution)
            for p, _, color in scene.network.strokes
            if color == paint and (p.max(axis=0) > lo).all() and (p.min(axis=0) < hi).all()
        ]
        if lines:
            thickness = max(1, int(round(scene.network.strokes[0][1] / resolution)))
            cv2.polylines(codes, lines, False, value, thickness=thickness, lineType=cv2.LINE_8, shift=_SHIFT)
    stripes = [
        _pixels(p, origin, resolution)
        for p in scene.network.stripes
        if (p.max(axis=0) > lo).all() and (p.min(axis=0) < hi).all()
    ]
    if stripes:
        cv2.fillPoly(codes, stripes, PAINT_WHITE, lineType=cv2.LINE_8, shift=_SHIFT)
    return MaterialRaster(codes, origin, resolution)
