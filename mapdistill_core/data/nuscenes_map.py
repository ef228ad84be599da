"""Vectorized map ground truth from the nuScenes map expansion v1.3, built the way MapTR's
``VectorizedLocalMap`` builds it, but in base_link (x forward, y left) rather than the LiDAR frame.

For an ego pose the perception region (``REGION``, 60 m x 30 m) is placed on the ego, turned by its
yaw only, cut out of the map and moved into base_link:

- divider (0): road_divider, then lane_divider lines clipped to the region, one element per piece;
- ped_crossing (1): the union of the valid ped_crossing polygons in the region; every exterior ring
  clockwise, every hole counter-clockwise, clipped to the region grown by 0.2 m;
- boundary (2): the union of the valid road_segment and lane polygons in the region, rings oriented
  the same way, clipped to the region shrunk by 0.2 m.

Clipping cuts a ring into pieces; pieces that meet end to end are merged back into one line. A ring
that stays whole is closed (its first point repeated at the end). Coordinates in metres.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from nuscenes.map_expansion.map_api import NuScenesMap

from mapdistill_core.errors import NuScenesError
from mapdistill_core.map_elements import CLASS_IDS, REGION, MapElement

LOCATIONS: tuple[str, ...] = (
    "singapore-onenorth",
    "singapore-hollandvillage",
    "singapore-queenstown",
    "boston-seaport",
)
DIVIDER_LAYERS: tuple[str, ...] = ("road_divider", "lane_divider")
BOUNDARY_LAYERS: tuple[str, ...] = ("road_segment", "lane")
MARGIN = 0.2
"""Metres the region grows by for ped crossings and shrinks by for boundaries (MapTR's values)."""

DOWNLOAD_HINT = (
    "download the nuScenes map expansion v1.3 (nuScenes-map-expansion-v1.3.zip, https://www.nuscenes.org/download) "
    "and unzip it into {maps}"
)


@dataclass(frozen=True)
class MapLayer:
    """One map layer's shapes in the world frame, in record order, with a spatial index.

    Attributes:
        geometries: object [R] shapely LineStrings (line layers) or Polygons (polygon layers).
        tree: STRtree over ``geometries``.
    """

    geometries: np.ndarray
    tree: shapely.STRtree

    @classmethod
    def of(cls, geometries: list[shapely.Geometry]) -> MapLayer:
        array = np.array(geometries, dtype=object)
        return cls(array, shapely.STRtree(array))

    def clip(self, patch: shapely.Polygon) -> np.ndarray:
        """Each shape that meets ``patch``, cut to it, in record order: object [M]."""
        hits = np.sort(self.tree.query(patch, predicate="intersects"))
        clipped = shapely.intersection(self.geometries[hits], patch)
        return clipped[~shapely.is_empty(clipped)]


def load_layers(nusc_map: NuScenesMap) -> dict[str, MapLayer]:
    """The layers the ground truth reads, from a loaded map.

    Lines with fewer than two nodes and invalid polygons are left out, as MapTR leaves them out.
    """
    layers = {}
    for name in DIVIDER_LAYERS:
        records = [r for r in getattr(nusc_map, name) if len(r["node_tokens"]) >= 2]
        layers[name] = MapLayer.of([nusc_map.extract_line(r["line_token"]) for r in records])
    for name in ("ped_crossing", *BOUNDARY_LAYERS):
        polygons = [nusc_map.extract_polygon(r["polygon_token"]) for r in getattr(nusc_map, name)]
        layers[name] = MapLayer.of([p for p in polygons if p.is_valid])
    return layers


def planar_pose(ego_to_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ego's pose in the map plane: rotation float64 [2, 2] by its yaw, translation float64 [2]."""
    pose = np.asarray(ego_to_world, dtype=np.float64)
    yaw = np.arctan2(pose[1, 0], pose[0, 0])
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s], [s, c]]), pose[:2, 3]


def _lines(geometries: shapely.Geometry | np.ndarray) -> list[shapely.LineString]:
    """The LineStrings of at least two points among ``geometries`` and their parts, in order."""
    parts = shapely.get_parts(geometries)
    return [g for g in parts if isinstance(g, shapely.LineString) and len(g.coords) >= 2]


