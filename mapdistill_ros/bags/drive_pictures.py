"""Pictures of a replayed drive: a bird's-eye PNG per frame and a GIF per scene."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from tqdm import tqdm

from mapdistill_core.map_elements import MapElement
from mapdistill_core.plotting import save_bev_png
from mapdistill_ros.bags.scoring import pair_by_stamp


def write_drive_pictures(
    predictions: dict[int, list[MapElement]],
    ground_truth: dict[int, list[MapElement]],
    scenes: list[list[int]],
    folder: Path,
    score_threshold: float,
) -> list[Path]:
    """A BEV PNG per frame of ``predictions`` (stamp -> elements in base_link) over the ground truth
    paired with it by stamp, and a GIF per scene (``scenes``: per scene its prediction stamps in
    order); returns the GIFs."""
    folder.mkdir(parents=True, exist_ok=True)
    pairs = {p: t for t, p in pair_by_stamp(list(ground_truth), list(predictions)).items()}
    gifs = []
    for index, stamps in enumerate(s for s in scenes if s):
        frames = []
        for stamp in tqdm(stamps, desc=f"bev scene {index}", unit="frame", leave=False):
            path = folder / f"scene{index:02d}_{stamp}.png"
            gt = ground_truth.get(pairs.get(stamp), [])
            save_bev_png(
                path,
                predictions[stamp],
                gt,
                score_threshold,
                f"scene {index}, t = {(stamp - stamps[0]) / 1e9:.1f} s",
            )
            frames.append(Image.open(path).convert("P", palette=Image.Palette.ADAPTIVE))
        gif = folder / f"scene{index:02d}.gif"
        frames[0].save(gif, save_all=True, append_images=frames[1:], duration=500, loop=0)
        gifs.append(gif)
    return gifs
