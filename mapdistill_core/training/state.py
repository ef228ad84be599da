"""The resumable training state (weights, optimizer, scheduler, position, RNG) as safetensors."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from mapdistill_core.checkpoint import atomic_save, load_weights, read_safetensors
from mapdistill_core.errors import CheckpointError

STATE_FORMAT = "mapdistill.train-state/1"


def save_state(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    position: dict,
    loss_module: torch.nn.Module | None = None,
) -> None:
    """Write everything needed to continue training from ``position`` (step, epoch, ...), including
    the trainable state of the loss (distillation adapters)."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    if loss_module is not None:
        tensors.update({f"loss.{k}": v for k, v in loss_module.state_dict().items()})
    optim = optimizer.state_dict()
    for index, state in optim["state"].items():
        for key, value in state.items():
            tensors[f"optim.{index}.{key}"] = value if isinstance(value, torch.Tensor) else torch.tensor(value)
    tensors["rng.torch"] = torch.get_rng_state()
    metadata = {
        "format": STATE_FORMAT,
        "param_groups": json.dumps(optim["param_groups"]),
        "scheduler": json.dumps(scheduler.state_dict()),
        "position": json.dumps(position),
    }
    atomic_save(tensors, path, metadata)


def load_state(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    loss_module: torch.nn.Module | None = None,
) -> dict:
    """Restore a state written by ``save_state``; returns its position."""
    tensors, metadata = read_safetensors(path)
    if metadata.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path}: not a training state (format {metadata.get('format')!r})")
    load_weights(model, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, str(path))
    if loss_module is not None:
        load_weights(loss_module, {k[5:]: v for k, v in tensors.items() if k.startswith("loss.")}, str(path))
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": json.loads(metadata["param_groups"])})
    scheduler.load_state_dict(json.loads(metadata["scheduler"]))
    torch.set_rng_state(tensors["rng.torch"])
    return json.loads(metadata["position"])