def _outlines(polygons: np.ndarray, box: shapely.Polygon) -> list[shapely.LineString]:
    """Outlines of the union of ``polygons``: exteriors clockwise, then holes counter-clockwise, each
    clipped to ``box`` with touching pieces merged."""
    shapes = [g for g in shapely.get_parts(shapely.union_all(polygons)) if isinstance(g, shapely.Polygon)]
    exteriors = [p.exterior for p in shapes]
    holes = [ring for p in shapes for ring in p.interiors]
    rings = [shapely.reverse(r) if r.is_ccw else r for r in exteriors]
    rings += [r if r.is_ccw else shapely.reverse(r) for r in holes]
    out = []
    for ring in rings:
        piece = ring.intersection(box)
        if isinstance(piece, shapely.MultiLineString):
            piece = shapely.line_merge(piece)
        out += _lines(piece)
    return out


class NuScenesMapGT:
    """Map ground truth of the four nuScenes locations, each loaded on first use.

    Args:
        dataroot: the nuScenes folder; the maps are read from ``dataroot/maps/expansion/<location>.json``.
        region: (x_min, y_min, x_max, y_max) in base_link.
    """

    def __init__(self, dataroot: str | Path, region: tuple[float, float, float, float] = REGION):
        self.dataroot = Path(dataroot)
        self.region = region
        folder = self.dataroot / "maps" / "expansion"
        if not folder.is_dir():
            raise NuScenesError(f"{folder}: no such folder; " + DOWNLOAD_HINT.format(maps=self.dataroot / "maps"))
        self.folder = folder
        self._layers: dict[str, dict[str, MapLayer]] = {}

    def load(self, location: str) -> dict[str, MapLayer]:
        """The layers of ``location``, loading its map now if needed (before DataLoader workers fork,
        so that they share it)."""
        if location not in self._layers:
            if location not in LOCATIONS:
                raise NuScenesError(f"unknown nuScenes map location '{location}' (known: {', '.join(LOCATIONS)})")
            path = self.folder / f"{location}.json"
            if not path.is_file():
                raise NuScenesError(f"{path}: no such file; " + DOWNLOAD_HINT.format(maps=self.dataroot / "maps"))
            self._layers[location] = load_layers(NuScenesMap(dataroot=str(self.dataroot), map_name=location))
        return self._layers[location]

    def ground_truth(self, location: str, ego_to_world: np.ndarray) -> list[MapElement]:
        """Ground truth around an ego pose.

        Args:
            location: one of LOCATIONS.
            ego_to_world: float64 [4, 4] pose of base_link in the map frame; only its yaw and (x, y) count.

        Returns:
            MapElements in base_link: dividers, then ped crossings, then boundaries.
        """
        layers = self.load(location)
        rotation, translation = planar_pose(ego_to_world)
        patch = shapely.transform(shapely.box(*self.region), lambda p: p @ rotation.T + translation)

        def local(names: tuple[str, ...]) -> np.ndarray:
            """The layers' shapes in the patch, moved into base_link."""
            clipped = np.concatenate([layers[n].clip(patch) for n in names])
            return shapely.transform(clipped, lambda p: (p - translation) @ rotation)

        x_min, y_min, x_max, y_max = self.region
        grown = shapely.box(x_min - MARGIN, y_min - MARGIN, x_max + MARGIN, y_max + MARGIN)
        shrunk = shapely.box(x_min + MARGIN, y_min + MARGIN, x_max - MARGIN, y_max - MARGIN)
        elements = [(CLASS_IDS["divider"], line) for line in _lines(local(DIVIDER_LAYERS))]
        elements += [(CLASS_IDS["ped_crossing"], line) for line in _outlines(local(("ped_crossing",)), grown)]
        elements += [(CLASS_IDS["boundary"], line) for line in _outlines(local(BOUNDARY_LAYERS), shrunk)]
        return [MapElement(c, np.asarray(line.coords, dtype=np.float32)) for c, line in elements]
