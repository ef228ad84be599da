"""The synthetic world: a scene drawn from its seed, and the Samples a drive through it yields.

``SyntheticScene(config, split, index)`` builds the scene (roads, terrain, vehicles, route,
lighting) from ``scene_seed(split, index)``; ``scene.sample(i)`` renders sample i: six camera
images, one LiDAR sweep and the vector ground truth in base_link, all deterministic.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import shapely

from mapdistill_core.data.sample import Sample
from mapdistill_core.data.synthetic.config import SyntheticConfig, scene_name, scene_seed
from mapdistill_core.data.synthetic.raster import MaterialRaster, draw_raster
from mapdistill_core.data.synthetic.raycast import Box, Hits, cast
from mapdistill_core.data.synthetic.scene import Scene, generate_scene
from mapdistill_core.data.synthetic.sensors import (
    LIDAR_ORIGIN,
    REFLECTIVITY,
    Rig,
    expose,
    lidar_rays,
    shade,
)
from mapdistill_core.map_elements import CLASS_IDS, REGION, MapElement
from mapdistill_core.polyline import clip_polygon, clip_polyline

EPOCH_NS = 1_700_000_000 * 10**9
NEAR = 0.05
"""Near plane (m) of the cameras when finding which pixels a box can cover."""
_EDGES = np.array([(i, j) for i in range(8) for j in range(i + 1, 8) if bin(i ^ j).count("1") == 1])
"""The 12 edges of a box whose corners are indexed by 3 bits (as in ``_box_corners``)."""
MIN_PIECE_LENGTH = 1.0
"""Ground-truth pieces shorter than this (m) after clipping are dropped (slivers at the border)."""


class SyntheticScene:
    """One scene of the synthetic world (deterministic in config, split and index)."""

    def __init__(self, config: SyntheticConfig, split: str, index: int):
        self.config = config
        self.split = split
        self.index = index
        self.seed = scene_seed(split, index)
        self.name = scene_name(split, index)
        rng = np.random.default_rng(self.seed)
        duration = (config.samples_per_scene - 1) / config.sample_rate_hz
        self.scene: Scene = generate_scene(
            rng,
            duration,
            config.conditions,
            config.terrain_relief,
            config.hilly_fraction,
            config.grid_size,
            config.crossing_probability,
            config.vehicle_density,
        )
        self.curb = float(rng.uniform(*config.curb_height_range))
        self.rig = Rig.build(config.image_height, config.image_width)

    @property
    def condition(self) -> str:
        return self.scene.condition

    def __len__(self) -> int:
        return self.config.samples_per_scene

    @cached_property
    def _camera_rays(self) -> list[np.ndarray]:
        return [self.rig.pixel_rays(c) for c in range(len(self.rig.intrinsics))]

    @cached_property
    def _lidar_rays(self) -> np.ndarray:
        c = self.config
        return lidar_rays(c.lidar_beams, c.lidar_azimuth_steps, c.lidar_elevation_deg)

    def time(self, i: int) -> float:
        return i / self.config.sample_rate_hz

    def sample(self, i: int) -> Sample:
        """Render sample ``i`` (0 <= i < len(self))."""
        if not 0 <= i < len(self):
            raise IndexError(f"sample {i} is outside 0..{len(self) - 1} of scene {self.name}")
        rng = np.random.default_rng([self.seed, i])
        pose = self.scene.ego_pose(self.time(i))
        raster = draw_raster(self.scene, pose[:2, 3], self.config.raster_half_size_m, self.config.raster_resolution_m)
        boxes, info = self._vehicles(self.time(i), pose)
        images = np.stack([self._render_camera(c, pose, raster, boxes, info, rng) for c in range(6)])
        return Sample(
            images=images,
            intrinsics=self.rig.intrinsics.copy(),
            cam_to_ego=self.rig.cam_to_ego.copy(),
            lidar=self._lidar_sweeps(i, pose, raster, boxes, rng),
            ego_to_world=pose,
            ground_truth=self.ground_truth(pose),
            timestamp_ns=EPOCH_NS + self.seed * 100 * 10**9 + round(self.time(i) * 1e9),
            scene=self.name,
            token=f"{self.name}-{i:03d}",
        )

    def _vehicles(self, time_s: float, pose: np.ndarray) -> tuple[list[Box], np.ndarray]:
        boxes, info = [], []
        for v in self.scene.vehicles:
            state = v.pose(time_s)
            if state is None or np.linalg.norm(state[0] - pose[:2, 3]) > self.config.lidar_range_m + 10:
                continue
            z = float(self.scene.terrain.height(state[0][0], state[0][1]))
            boxes.append(Box(np.array([state[0][0], state[0][1], z]), state[1], v.size))
            info.append([*v.color, z, v.size[2]])
        return boxes, np.array(info, dtype=np.float32).reshape(-1, 5)

    def _cast(self, origin_ego, rays_ego, pose, raster, boxes, candidates) -> tuple[Hits, np.ndarray, np.ndarray]:
        """Cast rays given in base_link from ``origin_ego``; returns hits, world origin and directions."""
        rot = pose[:3, :3].astype(np.float32)
        origin = (pose[:3, :3] @ origin_ego + pose[:3, 3]).astype(np.float32)
        directions = rays_ego @ rot.T
        origins = np.broadcast_to(origin, directions.shape)
        hits = cast(origins, directions, self.scene.terrain, raster, self.curb, boxes, candidates)
        return hits, origin, directions

    def _box_corners(self, box: Box, world_to_frame: np.ndarray) -> np.ndarray:
        """The 8 corners [8, 3] of ``box`` in the frame that ``world_to_frame`` [4, 4] maps to."""
        length, width, height = box.size
        c, s = np.cos(box.yaw), np.sin(box.yaw)
        corners = np.array(
            [[sx * length / 2, sy * width / 2, sz * height] for sx in (-1, 1) for sy in (-1, 1) for sz in (0, 1)]
        )
        world = corners @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]).T + box.base
        return np.c_[world, np.ones(8)] @ world_to_frame[:3].T

    def _camera_candidates(self, camera: int, pose: np.ndarray, boxes: list[Box]) -> list[np.ndarray]:
        """Per box, the pixels (ray indices) its projection covers in ``camera``."""
        world_to_cam = np.linalg.inv(pose @ self.rig.cam_to_ego[camera].astype(np.float64))
        h, w = self.rig.height, self.rig.width
        out = []
        for box in boxes:
            corners = self._box_corners(box, world_to_cam)
            front = corners[:, 2] > NEAR
            # The part of the box in front of the camera: corners in front, plus where the
            # edges that cross the near plane cross it.
            a, b = corners[_EDGES[:, 0]], corners[_EDGES[:, 1]]
            crossing = (a[:, 2] > NEAR) != (b[:, 2] > NEAR)
            t = (NEAR - a[crossing, 2]) / (b[crossing, 2] - a[crossing, 2])
            visible = np.concatenate([corners[front], a[crossing] + t[:, None] * (b[crossing] - a[crossing])])
            if len(visible) == 0:
                out.append(np.zeros(0, dtype=np.int64))
                continue
            uv = visible @ self.rig.intrinsics[camera].astype(np.float64).T
            uv = uv[:, :2] / uv[:, 2:]
            u0, v0 = np.clip(np.floor(uv.min(axis=0)).astype(int), 0, [w, h])
            u1, v1 = np.clip(np.ceil(uv.max(axis=0)).astype(int) + 1, 0, [w, h])
            rows, cols = np.mgrid[v0:v1, u0:u1]
            out.append((rows * w + cols).ravel())
        return out

    def _lidar_candidates(self, pose: np.ndarray, boxes: list[Box]) -> list[np.ndarray]:
        """Per box, the LiDAR rays (all beams) whose azimuth falls within the box's extent."""
        world_to_ego = np.linalg.inv(pose)
        steps = self.config.lidar_azimuth_steps
        beams = np.arange(self.config.lidar_beams)[:, None] * steps
        out = []
        for box in boxes:
            rel = self._box_corners(box, world_to_ego)[:, :2] - LIDAR_ORIGIN[:2]
            azimuth = np.arctan2(rel[:, 1], rel[:, 0])
            centre = np.arctan2(rel[:, 1].mean(), rel[:, 0].mean())
            offset = (azimuth - centre + np.pi) % (2 * np.pi) - np.pi
            first = int(np.floor((centre + offset.min()) / (2 * np.pi) * steps)) - 1
            last = int(np.ceil((centre + offset.max()) / (2 * np.pi) * steps)) + 1
            columns = np.arange(first, last + 1) % steps
            out.append((beams + columns[None]).ravel())
        return out

    def _render_camera(
        self, camera: int, pose: np.ndarray, raster: MaterialRaster, boxes: list[Box], info: np.ndarray, rng
    ) -> np.ndarray:
        rays = self._camera_rays[camera]
        origin_ego = self.rig.cam_to_ego[camera, :3, 3].astype(np.float64)
        candidates = self._camera_candidates(camera, pose, boxes)
        hits, origin, directions = self._cast(origin_ego, rays, pose, raster, boxes, candidates)
        t = np.where(np.isfinite(hits.t), hits.t, 0.0)[:, None]
        points = origin + t * directions
        points_ego = origin_ego.astype(np.float32) + t * rays
        radiance = shade(
            hits, points, directions, points_ego, info, self.condition, self.scene.sun, self.scene.paint_wear, self.seed
        )
        image = expose(radiance, self.condition, rng)
        return image.reshape(self.rig.height, self.rig.width, 3)

    def _lidar_sweeps(self, i: int, pose: np.ndarray, raster: MaterialRaster, boxes: list[Box], rng) -> np.ndarray:
        """The sample's sweep and the earlier ones, each scanned from where the ego was then and
        moved into this sample's base_link: float32 [P, 4]."""
        clouds = [self._scan_lidar(pose, raster, boxes, rng)]
        world_to_ego = np.linalg.inv(pose)
        for k in range(1, self.config.lidar_sweeps):
            time_s = self.time(i) - k / self.config.lidar_sweep_rate_hz
            past = self.scene.ego_pose(time_s)
            cloud = self._scan_lidar(past, raster, self._vehicles(time_s, past)[0], rng)
            moved = np.c_[cloud[:, :3], np.ones(len(cloud))] @ (world_to_ego @ past).T
            clouds.append(np.c_[moved[:, :3], cloud[:, 3]].astype(np.float32))
        return np.concatenate(clouds)

    def _scan_lidar(self, pose: np.ndarray, raster: MaterialRaster, boxes: list[Box], rng) -> np.ndarray:
        c = self.config
        rays = self._lidar_rays
        hits, _, _ = self._cast(LIDAR_ORIGIN, rays, pose, raster, boxes, self._lidar_candidates(pose, boxes))
        keep = np.isfinite(hits.t) & (hits.t <= c.lidar_range_m) & (rng.random(len(rays)) >= c.lidar_dropout)
        distance = hits.t[keep] + rng.normal(0.0, c.lidar_range_noise_m, int(keep.sum())).astype(np.float32)
        xyz = LIDAR_ORIGIN.astype(np.float32) + distance[:, None] * rays[keep]
        reflectivity = np.zeros(len(rays), dtype=np.float32)
        for code, value in REFLECTIVITY.items():
            reflectivity[hits.material == code] = value
        intensity = np.clip(reflectivity[keep] * 255 * rng.uniform(0.8, 1.2, int(keep.sum())), 0, 255)
        return np.concatenate([xyz, intensity[:, None].astype(np.float32)], axis=1)

    def ground_truth(self, pose: np.ndarray) -> list[MapElement]:
        """The map elements around ``pose`` in base_link, clipped to the perception region."""
        world_to_ego = np.linalg.inv(pose)
        centre = pose[:2, 3]
        reach = np.hypot(REGION[2], REGION[3]) + 5.0
        out = []
        for class_id, points in self.scene.network.ground_truth:
            if np.linalg.norm(points - centre, axis=1).min() > reach:
                continue
            z = self.scene.terrain.height(points[:, 0], points[:, 1])
            ego = (np.c_[points, z, np.ones(len(points))] @ world_to_ego.T)[:, :2]
            pieces = clip_polygon(ego) if class_id == CLASS_IDS["ped_crossing"] else clip_polyline(ego)
            for piece in pieces:
                line = shapely.simplify(shapely.LineString(piece), 0.02)
                if line.length >= MIN_PIECE_LENGTH:
                    out.append(MapElement(class_id, np.asarray(line.coords, dtype=np.float32)))
        return out
