"""Writing a split of the synthetic world to disk: one compressed .npz per sample, an index.json.

Layout: ``OUT/index.json`` and ``OUT/<scene name>/<sample index>.npz``. Samples already on disk
are kept, so an interrupted run picks up where it stopped. index.json names the world config from
the start (with 0 complete scenes until the end), so a folder is never filled from two configs.
The "unlabeled" split is written without its map (``labels`` False) unless asked for with it.
"""

from __future__ import annotations

import multiprocessing
import queue
from collections.abc import Iterator
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from pathlib import Path

from tqdm import tqdm

from mapdistill_core.config import config_from_dict, config_to_dict
from mapdistill_core.data.sample import save_sample, without_labels
from mapdistill_core.data.synthetic.config import SyntheticConfig, scene_name
from mapdistill_core.data.synthetic.dataset import INDEX_FILE, read_index, sample_path
from mapdistill_core.data.synthetic.world import SyntheticScene
from mapdistill_core.errors import ConfigError
from mapdistill_core.results import provenance, write_json


def _write_scene(config: SyntheticConfig, split: str, index: int, out: Path, labels: bool) -> Iterator[None]:
    """Write the scene's missing samples (without their map unless ``labels``), yielding once per sample."""
    scene = None
    for i in range(config.samples_per_scene):
        path = sample_path(out, scene_name(split, index), i)
        if not path.exists():
            scene = scene or SyntheticScene(config, split, index)
            sample = scene.sample(i)
            save_sample(sample if labels else without_labels(sample), path)
        yield


_progress: multiprocessing.Queue | None = None  # a worker process's channel for "one sample done"


def _set_progress(channel: multiprocessing.Queue) -> None:
    global _progress
    _progress = channel


def _write_scene_reporting(config: SyntheticConfig, split: str, index: int, out: Path, labels: bool) -> None:
    for _ in _write_scene(config, split, index, out, labels):
        _progress.put(1)


def split_labels(split: str) -> bool:
    """Whether a split is written with its map by default: every split but "unlabeled"."""
    return split != "unlabeled"


def generate_split(
    config: SyntheticConfig, split: str, out: str | Path, scenes: int, workers: int = 1, labels: bool | None = None
) -> Path:
    """Render ``scenes`` scenes of ``split`` into ``out`` with ``workers`` processes, with their map
    if ``labels`` (default: ``split_labels(split)``)."""
    out = Path(out)
    labels = split_labels(split) if labels is None else labels
    if (out / INDEX_FILE).exists():
        index = read_index(out)
        if (
            index["split"] != split
            or index.get("labels", True) != labels
            or config_from_dict(SyntheticConfig, index["config"], str(out / INDEX_FILE)) != config
        ):
            raise ConfigError(
                f"{out}: holds split '{index['split']}' generated from another world config "
                f"{'or with' if index.get('labels', True) else 'or without'} its map; "
                "delete the folder or choose another output folder"
            )
    out.mkdir(parents=True, exist_ok=True)
    done = read_index(out)["scenes"] if (out / INDEX_FILE).exists() else 0
    write_json(out / INDEX_FILE, index_document(split, done, config, labels))
    total = scenes * config.samples_per_scene
    with tqdm(total=total, unit="sample", desc=f"generate {split}") as bar:
        if workers <= 1:
            for index in range(scenes):
                for _ in _write_scene(config, split, index, out, labels):
                    bar.update(1)
        else:
            channel = multiprocessing.get_context().Queue()
            with ProcessPoolExecutor(workers, initializer=_set_progress, initargs=(channel,)) as pool:
                pending = {
                    pool.submit(_write_scene_reporting, config, split, index, out, labels) for index in range(scenes)
                }
                while bar.n < total:  # a bar step per sample, whichever worker wrote it
                    try:
                        bar.update(channel.get(timeout=0.5))
                    except queue.Empty:
                        finished, pending = wait(pending, timeout=0, return_when=FIRST_EXCEPTION)
                        for job in finished:
                            job.result()  # a worker's error, raised here
    write_json(out / INDEX_FILE, index_document(split, max(done, scenes), config, labels))
    return out


def index_document(split: str, scenes: int, config: SyntheticConfig, labels: bool) -> dict:
    """index.json: the split, how many scenes are complete, the world config, whether the samples
    carry their map, and provenance."""
    return {
        "split": split,
        "scenes": scenes,
        "labels": labels,
        "config": config_to_dict(config),
        "meta": provenance(),
    }
