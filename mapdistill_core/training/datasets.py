"""The datasets the training loop reads, built from the experiment's data section."""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from mapdistill_core.config import ConfigError, config_from_dict, load_config
from mapdistill_core.data.synthetic.config import SyntheticConfig
from mapdistill_core.data.synthetic.generate import generate_split
from mapdistill_core.data.synthetic_dataset import INDEX_FILE, SyntheticDataset, read_index
from mapdistill_core.training.config import DataConfig


def build_dataset(data: DataConfig, split: str) -> Dataset:
    """The samples of ``split``.

    A synthetic split that is missing from ``data.root``, or has fewer scenes than asked, is
    generated there first (with a progress bar); a folder generated from another world config is
    an error rather than a silent mix.
    """
    if data.dataset != "synthetic":
        raise ConfigError(
            f"data.dataset '{data.dataset}': training on nuScenes needs the nuScenes loader, which is not "
            "part of this release yet; use dataset: synthetic"
        )
    world = load_config(SyntheticConfig, data.world)
    scenes = {"train": data.train_scenes, "val": data.val_scenes, "test": data.test_scenes}[split]
    scenes = scenes or world.scenes.get(split, 0)
    folder = Path(data.root) / split
    if (folder / INDEX_FILE).exists():
        index = read_index(folder)
        if config_from_dict(SyntheticConfig, index["config"], str(folder / INDEX_FILE)) != world:
            raise ConfigError(
                f"{folder}: generated from another world config than {data.world}; delete it or set data.root"
            )
        if index["scenes"] >= scenes:
            return SyntheticDataset(None, split, scenes, root=folder)
    generate_split(world, split, folder, scenes)
    return SyntheticDataset(None, split, scenes, root=folder)
