"""The synthetic world: images, LiDAR and ground truth agree with each other and with the world."""

from functools import cache

import numpy as np
import pytest
import shapely

from mapdistill_core.data.sample import CAMERA_NAMES
from mapdistill_core.data.synthetic.config import SPLIT_SEED_BASE, SyntheticConfig, scene_seed
from mapdistill_core.data.synthetic.world import SyntheticScene
from mapdistill_core.map_elements import CLASS_IDS, REGION, is_closed
from mapdistill_core.polyline import resample_polylines

CONFIGS = {
    "default": SyntheticConfig(samples_per_scene=6),
    "small": SyntheticConfig(image_height=64, image_width=176, lidar_azimuth_steps=360, samples_per_scene=4),
}
SMALL = "small"


@cache
def scene(split: str, index: int, config: str = "default") -> SyntheticScene:
    return SyntheticScene(CONFIGS[config], split, index)


@cache
def sample(split: str, index: int, i: int, config: str = "default"):
    return scene(split, index, config).sample(i)


def scenes_with(condition: str, count: int) -> list[int]:
    found = [i for i in range(40) if scene("test", i).condition == condition]
    assert len(found) >= count, f"fewer than {count} {condition} scenes among the first 40"
    return found[:count]


def ground_z(s: SyntheticScene, pose: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """base_link z [N] of the road surface under base_link points xy [N, 2]."""
    z = np.zeros(len(xy))
    world_to_ego = np.linalg.inv(pose)
    for _ in range(4):
        world = np.c_[xy, z, np.ones(len(xy))] @ pose.T
        h = s.scene.terrain.height(world[:, 0], world[:, 1])
        z = (np.c_[world[:, :2], h, np.ones(len(xy))] @ world_to_ego.T)[:, 2]
    return z


def project(smp, camera: int, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates [N, 2] of base_link points [N, 3], and which are in front of the camera."""
    cam = np.c_[points, np.ones(len(points))] @ np.linalg.inv(smp.cam_to_ego[camera]).T
    uv = cam[:, :3] @ smp.intrinsics[camera].T
    return uv[:, :2] / uv[:, 2:], cam[:, 2] > 0.5


def test_sample_follows_the_design_contract():
    smp = sample("test", 0, 0, SMALL)
    assert smp.images.shape == (6, 64, 176, 3) and smp.images.dtype == np.uint8
    assert smp.intrinsics.shape == (6, 3, 3) and smp.intrinsics.dtype == np.float32
    assert smp.cam_to_ego.shape == (6, 4, 4) and smp.cam_to_ego.dtype == np.float32
    assert smp.lidar.ndim == 2 and smp.lidar.shape[1] == 4 and smp.lidar.dtype == np.float32
    assert smp.ego_to_world.dtype == np.float64
    np.testing.assert_allclose(smp.ego_to_world[:3, :3] @ smp.ego_to_world[:3, :3].T, np.eye(3), atol=1e-9)
    assert smp.token == "synthetic-test-00000-000" and smp.scene == "synthetic-test-00000"
    # Optical frames: CAM_FRONT looks along +x, CAM_BACK along -x, CAM_FRONT_LEFT to the left.
    forward = smp.cam_to_ego[:, :3, 2]
    assert forward[CAMERA_NAMES.index("CAM_FRONT")] == pytest.approx([1, 0, 0], abs=1e-6)
    assert forward[CAMERA_NAMES.index("CAM_BACK")] == pytest.approx([-1, 0, 0], abs=1e-6)
    assert forward[CAMERA_NAMES.index("CAM_FRONT_LEFT"), 1] > 0.8
    assert smp.cam_to_ego[0, :3, 1] == pytest.approx([0, 0, -1], abs=1e-6)  # image y is down


def test_ground_truth_points_land_on_paint_in_day_images():
    """Project ground-truth dividers into CAM_FRONT: they fall on paint, 1 m beside them does not."""
    on_gt, on_control = [], []
    for index in scenes_with("day", 3):
        for i in (0, 4):
            smp, s = sample("test", index, i), scene("test", index)
            pose = smp.ego_to_world
            brightness = smp.images[0].astype(int).max(axis=2)
            h, w = brightness.shape
            for element in smp.ground_truth:
                if element.class_id != CLASS_IDS["divider"]:
                    continue
                pts = element.points
                dense = resample_polylines(pts, max(2, int(shapely.LineString(pts).length / 0.5)))
                tangent = np.gradient(dense, axis=0)
                normal = np.c_[-tangent[:, 1], tangent[:, 0]] / np.linalg.norm(tangent, axis=1, keepdims=True)
                keep = (dense[:, 0] > 5) & (dense[:, 0] < 18) & (np.abs(dense[:, 1]) < 6)
                for offset, store in ((0.0, on_gt), (1.0, on_control), (-1.0, on_control)):
                    xy = dense[keep] + offset * normal[keep]
                    uv, front = project(smp, 0, np.c_[xy, ground_z(s, pose, xy)])
                    road = np.median(brightness[h // 2 :, w // 3 : 2 * w // 3])
                    for u, v in np.round(uv[front]).astype(int):
                        if 1 <= u < w - 1 and 1 <= v < h - 1:
                            store.append(brightness[v - 1 : v + 2, u - 1 : u + 2].max() > road + 40)
    assert len(on_gt) > 50
    assert np.mean(on_gt) > 0.4, np.mean(on_gt)
    assert np.mean(on_control) < 0.1, np.mean(on_control)


def _lidar_world(smp) -> np.ndarray:
    return np.c_[smp.lidar[:, :3], np.ones(len(smp.lidar))] @ smp.ego_to_world.T


def test_lidar_points_on_markings_are_bright():
    bright_near_paint, bright_count, on_paint = [], 0, []
    for index in (0, 1, 2):
        smp, s = sample("test", index, 3), scene("test", index)
        world = _lidar_world(smp)[:, :2]
        strokes = shapely.union_all([shapely.LineString(p) for p, _, _ in s.scene.network.strokes])
        stripes = shapely.union_all([shapely.Polygon(p) for p in s.scene.network.stripes])
        paint = shapely.union_all([strokes.buffer(0.25), stripes.buffer(0.25)])
        bright = smp.lidar[:, 3] > 120
        bright_count += int(bright.sum())
        bright_near_paint += list(shapely.contains_xy(paint, world[bright, 0], world[bright, 1]))
        centre = shapely.distance(strokes, shapely.points(world)) < 0.03
        on_paint += list(smp.lidar[centre, 3] > 120)
    assert bright_count >= 20
    assert np.mean(bright_near_paint) > 0.97
    assert len(on_paint) >= 10 and np.mean(on_paint) > 0.8


def test_curb_makes_a_height_step_in_the_lidar():
    for index in (0, 1):
        smp, s = sample("test", index, 2), scene("test", index)
        world = _lidar_world(smp)
        residual = world[:, 2] - s.scene.terrain.height(world[:, 0], world[:, 1])
        ground = np.abs(residual) < 0.5
        near_curb = shapely.distance(s.scene.network.surface.boundary, shapely.points(world[:, :2])) < 1.5
        inside = shapely.contains_xy(s.scene.network.surface, world[:, 0], world[:, 1])
        road = residual[ground & near_curb & inside]
        raised = residual[ground & near_curb & ~inside]
        assert len(road) > 20 and len(raised) > 20
        assert abs(np.median(road)) < 0.03
        assert abs(np.median(raised) - s.curb) < 0.03
        assert s.curb >= 0.1


def test_night_images_are_darker_than_day_images():
    day = np.mean([sample("test", i, 1, SMALL).images.mean() for i in scenes_with("day", 2)])
    night = np.mean([sample("test", i, 1, SMALL).images.mean() for i in scenes_with("night", 2)])
    assert night < 0.4 * day


def test_night_cameras_see_little_far_away_while_the_lidar_is_unchanged():
    index = scenes_with("night", 1)[0]
    smp = sample("test", index, 1)
    front = smp.images[0].astype(float).mean(axis=2)
    h = front.shape[0]
    horizon = int(0.38 * h)
    near, far = front[h - 10 :].mean(), front[horizon + 1 : horizon + 6].mean()
    assert near > 3 * far
    day_points = np.mean([len(sample("test", i, 1).lidar) for i in scenes_with("day", 2)])
    assert len(smp.lidar) > 0.8 * day_points


def test_rendering_is_deterministic(tmp_path):
    from mapdistill_core.data.sample import save_sample

    a = SyntheticScene(CONFIGS[SMALL], "val", 3).sample(2)
    b = SyntheticScene(CONFIGS[SMALL], "val", 3).sample(2)
    save_sample(a, tmp_path / "a.npz")
    save_sample(b, tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    c = SyntheticScene(CONFIGS[SMALL], "val", 4).sample(2)
    assert not np.array_equal(a.images, c.images)


def test_ground_truth_stays_in_the_region_and_crossings_stay_closed():
    x_min, y_min, x_max, y_max = REGION
    crossings = 0
    for index in range(6):
        for i in (0, 3):
            for element in scene("test", index, SMALL).ground_truth(scene("test", index, SMALL).scene.ego_pose(i)):
                pts = element.points
                assert np.array_equal(pts, pts.astype(np.float32)) and len(pts) >= 2  # float32 values, as stored
                assert (pts[:, 0] >= x_min - 1e-4).all() and (pts[:, 0] <= x_max + 1e-4).all()
                assert (pts[:, 1] >= y_min - 1e-4).all() and (pts[:, 1] <= y_max + 1e-4).all()
                if element.class_id == CLASS_IDS["ped_crossing"]:
                    crossings += 1
                    assert is_closed(pts)
    assert crossings > 0


def test_every_class_appears():
    classes = {e.class_id for i in range(4) for e in sample("test", i, 0, SMALL).ground_truth}
    assert classes == {0, 1, 2}  # pedestrian crossings included


def test_split_seeds_never_overlap():
    ranges = sorted((base, base + 1_000_000) for base in SPLIT_SEED_BASE.values())
    for (_, end), (start, _) in zip(ranges[:-1], ranges[1:], strict=True):
        assert end <= start
    assert scene_seed("train", 999_999) < scene_seed("val", 0) < scene_seed("test", 0)
    with pytest.raises(ValueError, match="outside"):
        scene_seed("train", 1_000_000)
    with pytest.raises(ValueError, match="unknown split"):
        scene_seed("dev", 0)


def test_flat_ground_assumption_misplaces_markings_in_a_good_share_of_scenes():
    """Where a flat ground would put a road point that really lies 30 m ahead."""
    errors = []
    for index in range(30):
        s = scene("train", index, SMALL)
        pose = s.scene.ego_pose(0.0)
        z = ground_z(s, pose, np.array([[30.0, 0.0]]))[0]
        errors.append(30.0 * z / (1.55 - z))
    assert np.mean(np.abs(errors) >= 2.0) >= 0.3


def test_ego_drives_along_the_route_at_two_hertz():
    s = scene("test", 0, SMALL)
    a, b = s.sample(0), s.sample(1)
    assert b.timestamp_ns - a.timestamp_ns == 500_000_000
    step = np.linalg.norm(b.ego_to_world[:2, 3] - a.ego_to_world[:2, 3])
    assert step == pytest.approx(s.scene.speed * 0.5, rel=0.05)


def test_lidar_sweeps_are_merged_into_the_sample_frame():
    """Earlier sweeps land on the same ground as the sample's own, in the sample's base_link."""
    base = CONFIGS[SMALL]
    swept = SyntheticConfig(**{**base.__dict__, "lidar_sweeps": 4})
    s1, s4 = SyntheticScene(base, "test", 1).sample(3), SyntheticScene(swept, "test", 1).sample(3)
    np.testing.assert_array_equal(s1.images, s4.images)
    assert 3.5 * len(s1.lidar) < len(s4.lidar) < 4.5 * len(s1.lidar)
    s = scene("test", 1, SMALL)
    world = _lidar_world(s4)
    residual = world[:, 2] - s.scene.terrain.height(world[:, 0], world[:, 1])
    on_road = shapely.contains_xy(s.scene.network.surface, world[:, 0], world[:, 1]) & (np.abs(residual) < 0.5)
    assert abs(np.median(residual[on_road])) < 0.03

    # Taken from where the ego was earlier, the older sweeps fill the gaps between the rings.
    def covered_cells(cloud):
        inside = (np.abs(cloud[:, 0]) < 30) & (np.abs(cloud[:, 1]) < 15)
        return len(np.unique(np.floor(cloud[inside, :2] / 0.5), axis=0))

    assert covered_cells(s4.lidar) > 1.3 * covered_cells(s1.lidar)
