"""``mapdistill synthetic2bag``: drives of the synthetic world as rosbag2, with the nuScenes topics.

Images are JPEG-encoded (or lossless PNG) with OpenCV; the LiDAR points go out in the LIDAR_TOP frame, which sits at
LIDAR_ORIGIN in base_link with the ego's orientation; all cameras of a sample share its stamp. The world stamps
scene i of a split i x 100 s apart; in a bag each scene follows the previous one a sample period after its last
sample (``bag_samples``), so that playing a bag of several drives has no minute-long silences.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from mapdistill_core.data.sample import CAMERA_NAMES, Sample
from mapdistill_core.data.synthetic.config import SyntheticConfig
from mapdistill_core.data.synthetic.sensors import LIDAR_ORIGIN
from mapdistill_core.data.synthetic.world import SyntheticScene
from mapdistill_ros.bags.bag_writer import CameraFrame, DriveFrame, MapBagWriter
from mapdistill_ros.topics import LIDAR_FRAME

LIDAR_TO_EGO = np.eye(4)
LIDAR_TO_EGO[:3, 3] = LIDAR_ORIGIN


def encode_image(image: np.ndarray, image_format: str = "jpeg", quality: int = 90) -> bytes:
    """RGB uint8 [H, W, 3] -> JPEG (``quality``) or lossless PNG bytes."""
    extension, options = {"jpeg": (".jpg", [cv2.IMWRITE_JPEG_QUALITY, quality]), "png": (".png", [])}[image_format]
    ok, data = cv2.imencode(extension, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), options)
    if not ok:
        raise ValueError(f"{image_format} encoding failed")
    return data.tobytes()


def sample_frame(sample: Sample, image_format: str = "jpeg", quality: int = 90) -> DriveFrame:
    """The bag content of one synthetic Sample."""
    height, width = sample.images.shape[1:3]
    cameras = [
        CameraFrame(
            name, sample.timestamp_ns, encode_image(image, image_format, quality), image_format, k, width, height
        )
        for name, image, k in zip(CAMERA_NAMES, sample.images, sample.intrinsics, strict=True)
    ]
    lidar = sample.lidar.copy()
    lidar[:, :3] -= LIDAR_ORIGIN.astype(np.float32)
    return DriveFrame(
        stamp_ns=sample.timestamp_ns,
        cameras=cameras,
        lidar=(sample.timestamp_ns, lidar),
        poses=[(sample.timestamp_ns, sample.ego_to_world)],
        ground_truth=list(sample.ground_truth),
    )


def bag_samples(config: SyntheticConfig, split: str, scenes: int, samples: int = 0) -> Iterator[list[Sample]]:
    """Per scene, its samples as a bag holds them: ``samples`` per scene (0 = the world's), scene i > 0
    re-stamped to start one sample period after scene i - 1's last sample."""
    if samples:
        config = dataclasses.replace(config, samples_per_scene=samples)
    period_ns = round(1e9 / config.sample_rate_hz)
    next_ns = None
    for index in range(scenes):
        scene = SyntheticScene(config, split, index)
        drive = [scene.sample(i) for i in range(len(scene))]
        shift = 0 if next_ns is None else next_ns - drive[0].timestamp_ns
        drive = [dataclasses.replace(s, timestamp_ns=s.timestamp_ns + shift) for s in drive]
        next_ns = drive[-1].timestamp_ns + period_ns
        yield drive


def write_synthetic_bag(
    config: SyntheticConfig,
    split: str,
    scenes: int,
    out: str | Path,
    storage: str = "mcap",
    samples: int = 0,
    image_format: str = "jpeg",
    quality: int = 90,
) -> dict[str, int]:
    """Render ``scenes`` scenes of ``split`` (``samples`` samples each; 0 = the world's) into a bag,
    images as ``image_format`` ("jpeg" at ``quality``, or lossless "png").

    Returns the message count per topic.
    """
    total = scenes * (samples or config.samples_per_scene)
    with MapBagWriter(out, storage) as writer, tqdm(total=total, desc="synthetic2bag", unit="sample") as bar:
        for drive in bag_samples(config, split, scenes, samples):
            sensors = dict(zip(CAMERA_NAMES, drive[0].cam_to_ego, strict=True))
            writer.write_static(drive[0].timestamp_ns, {**sensors, LIDAR_FRAME: LIDAR_TO_EGO})
            for sample in drive:
                writer.write_frame(sample_frame(sample, image_format, quality))
                bar.update()
        return dict(writer.counts)
