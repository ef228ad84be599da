"""The datasets the training loop reads, built from the experiment's data section."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

from torch.utils.data import ConcatDataset, Dataset

from mapdistill_core.config import config_from_dict, config_to_dict, load_config
from mapdistill_core.data.drive_folder import DriveFolder
from mapdistill_core.data.synthetic.config import SyntheticConfig
from mapdistill_core.data.synthetic.dataset import INDEX_FILE, SyntheticDataset, read_index
from mapdistill_core.data.synthetic.generate import generate_split, split_labels
from mapdistill_core.errors import ConfigError
from mapdistill_core.training.config import DataConfig


@lru_cache(maxsize=1)
def _nuscenes_source(dataroot: str, version: str, lidar_sweeps: int):
    """One loaded nuScenes folder shared by the splits (its tables take minutes and gigabytes)."""
    from mapdistill_core.data.nuscenes import NuScenesSource

    return NuScenesSource(dataroot, version, lidar_sweeps=lidar_sweeps)


UPPER_BOUND_FOLDER = "unlabeled-with-map"
"""The "unlabeled" drives written with their map, beside the unlabelled ones (``unlabeled_labels``)."""


def build_train_set(data: DataConfig) -> Dataset:
    """What a run trains on: the train split, then either ``data.unlabeled_scenes`` drives of the
    "unlabeled" split (without their map; with it for ``data.unlabeled_labels``, the upper bound) or
    the recorded drives of ``data.unlabeled_dir`` (a drive folder: no map)."""
    train = build_dataset(data, "train")
    if data.unlabeled_dir:
        return ConcatDataset([train, DriveFolder(data.unlabeled_dir)])
    if data.unlabeled_scenes == 0:
        return train
    return ConcatDataset([train, build_dataset(data, "unlabeled", labels=data.unlabeled_labels)])


def build_dataset(
    data: DataConfig,
    split: str,
    world: SyntheticConfig | None = None,
    max_samples: int = 0,
    labels: bool | None = None,
) -> Dataset:
    """The samples of ``split`` ("train", "val", "test" or, synthetic only, "unlabeled").

    nuScenes: the key frames of the official split (mini_train / mini_val for v1.0-mini) at the
    images' own resolution; collate resizes them to the model's.

    Synthetic: the world is ``world`` if given, else the file ``data.world``. A split that is missing
    from ``data.root``, or has fewer scenes than asked, is generated there first (with a progress
    bar); ``max_samples`` > 0 asks for only the scenes that hold the first ``max_samples`` samples.
    A folder generated from another world config is an error rather than a silent mix. The
    "unlabeled" split is read without its map unless ``labels`` (then from its own folder).
    """
    if data.dataset == "nuscenes":
        from mapdistill_core.data.nuscenes import NuScenesDataset

        return NuScenesDataset(_nuscenes_source(data.dataroot, data.version, data.lidar_sweeps), split)
    source = "the world config in the weights" if world is not None else data.world
    world = world if world is not None else load_config(SyntheticConfig, data.world)
    counts = {"train": data.train_scenes, "val": data.val_scenes, "test": data.test_scenes}
    scenes = counts.get(split, data.unlabeled_scenes) or world.scenes.get(split, 0)
    if max_samples > 0:
        scenes = min(scenes, math.ceil(max_samples / world.samples_per_scene))
    labels = split_labels(split) if labels is None else labels
    folder = Path(data.root) / (UPPER_BOUND_FOLDER if labels and split == "unlabeled" else split)
    if (folder / INDEX_FILE).exists():
        index = read_index(folder)
        if config_from_dict(SyntheticConfig, index["config"], str(folder / INDEX_FILE)) != world:
            raise ConfigError(
                f"{folder}: generated from another world config than {source}; delete it or set data.root"
            )
        if index["scenes"] >= scenes:
            return SyntheticDataset(None, split, scenes, root=folder)
    generate_split(world, split, folder, scenes, labels=labels)
    return SyntheticDataset(None, split, scenes, root=folder)


def data_metadata(dataset: Dataset) -> dict:
    """What a checkpoint records of the data it was trained on: the synthetic world config, so that
    ``evaluate`` can rebuild the same world (nuScenes: nothing; its splits are fixed)."""
    if isinstance(dataset, ConcatDataset):
        dataset = dataset.datasets[0]
    if isinstance(dataset, SyntheticDataset):
        return {"world": config_to_dict(dataset.config)}
    return {}
