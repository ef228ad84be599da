"""The Sample: everything the sensors and the map give at one timestamp, as plain numpy.

Fields (frames: base_link is REP-103 x forward, y left, z up; metres):

| field | type | meaning |
|---|---|---|
| images | uint8 [6, H, W, 3] RGB | cameras in CAMERA_NAMES order |
| intrinsics | float32 [6, 3, 3] | pinhole K per camera, for the stored resolution |
| cam_to_ego | float32 [6, 4, 4] | camera optical frame (z forward, x right, y down) -> base_link |
| lidar | float32 [P, 4] | x, y, z, intensity in base_link (empty: no scan) |
| ego_to_world | float64 [4, 4] or None | pose of base_link in the world (map) frame (None: unknown, as live) |
| ground_truth | tuple of MapElement | the map in base_link, clipped to the region (empty: none known) |
| labeled | bool | False: a drive nobody annotated (its ground truth is empty and unknown, not "no map") |
| timestamp_ns, scene, token | int, str, str | identity |

A Sample is frozen and checked when it is made: a field of the wrong type or shape raises
ValueError naming it. On disk a Sample is one ``.npz`` file (numpy's zip format, compressed)
holding only arrays of numbers and strings, read back with ``allow_pickle=False``; the file of an
unlabelled sample has no ground-truth fields at all, so no reader can find a map in it.
"""

from __future__ import annotations

import dataclasses
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mapdistill_core.atomic import atomic_output
from mapdistill_core.errors import SampleFileError
from mapdistill_core.map_elements import CLASS_NAMES, MapElement

CAMERA_NAMES: tuple[str, ...] = (
    "CAM_FRONT",
    "CAM_FRONT_RIGHT",
    "CAM_FRONT_LEFT",
    "CAM_BACK",
    "CAM_BACK_LEFT",
    "CAM_BACK_RIGHT",
)

_SHAPES = {
    "images": (np.uint8, (len(CAMERA_NAMES), None, None, 3)),
    "intrinsics": (np.float32, (len(CAMERA_NAMES), 3, 3)),
    "cam_to_ego": (np.float32, (len(CAMERA_NAMES), 4, 4)),
    "lidar": (np.float32, (None, 4)),
    "ego_to_world": (np.float64, (4, 4)),
}
"""Array fields: dtype and shape (None: any length)."""


def _no_scan() -> np.ndarray:
    return np.zeros((0, 4), dtype=np.float32)


def _check_array(name: str, value: object) -> None:
    dtype, shape = _SHAPES[name]
    if not (
        isinstance(value, np.ndarray)
        and value.dtype == dtype
        and value.ndim == len(shape)
        and all(s is None or s == d for s, d in zip(shape, value.shape, strict=True))
    ):
        found = f"{value.dtype} {list(value.shape)}" if isinstance(value, np.ndarray) else type(value).__name__
        expected = f"{np.dtype(dtype)} [{', '.join('*' if s is None else str(s) for s in shape)}]"
        raise ValueError(f"field '{name}' is {found}, expected {expected}")


@dataclass(frozen=True, eq=False)
class Sample:
    """One timestamp's sensor data and map (see the module docstring for the fields)."""

    images: np.ndarray
    intrinsics: np.ndarray
    cam_to_ego: np.ndarray
    lidar: np.ndarray = field(default_factory=_no_scan)
    ego_to_world: np.ndarray | None = None
    ground_truth: tuple[MapElement, ...] = ()
    timestamp_ns: int = 0
    scene: str = ""
    token: str = ""
    labeled: bool = True

    def __post_init__(self) -> None:
        for name in _SHAPES:
            if not (name == "ego_to_world" and self.ego_to_world is None):
                _check_array(name, getattr(self, name))
        ground_truth = tuple(self.ground_truth)
        if not all(isinstance(e, MapElement) for e in ground_truth):
            raise ValueError("field 'ground_truth' must hold MapElements")
        if not self.labeled and ground_truth:
            raise ValueError("an unlabelled sample carries no ground truth")
        object.__setattr__(self, "ground_truth", ground_truth)


def without_labels(sample: Sample) -> Sample:
    """The sample as a drive nobody annotated: the same sensor data, no ground truth."""
    return dataclasses.replace(sample, ground_truth=(), labeled=False)


def save_sample(sample: Sample, path: str | Path) -> None:
    """Write a Sample to a compressed ``.npz`` atomically (temporary file, then rename).

    Raises:
        ValueError: a labelled sample has no pose (``ego_to_world`` None): its map was drawn in the
            world frame, so its file always carries one. An unlabelled sample's may be unknown (a
            recorded drive without a world frame; training never reads the pose).
    """
    if sample.ego_to_world is None and sample.labeled:
        raise ValueError(f"{path}: a labelled sample without ego_to_world cannot be saved")
    arrays = {name: getattr(sample, name) for name in _SHAPES if getattr(sample, name) is not None}
    arrays.update(
        labeled=np.bool_(sample.labeled),
        timestamp_ns=np.int64(sample.timestamp_ns),
        scene=np.str_(sample.scene),
        token=np.str_(sample.token),
    )
    if sample.labeled:
        elements = sample.ground_truth
        points = np.concatenate([e.points for e in elements]) if elements else np.zeros((0, 2))
        arrays.update(
            vector_classes=np.array([e.class_id for e in elements], dtype=np.int64),
            vector_lengths=np.array([len(e.points) for e in elements], dtype=np.int64),
            vector_points=points.astype(np.float32),
        )
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)


def _field(data: np.lib.npyio.NpzFile, name: str, path: Path) -> np.ndarray:
    if name not in data.files:
        raise SampleFileError(f"{path}: missing field '{name}'")
    return data[name]


def load_sample(path: str | Path) -> Sample:
    """Read a Sample written by ``save_sample``, checking every field's type and shape."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            unlabelled = "labeled" in data.files and not bool(data["labeled"])
            arrays = {
                name: _field(data, name, path)
                for name in _SHAPES
                if not (name == "ego_to_world" and unlabelled and name not in data.files)
            }
            identity = {
                "timestamp_ns": int(_field(data, "timestamp_ns", path)),
                "scene": str(_field(data, "scene", path)),
                "token": str(_field(data, "token", path)),
            }
            if unlabelled:
                return Sample(**arrays, **identity, labeled=False)
            classes = _field(data, "vector_classes", path)
            lengths = _field(data, "vector_lengths", path)
            points = _field(data, "vector_points", path)
            if lengths.sum() != len(points) or len(classes) != len(lengths):
                raise SampleFileError(f"{path}: vector_classes, vector_lengths and vector_points disagree")
            if len(classes) and not ((classes >= 0) & (classes < len(CLASS_NAMES))).all():
                raise SampleFileError(f"{path}: field 'vector_classes' has an unknown class id")
            splits = np.split(points, np.cumsum(lengths)[:-1]) if len(lengths) else []
            return Sample(
                **arrays,
                ground_truth=tuple(MapElement(int(c), p) for c, p in zip(classes, splits, strict=True)),
                **identity,
            )
    except FileNotFoundError:
        raise SampleFileError(f"{path}: no such file") from None
    except SampleFileError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise SampleFileError(f"{path}: not a readable sample file ({e})") from None
    except ValueError as e:
        raise SampleFileError(f"{path}: {e}") from None
