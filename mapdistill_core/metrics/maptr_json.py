"""Reading and writing MapTR's vector-map JSON files, with errors that name the bad field.

Predictions (MapTR submission format)::

    {"meta": {...}, "results": [{"sample_token": "...", "vectors": [
        {"pts": [[x, y], ...], "pts_num": n, "cls_name": "divider", "type": 0,
         "confidence_level": 0.9}, ...]}, ...]}

Ground truth::

    {"GTs": [{"sample_token": "...", "vectors": [{"pts": ..., "pts_num": n, "cls_name": ..., "type": ...}]}]}

Points are (x, y) metres in the ego frame. A vector names its class by ``type`` (class id),
``cls_name`` or both (then they must agree).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mapdistill_core.errors import MapFileError
from mapdistill_core.map_elements import CLASS_IDS, CLASS_NAMES, MapElement


@dataclass
class VectorFile:
    """The parsed content of a predictions or ground-truth file.

    Attributes:
        samples: sample token -> elements, in file order.
        skipped_short: number of elements dropped for having fewer than 2 points (predictions only).
    """

    samples: dict[str, list[MapElement]] = field(default_factory=dict)
    skipped_short: int = 0


def _class_id(vec: dict, where: str) -> int:
    type_id, name = vec.get("type"), vec.get("cls_name")
    if type_id is None and name is None:
        raise MapFileError(f"{where}: missing field 'type' (class id) or 'cls_name'")
    if type_id is not None:
        if isinstance(type_id, bool) or not isinstance(type_id, int):
            raise MapFileError(f"{where}.type: expected an integer class id, got {type_id!r}")
        if not 0 <= type_id < len(CLASS_NAMES):
            raise MapFileError(
                f"{where}.type: unknown class id {type_id} (known: "
                + ", ".join(f"{i}={n}" for i, n in enumerate(CLASS_NAMES))
                + ")"
            )
    if name is not None:
        if not isinstance(name, str) or name not in CLASS_IDS:
            raise MapFileError(f"{where}.cls_name: unknown class {name!r} (known: {', '.join(CLASS_NAMES)})")
        if type_id is not None and CLASS_IDS[name] != type_id:
            raise MapFileError(f"{where}: 'type' {type_id} and 'cls_name' {name!r} disagree")
        return CLASS_IDS[name]
    return type_id


def _points(vec: dict, where: str) -> np.ndarray:
    if "pts" not in vec:
        raise MapFileError(f"{where}: missing field 'pts'")
    try:
        pts = np.asarray(vec["pts"], dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise MapFileError(f"{where}.pts: expected a list of [x, y] numbers") from None
    if pts.size == 0:
        pts = pts.reshape(0, 2)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise MapFileError(f"{where}.pts: expected a list of [x, y] pairs, got shape {list(pts.shape)}")
    if not np.isfinite(pts).all():
        bad = int(np.argwhere(~np.isfinite(pts))[0, 0])
        raise MapFileError(f"{where}.pts[{bad}]: coordinate is NaN or infinite")
    if "pts_num" in vec and vec["pts_num"] != len(pts):
        raise MapFileError(f"{where}.pts_num: says {vec['pts_num']!r} but 'pts' has {len(pts)} points")
    return pts


def _confidence(vec: dict, where: str) -> float:
    if "confidence_level" not in vec:
        raise MapFileError(f"{where}: missing field 'confidence_level'")
    score = vec["confidence_level"]
    finite = isinstance(score, (int, float)) and abs(score) <= sys.float_info.max  # False for NaN, inf, 1e400 ints
    if isinstance(score, bool) or not finite:
        raise MapFileError(f"{where}.confidence_level: expected a finite number, got {score!r}")
    return float(score)


def _read_json(path: Path) -> object:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise MapFileError(f"{path}: no such file") from None
    except OSError as e:
        raise MapFileError(f"{path}: not readable ({e.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise MapFileError(f"{path}: not valid JSON ({e})") from None


def _parse(path: Path, key: str, predictions: bool) -> VectorFile:
    doc = _read_json(path)
    if not isinstance(doc, dict) or key not in doc:
        raise MapFileError(f"{path}: expected a JSON object with the field '{key}'")
    entries = doc[key]
    if not isinstance(entries, list):
        raise MapFileError(f"{path}: field '{key}' must be a list of samples")
    out = VectorFile()
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("sample_token"), str):
            raise MapFileError(f"{path}: {key}[{i}]: missing or non-string field 'sample_token'")
        token = entry["sample_token"]
        if token in out.samples:
            raise MapFileError(f"{path}: sample '{token}' appears twice in '{key}'")
        vectors = entry.get("vectors")
        if not isinstance(vectors, list):
            raise MapFileError(f"{path}: sample '{token}': missing field 'vectors' (a list)")
        elements = []
        for j, vec in enumerate(vectors):
            where = f"{path}: sample '{token}': vectors[{j}]"
            if not isinstance(vec, dict):
                raise MapFileError(f"{where}: expected an object")
            class_id = _class_id(vec, where)
            pts = _points(vec, where)
            score = _confidence(vec, where) if predictions else 1.0
            if len(pts) < 2:
                if not predictions:
                    raise MapFileError(f"{where}.pts: a ground-truth element needs at least 2 points")
                out.skipped_short += 1
                continue
            elements.append(MapElement(class_id, pts, score))
        out.samples[token] = elements
    return out


def load_predictions(path: str | Path) -> VectorFile:
    """Read a MapTR predictions file; elements with fewer than 2 points are skipped and counted."""
    return _parse(Path(path), "results", predictions=True)


def load_ground_truth(path: str | Path) -> VectorFile:
    """Read a MapTR ground-truth file."""
    return _parse(Path(path), "GTs", predictions=False)


def _vector_dict(element: MapElement, predictions: bool) -> dict:
    vec = {
        "pts": element.points.tolist(),
        "pts_num": len(element.points),
        "cls_name": element.class_name,
        "type": element.class_id,
    }
    if predictions:
        vec["confidence_level"] = float(element.score)
    return vec


def predictions_document(samples: dict[str, list[MapElement]], meta: dict | None = None) -> dict:
    """Predictions in MapTR's submission format, ready for ``json.dump``."""
    results = [
        {"sample_token": token, "vectors": [_vector_dict(e, True) for e in elements]}
        for token, elements in samples.items()
    ]
    return {"meta": meta or {}, "results": results}


def ground_truth_document(samples: dict[str, list[MapElement]]) -> dict:
    """Ground truth in MapTR's format, ready for ``json.dump``."""
    return {
        "GTs": [
            {"sample_token": token, "vectors": [_vector_dict(e, False) for e in elements]}
            for token, elements in samples.items()
        ]
    }


def write_maptr_files(
    out: str | Path, predictions: dict[str, list[MapElement]], ground_truth: dict[str, list[MapElement]], meta: dict
) -> None:
    """``out``/predictions.json (MapTR's submission format, with ``meta``) and, when there is ground
    truth, ``out``/ground_truth.json, keyed alike: the one writer of both files (evaluate, replay)."""
    from mapdistill_core.results import write_json

    write_json(Path(out) / "predictions.json", predictions_document(predictions, meta))
    if ground_truth:
        write_json(Path(out) / "ground_truth.json", ground_truth_document(ground_truth))
