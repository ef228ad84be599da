"""nuScenes through the official devkit: splits, scenes, and one Sample per key frame.

Frames: nuScenes' ego frame is base_link (x forward, y left, z up) and its camera frames are optical
(z forward, x right, y down). A Sample is expressed in base_link at the LIDAR_TOP key-frame time:
each camera's extrinsics, and the points of earlier LiDAR sweeps, go through the world frame from
the ego pose at their own timestamp.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from nuscenes.nuscenes import NuScenes
from nuscenes.utils.splits import create_splits_scenes
from pyquaternion import Quaternion
from torch.utils.data import Dataset

from mapdistill_core.data.batch import resize_camera
from mapdistill_core.data.nuscenes_map import NuScenesMapGT
from mapdistill_core.data.sample import CAMERA_NAMES, Sample
from mapdistill_core.errors import NuScenesError

SPLITS: dict[str, dict[str, str]] = {
    "v1.0-mini": {"train": "mini_train", "val": "mini_val"},
    "v1.0-trainval": {"train": "train", "val": "val"},
    "v1.0-test": {"test": "test"},
}
"""Per version, our split names -> the devkit's official split of scene names."""

TABLES: tuple[str, ...] = (
    "attribute",
    "calibrated_sensor",
    "category",
    "ego_pose",
    "instance",
    "log",
    "map",
    "sample",
    "sample_annotation",
    "sample_data",
    "scene",
    "sensor",
    "visibility",
)
LIDAR = "LIDAR_TOP"
POINT_FIELDS = 5
"""A .pcd.bin point is float32 x, y, z, intensity, ring."""


def record_transform(record: dict) -> np.ndarray:
    """float64 [4, 4] of a calibrated_sensor or ego_pose record (translation [3], rotation quaternion
    w, x, y, z): maps the record's frame into its parent (sensor -> ego, ego -> world)."""
    transform = np.eye(4)
    transform[:3, :3] = Quaternion(record["rotation"]).rotation_matrix
    transform[:3, 3] = record["translation"]
    return transform


