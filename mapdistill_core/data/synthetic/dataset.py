"""A torch Dataset of synthetic Samples: read from a folder written by ``mapdistill generate``, or
rendered on the fly from the config when no folder is given."""

from __future__ import annotations

import json
from pathlib import Path

from torch.utils.data import Dataset

from mapdistill_core.config import config_from_dict
from mapdistill_core.data.sample import Sample, load_sample, without_labels
from mapdistill_core.data.synthetic.config import SyntheticConfig, scene_name
from mapdistill_core.data.synthetic.world import SyntheticScene
from mapdistill_core.errors import SampleFileError

INDEX_FILE = "index.json"


def sample_path(root: Path, scene: str, index: int) -> Path:
    """Where ``mapdistill generate`` writes sample ``index`` of ``scene``."""
    return root / scene / f"{index:03d}.npz"


class SyntheticDataset(Dataset):
    """Samples of one split of the synthetic world, scene-major.

    Args:
        config: the world's config (ignored when ``root`` is given: the folder's own is used).
        split: "train", "val" or "test".
        scenes: number of scenes (default: ``config.scenes[split]``, or all in ``root``).
        root: a folder written by ``mapdistill generate``; None renders samples on the fly
            (keeping the last scene built, so reading in order is cheap), without their map for
            the "unlabeled" split.
    """

    def __init__(
        self, config: SyntheticConfig | None, split: str, scenes: int | None = None, root: str | Path | None = None
    ):
        self.split = split
        self.root = Path(root) if root is not None else None
        if self.root is not None:
            index = read_index(self.root)
            if index["split"] != split:
                raise SampleFileError(f"{self.root}: holds split '{index['split']}', not '{split}'")
            self.config = config_from_dict(SyntheticConfig, index["config"], str(self.root / INDEX_FILE))
            available = index["scenes"]
            if scenes is not None and scenes > available:
                raise SampleFileError(f"{self.root}: has {available} scenes, {scenes} were asked for")
            self.num_scenes = available if scenes is None else scenes
        else:
            if config is None:
                raise ValueError("a config is needed to render samples on the fly")
            self.config = config
            self.num_scenes = config.scenes.get(split, 0) if scenes is None else scenes
        self._scene: SyntheticScene | None = None

    def __len__(self) -> int:
        return self.num_scenes * self.config.samples_per_scene

    def locate(self, i: int) -> tuple[int, int]:
        """(scene index, sample index within the scene) of dataset item ``i``."""
        if not 0 <= i < len(self):
            raise IndexError(f"sample {i} is outside 0..{len(self) - 1}")
        return divmod(i, self.config.samples_per_scene)

    def scene(self, index: int) -> SyntheticScene:
        if self._scene is None or self._scene.index != index:
            self._scene = SyntheticScene(self.config, self.split, index)
        return self._scene

    def __getitem__(self, i: int) -> Sample:
        scene_index, sample_index = self.locate(i)
        if self.root is not None:
            return load_sample(sample_path(self.root, scene_name(self.split, scene_index), sample_index))
        sample = self.scene(scene_index).sample(sample_index)
        return sample if self.split != "unlabeled" else without_labels(sample)


def read_index(root: Path) -> dict:
    """The index a generated folder carries: split, number of scenes, config, provenance."""
    path = root / INDEX_FILE
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SampleFileError(f"{path}: no such file (is {root} a folder written by 'mapdistill generate'?)") from None
    except json.JSONDecodeError as e:
        raise SampleFileError(f"{path}: not valid JSON ({e})") from None
    for key in ("split", "scenes", "config"):
        if key not in index:
            raise SampleFileError(f"{path}: missing field '{key}'")
    return index
