"""Writing a split of the synthetic world to disk: one compressed .npz per sample, an index.json.

Layout: ``OUT/index.json`` and ``OUT/<scene name>/<sample index>.npz``. Samples already on disk
are kept, so an interrupted run picks up where it stopped. index.json names the world config from
the start (with 0 complete scenes until the end), so a folder is never filled from two configs.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tqdm import tqdm

from mapdistill_core.config import ConfigError, config_from_dict, config_to_dict
from mapdistill_core.data.sample import save_sample
from mapdistill_core.data.synthetic.config import SyntheticConfig, scene_name
from mapdistill_core.data.synthetic.world import SyntheticScene
from mapdistill_core.data.synthetic_dataset import INDEX_FILE, read_index, sample_path
from mapdistill_core.results import provenance, write_json


def _write_scene(config: SyntheticConfig, split: str, index: int, out: Path) -> Iterator[None]:
    """Write the scene's missing samples, yielding once per sample of the scene."""
    scene = None
    for i in range(config.samples_per_scene):
        path = sample_path(out, scene_name(split, index), i)
        if not path.exists():
            scene = scene or SyntheticScene(config, split, index)
            save_sample(scene.sample(i), path)
        yield


def _write_scene_count(config: SyntheticConfig, split: str, index: int, out: Path) -> int:
    return sum(1 for _ in _write_scene(config, split, index, out))


def generate_split(config: SyntheticConfig, split: str, out: str | Path, scenes: int, workers: int = 1) -> Path:
    """Render ``scenes`` scenes of ``split`` into ``out`` with ``workers`` processes."""
    out = Path(out)
    if (out / INDEX_FILE).exists():
        index = read_index(out)
        if (
            index["split"] != split
            or config_from_dict(SyntheticConfig, index["config"], str(out / INDEX_FILE)) != config
        ):
            raise ConfigError(
                f"{out}: holds split '{index['split']}' generated from another world config; "
                "delete the folder or choose another output folder"
            )
    out.mkdir(parents=True, exist_ok=True)
    done = read_index(out)["scenes"] if (out / INDEX_FILE).exists() else 0
    write_json(out / INDEX_FILE, index_document(split, done, config))
    total = scenes * config.samples_per_scene
    with tqdm(total=total, unit="sample", desc=f"generate {split}") as bar:
        if workers <= 1:
            for index in range(scenes):
                for _ in _write_scene(config, split, index, out):
                    bar.update(1)
        else:
            with ProcessPoolExecutor(workers) as pool:
                jobs = [pool.submit(_write_scene_count, config, split, index, out) for index in range(scenes)]
                for job in jobs:
                    bar.update(job.result())
    write_json(out / INDEX_FILE, index_document(split, max(done, scenes), config))
    return out


def index_document(split: str, scenes: int, config: SyntheticConfig) -> dict:
    """index.json: the split, how many scenes are complete, the world config and provenance."""
    return {"split": split, "scenes": scenes, "config": config_to_dict(config), "meta": provenance()}
