"""A tiny nuScenes-format dataset on disk that the real devkit loads.

Two scenes at singapore-onenorth: scene-0061 (mini_train) and scene-0103 (mini_val). Each key frame
has six cameras (160 x 90 JPEGs, calibrations like nuScenes' scaled to that size) and LIDAR_TOP; between
key frames every camera and the LiDAR have one non-key sweep, linked by prev / next. The ego drives
straight along its heading at SPEED; cameras fire CAMERA_DELAY_US after the LiDAR.

Map (world frame, metres), around scene-0061's first pose (100, 200) heading +y (yaw 90 deg):
a lane divider along x = 102, a road divider along x = 95, a ped crossing rectangle, an invalid
(bow-tie) ped crossing, a road segment x in [88, 112] with a hole, and a lane x in [88, 96].
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from pyquaternion import Quaternion

from mapdistill_core.data.nuscenes import TABLES
from mapdistill_core.data.sample import CAMERA_NAMES

VERSION = "v1.0-mini"
LOCATION = "singapore-onenorth"
IMAGE_HW = (90, 160)
KEY_FRAME_PERIOD_US = 500_000
CAMERA_DELAY_US = 50_000
SPEED = 10.0

# name, azimuth of the optical axis in base_link (deg), translation, focal length (1600 x 900 pixels).
CAMERAS = {
    "CAM_FRONT": (0.0, (1.70, 0.02, 1.51), 1266.4),
    "CAM_FRONT_RIGHT": (-55.0, (1.55, -0.49, 1.50), 1260.8),
    "CAM_FRONT_LEFT": (55.0, (1.52, 0.49, 1.51), 1272.6),
    "CAM_BACK": (180.0, (0.03, 0.00, 1.58), 809.2),
    "CAM_BACK_LEFT": (110.0, (1.04, 0.48, 1.56), 1256.7),
    "CAM_BACK_RIGHT": (-110.0, (1.05, -0.48, 1.56), 1259.5),
}
SCALE = IMAGE_HW[1] / 1600
LIDAR_TRANSLATION = (0.94, 0.0, 1.84)
LIDAR_YAW_DEG = -90.0
"""LIDAR_TOP: x right, y forward, as in nuScenes."""

KEY_POINTS = np.array([[0.0, 10.0, 0.0, 7.0, 0.0], [5.0, 0.0, -1.0, 1.0, 3.0]], dtype=np.float32)
"""Points (x, y, z, intensity, ring) in the LiDAR frame of every key frame."""
SWEEP_POINTS = np.array([[0.0, 10.0, 0.0, 3.0, 0.0]], dtype=np.float32)
"""Points in the LiDAR frame of every non-key sweep."""

LANE_DIVIDER = [(102.0, 150.0), (102.0, 260.0)]
ROAD_DIVIDER = [(95.0, 180.0), (95.0, 210.0), (95.0, 240.0)]
PED_CROSSING = [(90.0, 212.0), (110.0, 212.0), (110.0, 216.0), (90.0, 216.0)]
BOW_TIE = [(90.0, 180.0), (110.0, 190.0), (110.0, 180.0), (90.0, 190.0)]
ROAD_SEGMENT = [(88.0, 100.0), (112.0, 100.0), (112.0, 300.0), (88.0, 300.0)]
ROAD_HOLE = [(104.0, 190.0), (106.0, 190.0), (106.0, 196.0), (104.0, 196.0)]
LANE = [(88.0, 100.0), (96.0, 100.0), (96.0, 300.0), (88.0, 300.0)]


@dataclass(frozen=True)
class SceneSpec:
    name: str
    log: str
    start: tuple[float, float]
    yaw: float
    frames: int
    t0: int


SCENES = (
    SceneSpec("scene-0061", "n015-2018-07-24-11-22-45+0800", (100.0, 200.0), math.pi / 2, 3, 1532402927647951),
    SceneSpec("scene-0103", "n008-2018-08-01-15-16-36-0400", (300.0, 300.0), 0.0, 2, 1533151603547590),
)


@dataclass(frozen=True)
class NuScenesFixture:
    dataroot: Path
    version: str
    scenes: tuple[SceneSpec, ...]


def ego_xy(scene: SceneSpec, t: int) -> np.ndarray:
    """World (x, y) of the ego at time ``t`` (microseconds)."""
    heading = np.array([math.cos(scene.yaw), math.sin(scene.yaw)])
    return np.array(scene.start) + SPEED * (t - scene.t0) * 1e-6 * heading


def yaw_quaternion(yaw: float) -> list[float]:
    return [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]


def camera_rotation(azimuth_deg: float) -> np.ndarray:
    """Optical frame -> base_link for a level camera looking along ``azimuth_deg``."""
    a = math.radians(azimuth_deg)
    x_axis = [math.sin(a), -math.cos(a), 0.0]
    y_axis = [0.0, 0.0, -1.0]
    z_axis = [math.cos(a), math.sin(a), 0.0]
    return np.array([x_axis, y_axis, z_axis]).T


def intrinsics(name: str) -> np.ndarray:
    f = CAMERAS[name][2] * SCALE
    return np.array([[f, 0.0, 80.2], [0.0, f, 45.4], [0.0, 0.0, 1.0]])


def camera_color(index: int) -> tuple[int, int, int]:
    """RGB fill of camera ``index``'s images."""
    return 200, 30 * index, 60


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


