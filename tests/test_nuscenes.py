"""The nuScenes loader and its map ground truth, through the real devkit on a tiny dataset on disk."""

import math
import re
import shutil

import numpy as np
import pytest
import shapely

from mapdistill_core.bev_grid import BEVGrid
from mapdistill_core.data.batch import collate
from mapdistill_core.data.nuscenes import NuScenesDataset, NuScenesSource
from mapdistill_core.data.nuscenes_map import NuScenesMapGT
from mapdistill_core.data.sample import CAMERA_NAMES, load_sample, save_sample
from mapdistill_core.errors import NuScenesError
from mapdistill_core.map_elements import CLASS_IDS, is_closed
from mapdistill_core.training.config import DataConfig
from mapdistill_core.training.datasets import build_dataset
from tests.nuscenes_fixture import (
    CAMERA_DELAY_US,
    CAMERAS,
    LOCATION,
    SPEED,
    VERSION,
    build_nuscenes,
    camera_color,
    intrinsics,
)


@pytest.fixture(scope="module")
def dataroot(tmp_path_factory):
    return build_nuscenes(tmp_path_factory.mktemp("nuscenes")).dataroot


@pytest.fixture(scope="module")
def source(dataroot):
    return NuScenesSource(dataroot, VERSION)


@pytest.fixture(scope="module")
def first(source):
    """scene-0061's first key frame: ego at (100, 200) heading +y."""
    return source.sample(source.sample_tokens("scene-0061")[0])


def of_class(sample, name):
    return [e.points for e in sample.ground_truth if e.class_id == CLASS_IDS[name]]


def signed_area(ring):
    x, y = ring[:, 0].astype(np.float64), ring[:, 1].astype(np.float64)
    return 0.5 * np.sum(x[:-1] * y[1:] - x[1:] * y[:-1])


def test_official_splits(source):
    assert source.scene_names("train") == ["scene-0061"]
    assert source.scene_names("val") == ["scene-0103"]
    with pytest.raises(NuScenesError, match=r"no 'test' split \(it has: train, val\)"):
        source.scene_names("test")


def test_sample_tokens_in_order_and_unknown_scene_lists_the_scenes(source):
    assert source.sample_tokens("scene-0061") == [f"sample-scene-0061-{i}" for i in range(3)]
    with pytest.raises(NuScenesError, match="no scene 'scene-9999' \\(scenes: scene-0061, scene-0103\\)"):
        source.sample_tokens("scene-9999")


def test_sample_identity_and_field_types(first, tmp_path):
    assert (first.scene, first.token, first.timestamp_ns) == ("scene-0061", "sample-scene-0061-0", 1532402927647951000)
    assert first.ego_to_world.dtype == np.float64
    np.testing.assert_allclose(first.ego_to_world[:3, 3], [100.0, 200.0, 0.0])
    save_sample(first, tmp_path / "s.npz")  # load_sample checks every field against the Sample contract
    assert load_sample(tmp_path / "s.npz").token == first.token


def test_dividers_in_base_link(first):
    # Ego at (100, 200) heading +y: base_link x = world y - 200, y = 100 - world x. The lane divider's
    # two nodes (y = 150, 260) both lie outside the region: it is still found, and clipped.
    road, lane = of_class(first, "divider")
    np.testing.assert_allclose(road, [[-20, 5], [10, 5], [30, 5]], atol=1e-5)
    np.testing.assert_allclose(lane, [[-30, -2], [30, -2]], atol=1e-5)
    assert road.dtype == np.float64  # a MapElement's points (values rounded to float32, as sample files store them)


def test_divider_follows_the_ego_yaw(dataroot):
    pose = np.eye(4)
    pose[:3, 3] = [100.0, 200.0, 0.0]  # heading +x: base_link x = world x - 100, y = world y - 200
    vectors = NuScenesMapGT(dataroot).ground_truth(LOCATION, pose)
    lane = [e.points for e in vectors if e.class_id == CLASS_IDS["divider"] and np.allclose(e.points[:, 0], 2.0)]
    assert len(lane) == 1
    np.testing.assert_allclose(lane[0], [[2, -15], [2, 15]], atol=1e-5)


def test_ped_crossing_is_closed_and_clockwise(first):
    (ped,) = of_class(first, "ped_crossing")  # the invalid bow-tie crossing is left out
    assert is_closed(ped) and len(ped) == 5
    assert signed_area(ped) == pytest.approx(-4 * 20)
    np.testing.assert_allclose(np.unique(ped[:, 0]), [12, 16], atol=1e-5)
    np.testing.assert_allclose(np.unique(ped[:, 1]), [-10, 10], atol=1e-5)