class NuScenesSource:
    """A nuScenes folder read with the devkit.

    Args:
        dataroot: the folder holding ``<version>/``, ``samples/``, ``sweeps/`` and ``maps/``.
        version: "v1.0-mini", "v1.0-trainval" or "v1.0-test".
        image_size: (H, W) to resize the images to (intrinsics scaled to match); None keeps them.
        lidar_sweeps: LiDAR sweeps per sample: the key frame and up to ``lidar_sweeps - 1`` before it.

    Attributes:
        nusc: the devkit's NuScenes.
        map_gt: the map ground truth of the locations.
    """

    def __init__(
        self,
        dataroot: str | Path,
        version: str,
        image_size: tuple[int, int] | None = None,
        lidar_sweeps: int = 1,
    ):
        if version not in SPLITS:
            raise NuScenesError(f"unknown nuScenes version '{version}' (known: {', '.join(SPLITS)})")
        if lidar_sweeps < 1:
            raise ValueError(f"lidar_sweeps must be >= 1, got {lidar_sweeps}")
        self.dataroot, self.version = Path(dataroot), version
        self.image_size, self.lidar_sweeps = image_size, lidar_sweeps
        tables = self.dataroot / version
        missing = [name for name in TABLES if not (tables / f"{name}.json").is_file()]
        if missing:
            raise NuScenesError(
                f"{tables}: not the tables of nuScenes {version} (missing {', '.join(m + '.json' for m in missing)}); "
                "check data.dataroot and data.version"
            )
        try:
            self.nusc = NuScenes(version=version, dataroot=str(self.dataroot), verbose=False)
        except AssertionError as e:
            raise NuScenesError(f"{tables}: the nuScenes devkit could not load it ({e})") from None
        self.map_gt = NuScenesMapGT(self.dataroot)
        self._scenes = {scene["name"]: scene for scene in self.nusc.scene}

    def scene_names(self, split: str) -> list[str]:
        """Scenes of ``split`` ("train", "val" or "test") present in this folder, in the split's order."""
        splits = SPLITS[self.version]
        if split not in splits:
            raise NuScenesError(f"nuScenes {self.version} has no '{split}' split (it has: {', '.join(splits)})")
        return [name for name in create_splits_scenes()[splits[split]] if name in self._scenes]

    def scene(self, name: str) -> dict:
        """The scene record named ``name``."""
        if name not in self._scenes:
            raise NuScenesError(
                f"{self.dataroot / self.version}: no scene '{name}' (scenes: {', '.join(sorted(self._scenes))})"
            )
        return self._scenes[name]

    def location(self, scene_name: str) -> str:
        """The map location of a scene, e.g. "singapore-onenorth"."""
        return self.nusc.get("log", self.scene(scene_name)["log_token"])["location"]

    def sample_tokens(self, scene_name: str) -> list[str]:
        """The scene's key-frame sample tokens, in time order."""
        tokens, token = [], self.scene(scene_name)["first_sample_token"]
        while token:
            tokens.append(token)
            token = self.nusc.get("sample", token)["next"]
        return tokens

    def ego_to_world(self, sample_data: dict) -> np.ndarray:
        """float64 [4, 4] pose of base_link at a sample_data record's timestamp."""
        return record_transform(self.nusc.get("ego_pose", sample_data["ego_pose_token"]))

    def sensor_to_ego(self, sample_data: dict) -> np.ndarray:
        """float64 [4, 4] from a sample_data record's sensor frame to base_link."""
        return record_transform(self.nusc.get("calibrated_sensor", sample_data["calibrated_sensor_token"]))

    def sample(self, token: str) -> Sample:
        """The Sample of key frame ``token``, in base_link at the LIDAR_TOP key-frame time."""
        try:
            record = self.nusc.get("sample", token)
        except KeyError:
            raise NuScenesError(f"{self.dataroot / self.version}: no sample '{token}'") from None
        scene = self.nusc.get("scene", record["scene_token"])
        where = f"scene {scene['name']}, sample {token}"
        missing = [name for name in (*CAMERA_NAMES, LIDAR) if name not in record["data"]]
        if missing:
            raise NuScenesError(f"{self.dataroot / self.version}: {where} has no key frame of {', '.join(missing)}")
        lidar = self.nusc.get("sample_data", record["data"][LIDAR])
        ego_to_world = self.ego_to_world(lidar)
        world_to_ego = np.linalg.inv(ego_to_world)
        images, intrinsics, cam_to_ego = [], [], []
        for name in CAMERA_NAMES:
            camera = self.nusc.get("sample_data", record["data"][name])
            image, k = self.image(camera, f"{where}, {name}")
            images.append(image)
            intrinsics.append(k)
            cam_to_ego.append(world_to_ego @ self.ego_to_world(camera) @ self.sensor_to_ego(camera))
        location = self.nusc.get("log", scene["log_token"])["location"]
        return Sample(
            images=np.stack(images),
            intrinsics=np.stack(intrinsics).astype(np.float32),
            cam_to_ego=np.stack(cam_to_ego).astype(np.float32),
            lidar=self.points(lidar, world_to_ego, where),
            ego_to_world=ego_to_world,
            ground_truth=self.map_gt.ground_truth(location, ego_to_world),
            timestamp_ns=int(lidar["timestamp"]) * 1000,
            scene=scene["name"],
            token=token,
        )

    def image(self, camera: dict, where: str) -> tuple[np.ndarray, np.ndarray]:
        """A camera sample_data's image, uint8 [H, W, 3] RGB, and its intrinsics float64 [3, 3], both
        resized to ``image_size`` when one is set."""
        path = self.dataroot / camera["filename"]
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise NuScenesError(f"{path}: missing or not an image ({where})")
        k = np.asarray(
            self.nusc.get("calibrated_sensor", camera["calibrated_sensor_token"])["camera_intrinsic"], dtype=np.float64
        )
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if self.image_size is None:
            return rgb, k
        return resize_camera(rgb, k, self.image_size)

    def points(self, lidar: dict, world_to_ego: np.ndarray, where: str) -> np.ndarray:
        """float32 [P, 4] x, y, z, intensity in the base_link given by ``world_to_ego``: the sweep of
        ``lidar`` (a LIDAR_TOP sample_data) and up to ``lidar_sweeps - 1`` sweeps before it."""
        clouds = []
        for _ in range(self.lidar_sweeps):
            path = self.dataroot / lidar["filename"]
            try:
                raw = np.fromfile(path, dtype=np.float32)
            except FileNotFoundError:
                raise NuScenesError(f"{path}: no such file ({where})") from None
            if raw.size % POINT_FIELDS:
                raise NuScenesError(f"{path}: {raw.size} floats, not points of {POINT_FIELDS} ({where})")
            points = raw.reshape(-1, POINT_FIELDS).astype(np.float64)
            to_ego = world_to_ego @ self.ego_to_world(lidar) @ self.sensor_to_ego(lidar)
            clouds.append(np.c_[points[:, :3] @ to_ego[:3, :3].T + to_ego[:3, 3], points[:, 3]])
            if not lidar["prev"]:
                break
            lidar = self.nusc.get("sample_data", lidar["prev"])
        return np.concatenate(clouds).astype(np.float32)


class NuScenesDataset(Dataset):
    """The key frames of one split, scene by scene in the split's order, as Samples.

    The maps of the split's locations are loaded here, so that DataLoader workers share them.

    Args:
        source: an opened nuScenes folder.
        split: "train", "val" or "test" (which ones a version has: SPLITS).
    """

    def __init__(self, source: NuScenesSource, split: str):
        self.source, self.split = source, split
        scenes = source.scene_names(split)
        if not scenes:
            raise NuScenesError(f"{source.dataroot / source.version}: holds none of the scenes of the '{split}' split")
        self.tokens = [token for scene in scenes for token in source.sample_tokens(scene)]
        for location in sorted({source.location(scene) for scene in scenes}):
            source.map_gt.load(location)

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, i: int) -> Sample:
        return self.source.sample(self.tokens[i])
