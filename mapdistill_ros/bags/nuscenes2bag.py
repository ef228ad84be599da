"""``mapdistill nuscenes2bag``: nuScenes scenes as rosbag2, read through the devkit.

Per scene: /tf_static (base_link -> the six cameras and LIDAR_TOP, from calibrated_sensor), then in
time order every camera image as its original JPEG bytes with its CameraInfo, every LIDAR_TOP sweep
in its own frame, /tf map -> base_link at each of those sensor times (ego_pose), and the ground
truth (MapTR's vectorized local map, see mapdistill_core.data.nuscenes_map) at each key frame,
stamped with the key frame's LIDAR_TOP time. Key frames only by default; with ``sweeps`` also every
intermediate camera and LiDAR sweep.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from mapdistill_core.data.nuscenes import LIDAR, POINT_FIELDS, NuScenesSource
from mapdistill_core.data.sample import CAMERA_NAMES
from mapdistill_core.errors import NuScenesError
from mapdistill_ros.bags.bag_writer import CameraFrame, DriveFrame, MapBagWriter

SENSORS = (*CAMERA_NAMES, LIDAR)


class SceneConverter:
    """Turns the sample_data records of one nuScenes scene into DriveFrames."""

    def __init__(self, source: NuScenesSource, scene_name: str, sweeps: bool):
        self.source, self.nusc = source, source.nusc
        self.scene = source.scene(scene_name)
        self.location = source.location(scene_name)
        self.sweeps = sweeps
        first = self.nusc.get("sample", self.scene["first_sample_token"])
        missing = [name for name in SENSORS if name not in first["data"]]
        if missing:
            raise NuScenesError(f"scene {scene_name}: its first sample has no {', '.join(missing)}")
        self.first = {name: self.nusc.get("sample_data", first["data"][name]) for name in SENSORS}

    def static_sensors(self) -> dict[str, np.ndarray]:
        """Sensor frame id -> [4, 4] sensor -> base_link (the calibration of the scene's first sample)."""
        return {name: self.source.sensor_to_ego(record) for name, record in self.first.items()}

    def records(self) -> list[dict]:
        """The scene's sample_data records to write, every sensor, sorted by time."""
        records = []
        for record in self.first.values():
            while record and self.nusc.get("sample", record["sample_token"])["scene_token"] == self.scene["token"]:
                if self.sweeps or record["is_key_frame"]:
                    records.append(record)
                record = self.nusc.get("sample_data", record["next"]) if record["next"] else None
        return sorted(records, key=lambda r: r["timestamp"])

    def frame(self, record: dict) -> DriveFrame:
        """The DriveFrame of one sample_data record (with the ground truth if it is a LiDAR key frame)."""
        stamp = int(record["timestamp"]) * 1000
        name = record["channel"]
        path = self.source.dataroot / record["filename"]
        pose = self.source.ego_to_world(record)
        if name == LIDAR:
            raw = self._read(path, record, np.float32)
            if raw.size % POINT_FIELDS:
                raise NuScenesError(f"{path}: {raw.size} floats, not points of {POINT_FIELDS}")
            lidar = (stamp, raw.reshape(-1, POINT_FIELDS)[:, :4])
            ground_truth = None
            if record["is_key_frame"]:
                ground_truth = self.source.map_gt.ground_truth(self.location, pose)
            return DriveFrame(stamp, lidar=lidar, poses=[(stamp, pose)], ground_truth=ground_truth)
        calibration = self.nusc.get("calibrated_sensor", record["calibrated_sensor_token"])
        camera = CameraFrame(
            name,
            stamp,
            self._read(path, record, np.uint8).tobytes(),
            "jpeg",
            np.asarray(calibration["camera_intrinsic"], dtype=np.float64),
            int(record["width"]),
            int(record["height"]),
        )
        return DriveFrame(stamp, cameras=[camera], poses=[(stamp, pose)])

    def _read(self, path: Path, record: dict, dtype) -> np.ndarray:
        try:
            return np.fromfile(path, dtype=dtype)
        except FileNotFoundError:
            raise NuScenesError(f"{path}: no such file (scene {self.scene['name']}, {record['channel']})") from None


def write_nuscenes_bag(
    dataroot: str | Path,
    version: str,
    scenes: list[str],
    out: str | Path,
    storage: str = "mcap",
    sweeps: bool = False,
) -> dict[str, int]:
    """Write ``scenes`` of the nuScenes folder into one bag; returns the message count per topic."""
    source = NuScenesSource(dataroot, version)
    converters = [SceneConverter(source, name, sweeps) for name in scenes]
    for converter in converters:
        source.map_gt.load(converter.location)
    plan = [(converter, converter.records()) for converter in converters]
    total = sum(len(records) for _, records in plan)
    with MapBagWriter(out, storage) as writer, tqdm(total=total, desc="nuscenes2bag", unit="msg") as bar:
        for converter, records in plan:
            writer.write_static(int(records[0]["timestamp"]) * 1000, converter.static_sensors())
            for record in records:
                writer.write_frame(converter.frame(record))
                bar.update()
        return dict(writer.counts)
