"""A scene: a road network on rolling terrain, the ego's drive through it and the other vehicles.

World frame (the "map" frame), metres and seconds. Everything is drawn from one random generator,
so a scene seed fixes the scene.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from mapdistill_core.data.synthetic.road_network import RoadNetwork, generate_network
from mapdistill_core.data.synthetic.terrain import Terrain


@dataclass(frozen=True)
class Vehicle:
    """A box-shaped vehicle following ``path`` at ``speed`` m/s from arc length ``start`` (0 s).

    Attributes:
        path: float [K, 2] world polyline it drives along (parked: speed 0).
        size: (length, width, height) metres.
        color: float [3] linear RGB albedo.
    """

    path: np.ndarray
    start: float
    speed: float
    size: tuple[float, float, float]
    color: np.ndarray

    def pose(self, time_s: float) -> tuple[np.ndarray, float] | None:
        """(centre xy [2], yaw) at ``time_s``, or None while it is off its path."""
        line = shapely.LineString(self.path)
        s = self.start + self.speed * time_s
        if s < 0.0 or s > line.length - 1.0:
            return None
        p = np.asarray(line.interpolate(s).coords[0])
        q = np.asarray(line.interpolate(s + 1.0).coords[0])
        return p, float(np.arctan2(q[1] - p[1], q[0] - p[0]))


@dataclass
class Scene:
    """Everything that does not change during a scene.

    Attributes:
        network: roads, paint and ground truth.
        sidewalk: the sidewalk band around the road surface (shapely geometry).
        terrain: height field.
        route: float [K, 2] the ego's path (1 m spacing); the ego is at arc length
            ``route_start + speed * t`` at time t.
        condition: "day", "dusk" or "night".
        vehicles: other road users.
        sun: float [3] unit vector towards the sun (world frame).
        paint_wear: multiplier of paint brightness (worn paint has less contrast).
    """

    network: RoadNetwork
    sidewalk: shapely.Geometry
    terrain: Terrain
    route: np.ndarray
    route_start: float
    speed: float
    condition: str
    vehicles: list[Vehicle]
    sun: np.ndarray
    paint_wear: float

    def ego_pose(self, time_s: float) -> np.ndarray:
        """base_link -> world [4, 4] (float64) at ``time_s``: on the route, pitched and rolled
        with the terrain, base_link on the ground."""
        line = shapely.LineString(self.route)
        s = self.route_start + self.speed * time_s
        p = np.asarray(line.interpolate(s).coords[0])
        q = np.asarray(line.interpolate(s + 1.0).coords[0])
        o = np.asarray(line.interpolate(max(s - 1.0, 0.0)).coords[0])
        forward2 = (q - o) / np.linalg.norm(q - o)
        left2 = np.array([-forward2[1], forward2[0]])
        gx, gy = self.terrain.gradient(p[0], p[1])
        grad = np.array([float(gx), float(gy)])
        forward = np.array([*forward2, grad @ forward2])
        forward /= np.linalg.norm(forward)
        left = np.array([*left2, grad @ left2])
        left -= forward * (left @ forward)
        left /= np.linalg.norm(left)
        pose = np.eye(4)
        pose[:3, :3] = np.stack([forward, left, np.cross(forward, left)], axis=1)
        pose[:3, 3] = [p[0], p[1], float(self.terrain.height(p[0], p[1]))]
        return pose


def _bezier(p0: np.ndarray, t0: np.ndarray, p3: np.ndarray, t3: np.ndarray, num: int = 30) -> np.ndarray:
    d = np.linalg.norm(p3 - p0) / 3
    p1, p2 = p0 + t0 * d, p3 - t3 * d
    u = np.linspace(0, 1, num)[:, None]
    return (1 - u) ** 3 * p0 + 3 * (1 - u) ** 2 * u * p1 + 3 * (1 - u) * u**2 * p2 + u**3 * p3


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def plan_route(
    rng: np.random.Generator, network: RoadNetwork, length: float
) -> tuple[np.ndarray, set[tuple[int, bool, int]]]:
    """A drive of at least ``length`` metres along lanes, turning at intersections at random.

    Returns:
        float [K, 2] route polyline (1 m spacing) and the lanes used as (road, forward, lane).
    """
    candidates = [i for i, r in enumerate(network.roads) if r.paint_end - r.paint_start > 40]
    road = int(rng.choice(candidates))
    forward = bool(rng.random() < 0.5)
    lane = int(rng.integers(network.roads[road].lanes_each_way))
    used = {(road, forward, lane)}
    points = network.roads[road].lane(lane, forward)
    total = shapely.LineString(points).length
    while total < length:
        node = network.road_nodes[road][1 if forward else 0]
        options = [(r, f) for r, f in network.roads_at(node) if r != road]
        road, forward = options[int(rng.integers(len(options)))]
        lane = min(lane, network.roads[road].lanes_each_way - 1)
        used.add((road, forward, lane))
        nxt = network.roads[road].lane(lane, forward)
        turn = _bezier(points[-1], _unit(points[-1] - points[-2]), nxt[0], _unit(nxt[1] - nxt[0]))
        points = np.concatenate([points, turn[1:-1], nxt])
        total = shapely.LineString(points).length
    return np.asarray(shapely.segmentize(shapely.LineString(points), 1.0).coords), used


def _vehicle_size(rng: np.random.Generator) -> tuple[float, float, float]:
    if rng.random() < 0.15:
        return float(rng.uniform(6.5, 9.0)), float(rng.uniform(2.3, 2.5)), float(rng.uniform(2.6, 3.2))
    return float(rng.uniform(4.2, 4.9)), float(rng.uniform(1.75, 1.95)), float(rng.uniform(1.4, 1.7))


PALETTE = np.array(
    [
        [0.6, 0.6, 0.62],
        [0.05, 0.05, 0.06],
        [0.8, 0.8, 0.8],
        [0.45, 0.05, 0.05],
        [0.05, 0.12, 0.4],
        [0.3, 0.32, 0.3],
        [0.7, 0.55, 0.1],
        [0.15, 0.3, 0.15],
    ]
)


def place_vehicles(
    rng: np.random.Generator, network: RoadNetwork, ego_lanes: set[tuple[int, bool, int]], density: float
) -> list[Vehicle]:
    """Parked cars in parking strips and moving traffic in every lane the ego does not use."""
    vehicles = []
    for i, road in enumerate(network.roads):
        painted = road.paint_end - road.paint_start
        if road.parking > 0:
            for side in (-1.0, 1.0):
                strip = road.offset_line(side * (road.half_width - road.parking / 2))
                s = float(rng.uniform(1.0, 8.0))
                while s < painted - 6.0:
                    size = _vehicle_size(rng)
                    if rng.random() < 0.6 * min(density, 1.0):
                        color = PALETTE[rng.integers(len(PALETTE))]
                        vehicles.append(Vehicle(strip, s + size[0] / 2, 0.0, size, color))
                    s += size[0] + float(rng.uniform(1.0, 12.0)) / max(density, 1e-3)
        for forward in (True, False):
            for lane in range(road.lanes_each_way):
                if (i, forward, lane) in ego_lanes:
                    continue
                path = road.lane(lane, forward)
                for _ in range(rng.poisson(density * painted / 70.0)):
                    color = PALETTE[rng.integers(len(PALETTE))]
                    start = float(rng.uniform(0, painted))
                    vehicles.append(Vehicle(path, start, float(rng.uniform(3.0, 10.0)), _vehicle_size(rng), color))
    return vehicles


def generate_scene(
    rng: np.random.Generator,
    duration_s: float,
    conditions: dict[str, float],
    terrain_relief: float,
    hilly_fraction: float,
    grid_size: int,
    crossing_probability: float,
    vehicle_density: float,
) -> Scene:
    """Draw a whole scene from ``rng``."""
    network = generate_network(rng, grid_size, crossing_probability)
    sidewalk = shapely.difference(network.surface.buffer(float(rng.uniform(2.0, 3.5))), network.surface)
    relief = terrain_relief if rng.random() < hilly_fraction else 0.1 * terrain_relief
    terrain = Terrain.random(rng, relief)
    speed = float(rng.uniform(4.0, 9.0))
    route, ego_lanes = plan_route(rng, network, speed * duration_s + 60.0)
    names = list(conditions)
    weights = np.array([conditions[n] for n in names], dtype=float)
    condition = str(names[rng.choice(len(names), p=weights / weights.sum())])
    vehicles = place_vehicles(rng, network, ego_lanes, vehicle_density)
    azimuth, elevation = rng.uniform(0, 2 * np.pi), rng.uniform(np.radians(25), np.radians(65))
    sun = np.array([np.cos(azimuth) * np.cos(elevation), np.sin(azimuth) * np.cos(elevation), np.sin(elevation)])
    return Scene(
        network=network,
        sidewalk=sidewalk,
        terrain=terrain,
        route=route,
        route_start=float(rng.uniform(5.0, 30.0)),
        speed=speed,
        condition=condition,
        vehicles=vehicles,
        sun=sun,
        paint_wear=float(rng.uniform(0.55, 1.0)),
    )
