"""Procedural road networks: a jittered grid of roads with curves, T and four-way intersections.

Everything here is 2-D in the world frame (metres); heights come from the terrain. A network
gives what is painted and built (road surface, paint strokes, zebra stripes), the vector ground
truth of exactly those (dividers, crossing outlines, curb lines), and the lanes vehicles use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely import ops

from mapdistill_core.map_elements import CLASS_IDS

WHITE, YELLOW = 0, 1
PAINT_WIDTH = 0.15
DASH, GAP = 3.0, 6.0
CROSSING_LENGTH = 3.5
STRIPE, STRIPE_GAP = 0.5, 0.5
CORNER_RADIUS = 6.0
STOP_GAP = 1.0


@dataclass
class Road:
    """One road between two intersections (or through a curve).

    Attributes:
        centerline: float [N, 2] dense polyline from the start node to the end node.
        lanes_each_way: lanes per direction (1-3).
        lane_width: metres.
        parking: width of the parking strip on each side (0 when none), metres.
        center_style: "dashed", "solid" or "double" yellow centre line.
        paint_start, paint_end: arc lengths between which the road is painted (intersections
            and crossings excluded).
    """

    centerline: np.ndarray
    lanes_each_way: int
    lane_width: float
    parking: float
    center_style: str
    paint_start: float = 0.0
    paint_end: float = 0.0

    @property
    def half_width(self) -> float:
        return self.lanes_each_way * self.lane_width + self.parking

    @property
    def line(self) -> shapely.LineString:
        return shapely.LineString(self.centerline)

    def offset_line(self, offset: float, start: float | None = None, end: float | None = None) -> np.ndarray:
        """The painted section's parallel at ``offset`` metres (positive: left of travel), [K, 2]."""
        start = self.paint_start if start is None else start
        end = self.paint_end if end is None else end
        pts = np.asarray(ops.substring(self.line, start, end).coords)
        return pts + offset * _normals(pts)

    def frame(self, s: float) -> tuple[np.ndarray, np.ndarray]:
        """Point [2] on the centre line at arc length ``s`` and the unit normal [2] to its left."""
        pts = np.asarray(ops.substring(self.line, max(s - 0.5, 0.0), s + 0.5).coords)[[0, -1]]
        p = np.asarray(self.line.interpolate(s).coords[0])
        return p, _normals(pts)[0]

    def lane(self, index: int, forward: bool) -> np.ndarray:
        """Centre line of lane ``index`` (0 next to the centre) in the direction of travel, [K, 2]."""
        offset = (index + 0.5) * self.lane_width
        pts = self.offset_line(-offset if forward else offset)
        return pts if forward else pts[::-1]


@dataclass
class RoadNetwork:
    """A road network and what it paints and builds.

    Attributes:
        roads: the roads.
        road_nodes: per road, (start node, end node) indices into ``nodes``.
        nodes: float [M, 2] node positions.
        surface: the drivable area (union of roads, corners rounded), a shapely geometry.
        strokes: paint as (polyline [K, 2], width m, colour WHITE/YELLOW).
        stripes: zebra stripes as polygons [K, 2].
        ground_truth: (class_id, polyline [K, 2]) in the world frame; closed shapes repeat their
            first point.
    """

    roads: list[Road]
    road_nodes: list[tuple[int, int]]
    nodes: np.ndarray
    surface: shapely.Geometry
    strokes: list[tuple[np.ndarray, float, int]] = field(default_factory=list)
    stripes: list[np.ndarray] = field(default_factory=list)
    ground_truth: list[tuple[int, np.ndarray]] = field(default_factory=list)

    def roads_at(self, node: int) -> list[tuple[int, bool]]:
        """Roads touching ``node`` as (road index, True if the road starts there)."""
        out = []
        for i, (a, b) in enumerate(self.road_nodes):
            if a == node:
                out.append((i, True))
            if b == node:
                out.append((i, False))
        return out


def _normals(points: np.ndarray) -> np.ndarray:
    """Unit normals [K, 2] to the left of a smooth polyline [K, 2] (from central differences)."""
    tangent = np.gradient(points, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    return np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)


