"""Tiny configs and samples shared by the model and training tests."""

from functools import cache
from pathlib import Path

from mapdistill_core.data.synthetic.config import SyntheticConfig
from mapdistill_core.data.synthetic.world import SyntheticScene
from mapdistill_core.models.config import BackboneConfig, DecoderConfig, LidarConfig, ModelConfig

WORLD = SyntheticConfig(image_height=64, image_width=176, lidar_azimuth_steps=256, samples_per_scene=4)
WORLD_YAML = "image_height: 64\nimage_width: 176\nlidar_azimuth_steps: 256\nsamples_per_scene: 4\n"

STUDENT = ModelConfig(
    kind="student",
    image_size=(64, 176),
    backbone=BackboneConfig(depths=(1, 1, 1, 1), width=16),
    neck_channels=32,
    bev_size=(40, 20),
    bev_channels=32,
    decoder=DecoderConfig(num_queries=12, layers=2, heads=4, ffn_channels=64),
)
TEACHER = ModelConfig(
    kind="teacher",
    image_size=(64, 176),
    backbone=BackboneConfig(block="bottleneck", depths=(1, 1, 1, 1), width=8),
    neck_channels=32,
    view_transform="lss",
    bev_size=(40, 20),
    bev_channels=32,
    lidar=LidarConfig(channels=32),
    decoder=DecoderConfig(num_queries=12, layers=2, heads=4, ffn_channels=64),
)


@cache
def samples(count: int = 2) -> list:
    scene = SyntheticScene(WORLD, "train", 0)
    return [scene.sample(i) for i in range(count)]


def experiment_yaml(
    tmp: Path, steps_per_epoch_samples: int = 8, epochs: int = 2, val_every: int = 0, checkpoint_every: int = 1
) -> Path:
    """A tiny student experiment (world, data folder and config files under ``tmp``)."""
    (tmp / "world.yaml").write_text(WORLD_YAML)
    path = tmp / "tiny.yaml"
    path.write_text(
        f"""
model:
  kind: student
  image_size: [64, 176]
  backbone: {{block: basic, depths: [1, 1, 1, 1], width: 16}}
  neck_channels: 32
  bev_size: [40, 20]
  bev_channels: 32
  decoder: {{num_queries: 12, num_points: 20, layers: 2, heads: 4, ffn_channels: 64}}
data:
  world: {tmp / "world.yaml"}
  root: {tmp / "data"}
  train_scenes: {steps_per_epoch_samples // 4}
  val_scenes: 1
train: {{epochs: {epochs}, batch_size: 2, warmup_steps: 2, val_every: {val_every}, lr: 0.001,
        checkpoint_every: {checkpoint_every}}}
"""
    )
    return path
