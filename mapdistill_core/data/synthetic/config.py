"""Configuration of the synthetic world (config/synthetic.yaml) and its split seed ranges."""

from __future__ import annotations

from dataclasses import dataclass, field

from mapdistill_core.config import check_ranges, number

SPLIT_SEED_BASE = {"train": 0, "val": 1_000_000, "test": 2_000_000, "unlabeled": 3_000_000}
"""Scene i of a split has seed SPLIT_SEED_BASE[split] + i: the splits never share a scene. The
"unlabeled" split's drives are written without their map (``generate_split``), for training a
student from the teacher alone."""

MAX_SCENES_PER_SPLIT = 1_000_000
CONDITIONS = ("day", "dusk", "night")
"""The lighting conditions a scene is drawn from (weighted by ``SyntheticConfig.conditions``)."""


def scene_seed(split: str, index: int) -> int:
    """The seed of scene ``index`` of ``split``; raises ValueError outside the split's range."""
    if split not in SPLIT_SEED_BASE:
        raise ValueError(f"unknown split '{split}' (known: {', '.join(SPLIT_SEED_BASE)})")
    if not 0 <= index < MAX_SCENES_PER_SPLIT:
        raise ValueError(f"scene index {index} is outside 0..{MAX_SCENES_PER_SPLIT - 1}")
    return SPLIT_SEED_BASE[split] + index


def scene_name(split: str, index: int) -> str:
    """The name of scene ``index`` of ``split`` (also its folder name on disk)."""
    return f"synthetic-{split}-{index:05d}"


@dataclass(frozen=True)
class SyntheticConfig:
    """The synthetic world. Every field can be set in config/synthetic.yaml.

    Attributes:
        image_height, image_width: camera resolution (pixels).
        samples_per_scene: samples in one scene (nuScenes: about 40).
        sample_rate_hz: samples per second (nuScenes key frames: 2).
        scenes: default number of scenes per split.
        conditions: relative frequency of day / dusk / night scenes.
        terrain_relief: amplitude scale of the terrain swells (0: planar grades only).
        hilly_fraction: share of scenes with the full relief (the others get a tenth).
        grid_size: the road grid has grid_size x grid_size intersections.
        crossing_probability: chance of a zebra crossing at each intersection approach.
        vehicle_density: scale of parked and moving vehicle counts.
        curb_height_range: curb heights (m) are drawn from this range per scene.
        lidar_beams, lidar_azimuth_steps: LiDAR scan pattern.
        lidar_elevation_deg: lowest and highest beam elevation (deg).
        lidar_range_m: maximum range; lidar_range_noise_m: range noise sigma;
        lidar_dropout: share of returns lost at random.
        lidar_sweeps: sweeps merged into each sample's point cloud, the sample's own and the ones
            before it at lidar_sweep_rate_hz (nuScenes models use 10 sweeps at 20 Hz), each moved
            into the sample's base_link.
        raster_resolution_m, raster_half_size_m: ground material raster around the ego.
    """

    image_height: int = field(default=128, metadata=number(16))
    image_width: int = field(default=352, metadata=number(16))
    samples_per_scene: int = field(default=40, metadata=number(1))
    sample_rate_hz: float = field(default=2.0, metadata=number(0, low_open=True))
    scenes: dict[str, int] = field(default_factory=lambda: {"train": 120, "val": 12, "test": 12}, metadata=number(0))
    conditions: dict[str, float] = field(
        default_factory=lambda: {"day": 0.5, "dusk": 0.2, "night": 0.3}, metadata=number(0)
    )
    terrain_relief: float = field(default=1.0, metadata=number(0))
    hilly_fraction: float = field(default=0.7, metadata=number(0, 1))
    grid_size: int = field(default=4, metadata=number(3))
    crossing_probability: float = field(default=0.7, metadata=number(0, 1))
    vehicle_density: float = field(default=1.0, metadata=number(0))
    curb_height_range: tuple[float, float] = field(default=(0.10, 0.20), metadata=number(0))
    lidar_beams: int = field(default=32, metadata=number(1))
    lidar_azimuth_steps: int = field(default=720, metadata=number(1))
    lidar_elevation_deg: tuple[float, float] = field(default=(-30.0, 10.0), metadata=number(-90, 90))
    lidar_range_m: float = field(default=70.0, metadata=number(0, low_open=True))
    lidar_range_noise_m: float = field(default=0.02, metadata=number(0))
    lidar_dropout: float = field(default=0.05, metadata=number(0, 1, high_open=True))
    lidar_sweeps: int = field(default=1, metadata=number(1))
    lidar_sweep_rate_hz: float = field(default=20.0, metadata=number(0, low_open=True))
    raster_resolution_m: float = field(default=0.08, metadata=number(0, low_open=True))
    raster_half_size_m: float = field(default=60.0, metadata=number(0, low_open=True))

    def __post_init__(self) -> None:
        check_ranges(self, "synthetic")
        unknown = set(self.conditions) - set(CONDITIONS)
        if unknown or not self.conditions or sum(self.conditions.values()) <= 0:
            raise ValueError("conditions must weight some of day, dusk, night with non-negative numbers")
        unknown_splits = set(self.scenes) - set(SPLIT_SEED_BASE)
        if unknown_splits:
            raise ValueError(f"scenes: unknown split '{sorted(unknown_splits)[0]}'")
