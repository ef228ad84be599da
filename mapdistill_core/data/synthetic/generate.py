"""Writing a split of the synthetic world to disk: one compressed .npz per sample, an index.json.

Layout: ``OUT/index.json`` and ``OUT/<scene name>/<sample index>.npz``. Samples already on disk
are kept, so an interrupted run picks up where it stopped; index.json is written last.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tqdm import tqdm

from mapdistill_core.config import config_to_dict
from mapdistill_core.data.sample import save_sample
from mapdistill_core.data.synthetic.config import SyntheticConfig, scene_name
from mapdistill_core.data.synthetic.world import SyntheticScene
from mapdistill_core.data.synthetic_dataset import INDEX_FILE, sample_path
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
    out.mkdir(parents=True, exist_ok=True)
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
    write_json(
        out / INDEX_FILE,
        {"split": split, "scenes": scenes, "config": config_to_dict(config), "meta": provenance()},
    )
    return out