class _MapBuilder:
    def __init__(self):
        self.layers = {name: [] for name in ("polygon", "line", "node")}

    def _nodes(self, points) -> list[str]:
        tokens = []
        for x, y in points:
            tokens.append(f"node-{len(self.layers['node'])}")
            self.layers["node"].append({"token": tokens[-1], "x": x, "y": y})
        return tokens

    def line(self, points) -> str:
        token = f"line-{len(self.layers['line'])}"
        self.layers["line"].append({"token": token, "node_tokens": self._nodes(points)})
        return token

    def polygon(self, exterior, holes=()) -> str:
        token = f"polygon-{len(self.layers['polygon'])}"
        self.layers["polygon"].append(
            {
                "token": token,
                "exterior_node_tokens": self._nodes(exterior),
                "holes": [{"node_tokens": self._nodes(h)} for h in holes],
            }
        )
        return token


def map_expansion() -> dict:
    """The map expansion JSON (v1.3) of LOCATION."""
    m = _MapBuilder()
    road = m.polygon(ROAD_SEGMENT, [ROAD_HOLE])
    drivable = {"token": "drivable-0", "polygon_tokens": [m.polygon(ROAD_SEGMENT)]}
    road_segment = {"token": "road-0", "polygon_token": road, "is_intersection": False, "drivable_area_token": ""}
    lane = {
        "token": "lane-0",
        "polygon_token": m.polygon(LANE),
        "lane_type": "CAR",
        "from_edge_line_token": "",
        "to_edge_line_token": "",
        "left_lane_divider_segments": [],
        "right_lane_divider_segments": [],
    }
    peds = [
        {"token": f"ped-{i}", "polygon_token": m.polygon(p), "road_segment_token": "road-0"}
        for i, p in enumerate((PED_CROSSING, BOW_TIE))
    ]
    lane_divider = {"token": "lane-divider-0", "line_token": m.line(LANE_DIVIDER), "lane_divider_segments": []}
    road_divider = {"token": "road-divider-0", "line_token": m.line(ROAD_DIVIDER), "road_segment_token": "road-0"}
    return {
        "version": "1.3",
        "canvas_edge": [1000.0, 1000.0],
        **m.layers,
        "drivable_area": [drivable],
        "road_segment": [road_segment],
        "road_block": [],
        "lane": [lane],
        "ped_crossing": peds,
        "walkway": [],
        "stop_line": [],
        "carpark_area": [],
        "road_divider": [road_divider],
        "lane_divider": [lane_divider],
        "traffic_light": [],
        "arcline_path_3": {},
        "connectivity": {},
        "lane_connector": [],
    }


