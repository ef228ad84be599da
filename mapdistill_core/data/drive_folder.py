"""A folder of recorded drives nobody annotated, as unlabelled Samples (``mapdistill bag2samples``).

Layout: ``<root>/index.json`` lists the drives; drive ``d``'s samples are ``<root>/<d>/<i:06d>.npz``
(``data/sample.py`` files, ``labeled`` False, no ground-truth fields). The index is the folder's
contents: a drive enters it only once all its files are written, so an interrupted conversion leaves
the folder as it was before that drive. Index fields: ``kind`` (FOLDER_KIND), ``drives`` (per drive
``name``, ``samples``, ``source``: the bag it came from) and ``meta`` (provenance).

Training reads such a folder beside the labelled split (``data.unlabeled_dir``); the teacher's pseudo
labels are then the drives' map targets. A file in it that carries a map is refused, so a drive
folder can never leak ground truth into training.
"""

from __future__ import annotations

import bisect
import json
from itertools import accumulate
from pathlib import Path

from torch.utils.data import Dataset

from mapdistill_core.data.sample import Sample, load_sample
from mapdistill_core.errors import SampleFileError
from mapdistill_core.results import write_json

INDEX_FILE = "index.json"
FOLDER_KIND = "mapdistill drives"


def drive_sample_path(root: Path, drive: str, index: int) -> Path:
    """Where sample ``index`` of ``drive`` lives in a drive folder."""
    return root / drive / f"{index:06d}.npz"


def read_drive_index(root: str | Path) -> dict:
    """The index of a drive folder (see the module docstring), checked; an absent one is an error."""
    path = Path(root) / INDEX_FILE
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SampleFileError(
            f"{path}: no such file (is {root} a folder written by 'mapdistill bag2samples'?)"
        ) from None
    except json.JSONDecodeError as e:
        raise SampleFileError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(index, dict) or index.get("kind") != FOLDER_KIND:
        raise SampleFileError(f"{path}: not a drive folder's index (its 'kind' is not '{FOLDER_KIND}')")
    drives = index.get("drives")
    if not isinstance(drives, list) or not all(
        isinstance(d, dict)
        and isinstance(d.get("name"), str)
        and isinstance(d.get("samples"), int)
        and d["samples"] >= 0
        for d in drives
    ):
        raise SampleFileError(f"{path}: field 'drives' must list objects with a 'name' and a count of 'samples' >= 0")
    return index


def write_drive_index(root: Path, drives: list[dict], meta: dict) -> None:
    """Write (atomically) the index of ``root`` listing ``drives`` (name, samples, source)."""
    write_json(root / INDEX_FILE, {"kind": FOLDER_KIND, "drives": drives, "meta": meta})


class DriveFolder(Dataset):
    """The unlabelled Samples of a drive folder, drive after drive in the index's order.

    Args:
        root: a folder written by ``mapdistill bag2samples``.

    Raises:
        SampleFileError: no readable index, or no sample in it; reading a sample: a missing or bad
            file, or one that carries a map (``labeled`` True).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.drives = read_drive_index(self.root)["drives"]
        self.ends = list(accumulate(d["samples"] for d in self.drives))
        if not len(self):
            raise SampleFileError(f"{self.root / INDEX_FILE}: lists no drive with samples")

    def __len__(self) -> int:
        return self.ends[-1] if self.ends else 0

    def __getitem__(self, i: int) -> Sample:
        if not 0 <= i < len(self):
            raise IndexError(f"sample {i} is outside 0..{len(self) - 1}")
        drive = bisect.bisect_right(self.ends, i)
        first = self.ends[drive - 1] if drive else 0
        path = drive_sample_path(self.root, self.drives[drive]["name"], i - first)
        sample = load_sample(path)
        if sample.labeled:
            raise SampleFileError(f"{path}: carries a map; a drive folder holds drives nobody annotated")
        return sample
