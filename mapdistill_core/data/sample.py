"""The Sample: everything the sensors and the map give at one timestamp, as plain numpy.

Fields (frames: base_link is REP-103 x forward, y left, z up; metres):

| field | type | meaning |
|---|---|---|
| images | uint8 [6, H, W, 3] RGB | cameras in CAMERA_NAMES order |
| intrinsics | float32 [6, 3, 3] | pinhole K per camera, for the stored resolution |
| cam_to_ego | float32 [6, 4, 4] | camera optical frame (z forward, x right, y down) -> base_link |
| lidar | float32 [P, 4] | x, y, z, intensity in base_link (may be empty) |
| ego_to_world | float64 [4, 4] | pose of base_link in the world (map) frame |
| vectors | list of (class_id, float32 [K, 2]) | ground truth in base_link, clipped to the region |
| timestamp_ns, scene, token | int, str, str | identity |

On disk a Sample is one ``.npz`` file (numpy's zip format, compressed) holding only arrays of
numbers and strings, read back with ``allow_pickle=False``.
"""

from __future__ import annotations

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


@dataclass
class Sample:
    images: np.ndarray
    intrinsics: np.ndarray
    cam_to_ego: np.ndarray
    lidar: np.ndarray
    ego_to_world: np.ndarray
    vectors: list[tuple[int, np.ndarray]] = field(default_factory=list)
    timestamp_ns: int = 0
    scene: str = ""
    token: str = ""

    def map_elements(self) -> list[MapElement]:
        """Ground truth as MapElements (score 1)."""
        return [MapElement(c, p) for c, p in self.vectors]


_SHAPES = {
    "images": (np.uint8, (len(CAMERA_NAMES), None, None, 3)),
    "intrinsics": (np.float32, (len(CAMERA_NAMES), 3, 3)),
    "cam_to_ego": (np.float32, (len(CAMERA_NAMES), 4, 4)),
    "lidar": (np.float32, (None, 4)),
    "ego_to_world": (np.float64, (4, 4)),
}


def save_sample(sample: Sample, path: str | Path) -> None:
    """Write a Sample to a compressed ``.npz`` atomically (temporary file, then rename)."""
    lengths = np.array([len(p) for _, p in sample.vectors], dtype=np.int64)
    points = np.concatenate([p for _, p in sample.vectors]) if sample.vectors else np.zeros((0, 2))
    arrays = {name: np.asarray(getattr(sample, name), dtype=dtype) for name, (dtype, _) in _SHAPES.items()}
    arrays.update(
        vector_classes=np.array([c for c, _ in sample.vectors], dtype=np.int64),
        vector_lengths=lengths,
        vector_points=points.astype(np.float32),
        timestamp_ns=np.int64(sample.timestamp_ns),
        scene=np.str_(sample.scene),
        token=np.str_(sample.token),
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
            arrays = {}
            for name, (dtype, shape) in _SHAPES.items():
                a = _field(data, name, path)
                if (
                    a.dtype != dtype
                    or a.ndim != len(shape)
                    or any(s is not None and s != d for s, d in zip(shape, a.shape, strict=True))
                ):
                    raise SampleFileError(
                        f"{path}: field '{name}' is {a.dtype} {list(a.shape)}, expected {np.dtype(dtype)} "
                        f"{['*' if s is None else s for s in shape]}"
                    )
                arrays[name] = a
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
                vectors=[(int(c), p) for c, p in zip(classes, splits, strict=True)],
                timestamp_ns=int(_field(data, "timestamp_ns", path)),
                scene=str(_field(data, "scene", path)),
                token=str(_field(data, "token", path)),
            )
    except FileNotFoundError:
        raise SampleFileError(f"{path}: no such file") from None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        if isinstance(e, SampleFileError):
            raise
        raise SampleFileError(f"{path}: not a readable sample file ({e})") from None