class _TableBuilder:
    def __init__(self, root: Path):
        self.root = root
        self.tables = {name: [] for name in TABLES}
        self.tables["category"].append({"token": "category-0", "name": "vehicle.car", "description": "cars"})
        self.tables["visibility"].append({"token": "1", "level": "v0-40", "description": "visibility 0-40%"})
        for channel in (*CAMERA_NAMES, "LIDAR_TOP"):
            modality = "lidar" if channel == "LIDAR_TOP" else "camera"
            self.tables["sensor"].append({"token": f"sensor-{channel}", "channel": channel, "modality": modality})

    def calibrations(self, scene: SceneSpec) -> dict[str, str]:
        tokens = {}
        for name, (azimuth, translation, _) in CAMERAS.items():
            rotation = Quaternion(matrix=camera_rotation(azimuth)).elements.tolist()
            tokens[name] = self._calibration(scene, name, translation, rotation, intrinsics(name).tolist())
        rotation = yaw_quaternion(math.radians(LIDAR_YAW_DEG))
        tokens["LIDAR_TOP"] = self._calibration(scene, "LIDAR_TOP", LIDAR_TRANSLATION, rotation, [])
        return tokens

    def _calibration(self, scene, channel, translation, rotation, k) -> str:
        token = f"calib-{scene.name}-{channel}"
        self.tables["calibrated_sensor"].append(
            {
                "token": token,
                "sensor_token": f"sensor-{channel}",
                "translation": list(translation),
                "rotation": rotation,
                "camera_intrinsic": k,
            }
        )
        return token

    def sample_data(self, scene, channel, calibration, t, sample_token, key) -> dict:
        token = f"sd-{scene.name}-{channel}-{t}"
        x, y = ego_xy(scene, t)
        self.tables["ego_pose"].append(
            {"token": token, "timestamp": t, "rotation": yaw_quaternion(scene.yaw), "translation": [x, y, 0.0]}
        )
        folder = "samples" if key else "sweeps"
        if channel == "LIDAR_TOP":
            filename = f"{folder}/{channel}/{scene.log}__{channel}__{t}.pcd.bin"
            (KEY_POINTS if key else SWEEP_POINTS).tofile(self.path(filename))
            height = width = 0
        else:
            filename = f"{folder}/{channel}/{scene.log}__{channel}__{t}.jpg"
            bgr = np.full((*IMAGE_HW, 3), camera_color(CAMERA_NAMES.index(channel))[::-1], dtype=np.uint8)
            self.path(filename).write_bytes(cv2.imencode(".jpg", bgr)[1].tobytes())
            height, width = IMAGE_HW
        record = {
            "token": token,
            "sample_token": sample_token,
            "ego_pose_token": token,
            "calibrated_sensor_token": calibration,
            "timestamp": t,
            "fileformat": "pcd" if channel == "LIDAR_TOP" else "jpg",
            "is_key_frame": key,
            "height": height,
            "width": width,
            "filename": filename,
            "prev": "",
            "next": "",
        }
        self.tables["sample_data"].append(record)
        return record

    def path(self, name: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def scene(self, scene: SceneSpec) -> None:
        log_token = f"log-{scene.name}"
        self.tables["log"].append(
            {
                "token": log_token,
                "logfile": scene.log,
                "vehicle": scene.log.split("-")[0],
                "date_captured": "2018-07-24",
                "location": LOCATION,
            }
        )
        calibrations = self.calibrations(scene)
        samples = [f"sample-{scene.name}-{i}" for i in range(scene.frames)]
        for i, token in enumerate(samples):
            self.tables["sample"].append(
                {
                    "token": token,
                    "timestamp": scene.t0 + i * KEY_FRAME_PERIOD_US,
                    "prev": samples[i - 1] if i > 0 else "",
                    "next": samples[i + 1] if i + 1 < len(samples) else "",
                    "scene_token": f"scene-token-{scene.name}",
                }
            )
        for channel, calibration in calibrations.items():
            delay = 0 if channel == "LIDAR_TOP" else CAMERA_DELAY_US
            chain = []
            for i, token in enumerate(samples):
                t = scene.t0 + i * KEY_FRAME_PERIOD_US + delay
                if i > 0:
                    sweep_t = t - KEY_FRAME_PERIOD_US // 2
                    chain.append(self.sample_data(scene, channel, calibration, sweep_t, token, False))
                chain.append(self.sample_data(scene, channel, calibration, t, token, True))
            for before, after in itertools.pairwise(chain):
                before["next"], after["prev"] = after["token"], before["token"]
        self.tables["scene"].append(
            {
                "token": f"scene-token-{scene.name}",
                "log_token": log_token,
                "nbr_samples": scene.frames,
                "first_sample_token": samples[0],
                "last_sample_token": samples[-1],
                "name": scene.name,
                "description": "straight road, ped crossing",
            }
        )


def build_nuscenes(root: Path) -> NuScenesFixture:
    """Write the dataset into ``root`` (the dataroot) and describe it."""
    tables = _TableBuilder(root)
    for scene in SCENES:
        tables.scene(scene)
    mask = "maps/53992ee3023e5494b90c316c183be829.png"
    cv2.imwrite(str(tables.path(mask)), np.zeros((10, 10), dtype=np.uint8))
    tables.tables["map"].append(
        {
            "token": "map-0",
            "log_tokens": [log["token"] for log in tables.tables["log"]],
            "category": "semantic_prior",
            "filename": mask,
        }
    )
    for name, records in tables.tables.items():
        _write_json(root / VERSION / f"{name}.json", records)
    _write_json(root / "maps" / "expansion" / f"{LOCATION}.json", map_expansion())
    return NuScenesFixture(root, VERSION, SCENES)
