"""Model weights as safetensors, with the model config and class names in the metadata.

Nothing is ever unpickled: a checkpoint is tensors plus JSON strings. Writes are atomic
(temporary file, then rename). The metadata every model file carries (a safetensors checkpoint, an
exported ONNX file) is written by ``model_metadata`` and read back by ``metadata_model_config``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from mapdistill_core.atomic import atomic_output
from mapdistill_core.config import config_from_dict, config_to_dict
from mapdistill_core.errors import CheckpointError, ConfigError
from mapdistill_core.map_elements import CLASS_NAMES
from mapdistill_core.models.config import ModelConfig
from mapdistill_core.models.model import MapModel, build_model
from mapdistill_core.resources import resolve

FORMAT = "mapdistill.model/1"
ONNX_FORMAT = "mapdistill.onnx/1"
WRITERS = {
    FORMAT: "a model checkpoint written by mapdistill",
    ONNX_FORMAT: "an ONNX file written by `mapdistill export`",
}
"""What writes each file format, for error messages."""


def atomic_save(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str]) -> None:
    """safetensors' save_file, atomically (see mapdistill_core.atomic)."""
    with atomic_output(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def model_metadata(config: ModelConfig, file_format: str, **entries) -> dict[str, str]:
    """The metadata of a model file: its ``file_format`` (FORMAT, ONNX_FORMAT), the model config,
    the class names and ``entries``, each a JSON string."""
    metadata = {"format": file_format, "model_config": config_to_dict(config), "class_names": list(CLASS_NAMES)}
    return {key: value if key == "format" else json.dumps(value) for key, value in {**metadata, **entries}.items()}


def metadata_model_config(metadata: dict[str, str], path: str | Path, file_format: str) -> ModelConfig:
    """The ModelConfig of a model file's metadata, after checking its format and class names;
    CheckpointError naming the file and the entry at fault."""
    if metadata.get("format") != file_format:
        raise CheckpointError(
            f"{path}: not {WRITERS[file_format]} (metadata 'format' is {metadata.get('format')!r}, "
            f"expected '{file_format}')"
        )
    names = _metadata_json(metadata, "class_names", "[]", path)
    if names != list(CLASS_NAMES):
        raise CheckpointError(f"{path}: trained for classes {names}, this code predicts {list(CLASS_NAMES)}")
    try:
        return config_from_dict(ModelConfig, json.loads(metadata["model_config"]), f"{path}: model_config")
    except (KeyError, json.JSONDecodeError, ConfigError) as e:
        raise CheckpointError(f"{path}: bad 'model_config' metadata ({e})") from None


def save_model(path: str | Path, model: MapModel, extra: dict | None = None) -> None:
    """Write a model's weights with its config, the class names and ``extra`` (JSON) as metadata."""
    atomic_save(model.state_dict(), path, model_metadata(model.config, FORMAT, extra=extra or {}))


def weights_file(path: str | Path) -> Path:
    """The weights ``path`` names: the file itself, else the shipped weights of that name
    (``synthetic_student.safetensors`` or ``checkpoints/synthetic_student.safetensors`` work from
    any folder and from a pip or colcon install)."""
    try:
        return Path(resolve(path, "checkpoints"))
    except FileNotFoundError as e:
        raise CheckpointError(str(e)) from None


def _not_ours(path: Path) -> None:
    """A model file of another kind (an ONNX model, a pickle) named where safetensors weights belong."""
    if path.suffix.lower() == ".onnx":
        raise CheckpointError(
            f"{path}: is an ONNX model; run it with the onnxruntime backend (--backend onnxruntime; the node: "
            "backend:=onnxruntime)"
        )


def _metadata(path: Path) -> dict[str, str]:
    _not_ours(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None


def read_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors and the metadata of a safetensors file, with a clear error for anything else."""
    path = weights_file(path)
    _not_ours(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(
            f"{path}: not a readable safetensors file ({e}); pickled checkpoints are refused"
        ) from None


def _metadata_json(metadata: dict[str, str], key: str, default: str, path: str | Path):
    """Metadata entry ``key`` (``default`` when absent) parsed as JSON; CheckpointError naming the file and key."""
    try:
        return json.loads(metadata.get(key, default))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: metadata '{key}' is not JSON ({e})") from None


def read_extra(path: str | Path) -> dict:
    """The ``extra`` metadata of a model checkpoint (epoch, val_mAP, world, ...), without its tensors."""
    path = weights_file(path)
    metadata = _metadata(path)
    return _metadata_json(metadata, "extra", "{}", path)


def read_model_config(path: str | Path) -> ModelConfig:
    """The model config a checkpoint was written with, without its tensors."""
    path = weights_file(path)
    return metadata_model_config(_metadata(path), path, FORMAT)


def load_model(
    path: str | Path, device: str | torch.device = "cpu", config: ModelConfig | None = None
) -> tuple[MapModel, dict]:
    """Build the model a checkpoint describes (or ``config``, when given) and load its weights.

    Returns the model (eval mode, on ``device``) and the checkpoint's ``extra`` metadata.
    """
    path = weights_file(path)
    tensors, metadata = read_safetensors(path)
    stored = metadata_model_config(metadata, path, FORMAT)
    model = build_model(config if config is not None else stored)
    load_weights(model, tensors, str(path))
    return model.to(device).eval(), _metadata_json(metadata, "extra", "{}", path)


def load_weights(model: torch.nn.Module, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Load a state dict, failing with the first few missing, unexpected or misshapen keys."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    misshapen = [
        f"{k}: file {list(tensors[k].shape)} vs config {list(v.shape)}"
        for k, v in expected.items()
        if k in tensors and tensors[k].shape != v.shape
    ]
    if missing or unexpected or misshapen:
        problems = [f"missing {k}" for k in missing[:3]] + [f"unexpected {k}" for k in unexpected[:3]]
        problems += misshapen[:3]
        raise CheckpointError(
            f"{source}: weights do not fit the model config ({len(missing)} missing, {len(unexpected)} unexpected, "
            f"{len(misshapen)} of another shape): " + "; ".join(problems)
        )
    model.load_state_dict(tensors)