def test_boundary_clipped_to_the_shrunk_region(first):
    boundaries = of_class(first, "boundary")
    sides = sorted((p for p in boundaries if not is_closed(p)), key=lambda p: p[0, 1])
    # Road x in [88, 112] -> base_link y in [-12, 12]; the clockwise exterior, cut at x = +-29.8.
    np.testing.assert_allclose(sides[0], [[29.8, -12], [-29.8, -12]], atol=1e-5)
    np.testing.assert_allclose(sides[1], [[-29.8, 12], [29.8, 12]], atol=1e-5)
    (hole,) = [p for p in boundaries if is_closed(p)]
    assert signed_area(hole) == pytest.approx(2 * 6)  # counter-clockwise; the lane does not cover it
    np.testing.assert_allclose(np.unique(hole[:, 1]), [-6, -4], atol=1e-5)
    assert len(boundaries) == 3


def test_images_and_intrinsics(dataroot, first):
    assert first.images.shape == (6, 90, 160, 3) and first.images.dtype == np.uint8
    for i, name in enumerate(CAMERA_NAMES):
        np.testing.assert_allclose(first.images[i].reshape(-1, 3).mean(0), camera_color(i), atol=3)
        np.testing.assert_allclose(first.intrinsics[i], intrinsics(name), rtol=1e-6)
    small = NuScenesSource(dataroot, VERSION, image_size=(45, 80)).sample("sample-scene-0061-0")
    assert small.images.shape == (6, 45, 80, 3)
    np.testing.assert_allclose(small.intrinsics[0], np.diag([0.5, 0.5, 1.0]) @ intrinsics("CAM_FRONT"), rtol=1e-6)


def test_cam_to_ego_at_the_lidar_time(first):
    # Cameras fire CAMERA_DELAY_US after the LiDAR, the ego moving forward at SPEED.
    shift = SPEED * CAMERA_DELAY_US * 1e-6
    for i, name in enumerate(CAMERA_NAMES):
        azimuth, translation, _ = CAMERAS[name]
        a = math.radians(azimuth)
        transform = first.cam_to_ego[i]
        np.testing.assert_allclose(transform[:3, 2], [math.cos(a), math.sin(a), 0.0], atol=1e-6)  # optical axis
        np.testing.assert_allclose(transform[:3, 1], [0.0, 0.0, -1.0], atol=1e-6)  # image down
        np.testing.assert_allclose(transform[:3, 3], np.add(translation, [shift, 0.0, 0.0]), atol=1e-5)
    assert first.cam_to_ego.dtype == np.float32


def test_lidar_points_in_base_link(first):
    # LIDAR_TOP: x right, y forward, at (0.94, 0, 1.84); (0, 10, 0) lies 10 m ahead of it.
    np.testing.assert_allclose(first.lidar, [[10.94, 0, 1.84, 7], [0.94, -5, 0.84, 1]], atol=1e-5)
    assert first.lidar.dtype == np.float32


def test_lidar_sweeps_move_into_the_key_frame(dataroot):
    second = "sample-scene-0061-1"
    two = NuScenesSource(dataroot, VERSION, lidar_sweeps=2).sample(second).lidar
    # The sweep is 0.25 s (2.5 m) older, so its point 10.94 m ahead then is 8.44 m ahead now.
    np.testing.assert_allclose(two[2:], [[8.44, 0, 1.84, 3]], atol=1e-5)
    many = NuScenesSource(dataroot, VERSION, lidar_sweeps=10)
    np.testing.assert_allclose(many.sample(second).lidar[3:], [[5.94, 0, 1.84, 7], [-4.06, -5, 0.84, 1]], atol=1e-5)
    assert len(many.sample("sample-scene-0061-0").lidar) == 2  # the scene's first sweep has no prev


def test_missing_tables_name_the_folder(tmp_path):
    with pytest.raises(
        NuScenesError, match=re.escape(f"{tmp_path / VERSION}: not the tables") + ".*missing attribute.json"
    ):
        NuScenesSource(tmp_path, VERSION)


@pytest.mark.parametrize("missing", ["maps/expansion", f"maps/expansion/{LOCATION}.json"])
def test_missing_map_names_the_path(tmp_path, missing):
    root = build_nuscenes(tmp_path).dataroot
    path = root / missing
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    with pytest.raises(NuScenesError, match=re.escape(f"{path}: no such") + ".*map expansion v1.3"):
        NuScenesDataset(NuScenesSource(root, VERSION), "train")


def test_build_dataset_feeds_collate(dataroot):
    data = DataConfig(dataset="nuscenes", version=VERSION, dataroot=str(dataroot))
    train, val = build_dataset(data, "train"), build_dataset(data, "val")
    assert (len(train), len(val)) == (3, 2)
    assert train.source is val.source  # the tables load once
    samples = [train[0], val[0]]
    assert val[0].ground_truth == ()  # nothing mapped around scene-0103
    batch = collate(samples, image_size=(32, 64), grid=BEVGrid((60, 30)), num_points=20)
    assert batch["images"].shape == (2, 6, 3, 32, 64)
    assert batch["targets"][0]["labels"].tolist() == [0, 0, 1, 2, 2, 2]
    assert shapely.box(0, 0, 1, 1).covers(shapely.MultiPoint(batch["targets"][0]["points"].reshape(-1, 2).numpy()))