def _chaikin(points: np.ndarray, iterations: int = 4) -> np.ndarray:
    """Corner cutting that keeps the end points: a smooth curve through a control polygon."""
    for _ in range(iterations):
        q = 0.75 * points[:-1] + 0.25 * points[1:]
        r = 0.25 * points[:-1] + 0.75 * points[1:]
        points = np.concatenate([points[:1], np.stack([q, r], axis=1).reshape(-1, 2), points[-1:]])
    return points


def _densify(points: np.ndarray, spacing: float = 1.0) -> np.ndarray:
    return np.asarray(shapely.segmentize(shapely.LineString(points), spacing).coords)


def _grid(rng: np.random.Generator, size: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Jittered, rotated grid nodes and edges; interior edges dropped while every node keeps 3+."""
    spacing = rng.uniform(100.0, 150.0, 2)
    ij = np.stack(np.meshgrid(np.arange(size), np.arange(size), indexing="ij"), axis=-1).reshape(-1, 2)
    nodes = ij * spacing + rng.uniform(-8.0, 8.0, ij.shape)
    angle = rng.uniform(0, 2 * np.pi)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    nodes = (nodes - nodes.mean(axis=0)) @ rot.T
    edges = [(a, b) for a in range(len(ij)) for b in range(a + 1, len(ij)) if np.abs(ij[a] - ij[b]).sum() == 1]
    degree = np.bincount(np.array(edges).ravel(), minlength=len(ij))
    kept = []
    for a, b in edges:
        if degree[a] > 3 and degree[b] > 3 and rng.random() < 0.3:
            degree[a] -= 1
            degree[b] -= 1
        else:
            kept.append((a, b))
    return nodes, kept


def _chains(num_nodes: int, edges: list[tuple[int, int]]) -> list[list[int]]:
    """Node sequences of roads: edges joined through nodes of degree 2 (the curves)."""
    neighbours: dict[int, list[int]] = {n: [] for n in range(num_nodes)}
    for a, b in edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    used, chains = set(), []
    for a, b in edges:
        if (a, b) in used or (b, a) in used or len(neighbours[a]) == 2:
            continue
        chain = [a, b]
        used.add((a, b))
        while len(neighbours[chain[-1]]) == 2:
            nxt = [n for n in neighbours[chain[-1]] if n != chain[-2]][0]
            used.add((chain[-1], nxt))
            chain.append(nxt)
        chains.append(chain)
    return chains


def _road_polyline(rng: np.random.Generator, nodes: np.ndarray, chain: list[int]) -> np.ndarray:
    control = [nodes[chain[0]]]
    for a, b in zip(chain[:-1], chain[1:], strict=True):
        pa, pb = nodes[a], nodes[b]
        d = pb - pa
        normal = np.array([-d[1], d[0]]) / np.linalg.norm(d)
        bend = rng.uniform(-1.0, 1.0) * 8.0 if rng.random() < 0.6 else 0.0
        # Straight stretches next to the nodes keep intersections square; the bend sits between.
        control += [pa + 0.2 * d, pa + 0.5 * d + bend * normal, pa + 0.8 * d, pb]
    return _densify(_chaikin(np.array(control)))


def _dashes(points: np.ndarray) -> list[np.ndarray]:
    line = shapely.LineString(points)
    starts = np.arange(0.0, line.length - 0.5, DASH + GAP)
    return [np.asarray(ops.substring(line, s, min(s + DASH, line.length)).coords) for s in starts]


def _paint_and_dividers(road: Road) -> tuple[list[tuple[np.ndarray, float, int]], list[np.ndarray]]:
    strokes, dividers = [], []
    center = road.offset_line(0.0)
    dividers.append(center)
    if road.center_style == "double":
        strokes += [(road.offset_line(s * 0.15), PAINT_WIDTH, YELLOW) for s in (-1, 1)]
    elif road.center_style == "solid":
        strokes.append((center, PAINT_WIDTH, YELLOW))
    else:
        strokes += [(d, PAINT_WIDTH, YELLOW) for d in _dashes(center)]
    for k in range(1, road.lanes_each_way):
        for side in (-1, 1):
            line = road.offset_line(side * k * road.lane_width)
            dividers.append(line)
            strokes += [(d, PAINT_WIDTH, WHITE) for d in _dashes(line)]
    return strokes, dividers


def _crossing(road: Road, at_start: bool) -> tuple[np.ndarray, list[np.ndarray]]:
    """Outline (closed) and zebra stripes of a crossing over ``road`` next to one of its ends."""
    cut = road.paint_start - CROSSING_LENGTH - STOP_GAP if at_start else road.paint_end + STOP_GAP
    s0, s1 = cut, cut + CROSSING_LENGTH
    hw = road.half_width

    (p0, n0), (p1, n1) = road.frame(s0), road.frame(s1)

    def quad(u0: float, u1: float) -> np.ndarray:
        return np.array([p0 + u0 * n0, p1 + u0 * n1, p1 + u1 * n1, p0 + u1 * n0, p0 + u0 * n0])

    outline = quad(-hw, hw)
    stripes = [quad(u, u + STRIPE) for u in np.arange(-hw + 0.25, hw - STRIPE, STRIPE + STRIPE_GAP)]
    return outline, stripes


def _rings(geometry: shapely.Geometry) -> list[np.ndarray]:
    polygons = getattr(geometry, "geoms", [geometry])
    rings = []
    for poly in polygons:
        for ring in [poly.exterior, *poly.interiors]:
            rings.append(np.asarray(shapely.segmentize(ring, 1.0).coords))
    return rings


def generate_network(rng: np.random.Generator, grid_size: int = 4, crossing_probability: float = 0.7) -> RoadNetwork:
    """A random road network: ``grid_size`` x ``grid_size`` jittered grid of intersections."""
    nodes, edges = _grid(rng, grid_size)
    chains = _chains(len(nodes), edges)
    roads = []
    for chain in chains:
        lanes = int(rng.choice([1, 2, 3], p=[0.45, 0.4, 0.15]))
        style = "double" if lanes > 1 else str(rng.choice(["dashed", "solid"]))
        parking = 2.2 if rng.random() < 0.4 else 0.0
        roads.append(Road(_road_polyline(rng, nodes, chain), lanes, float(rng.uniform(3.0, 3.6)), parking, style))
    road_nodes = [(c[0], c[-1]) for c in chains]

    # Intersections: each road is painted up to the intersection box and its crossing.
    box = np.zeros(len(nodes))
    for road, (a, b) in zip(roads, road_nodes, strict=True):
        box[a] = max(box[a], road.half_width)
        box[b] = max(box[b], road.half_width)
    for road, (a, b) in zip(roads, road_nodes, strict=True):
        road.paint_start = box[a] + CORNER_RADIUS + CROSSING_LENGTH + 2 * STOP_GAP
        road.paint_end = road.line.length - (box[b] + CORNER_RADIUS + CROSSING_LENGTH + 2 * STOP_GAP)

    strips = [shapely.buffer(r.line, r.half_width, cap_style="flat") for r in roads]
    strips += [shapely.Point(nodes[n]).buffer(box[n]) for n in range(len(nodes)) if box[n] > 0]
    surface = shapely.union_all(strips).buffer(CORNER_RADIUS).buffer(-CORNER_RADIUS)
    network = RoadNetwork(roads, road_nodes, nodes, surface)
    for road in roads:
        strokes, dividers = _paint_and_dividers(road)
        network.strokes += strokes
        network.ground_truth += [(CLASS_IDS["divider"], d) for d in dividers]
        for at_start in (True, False):
            if rng.random() < crossing_probability:
                outline, stripes = _crossing(road, at_start)
                network.stripes += stripes
                network.ground_truth.append((CLASS_IDS["ped_crossing"], outline))
    network.ground_truth += [(CLASS_IDS["boundary"], ring) for ring in _rings(surface)]
    return network
