"""ONNX export of a trained model: ``mapdistill export --weights W --out student.onnx``.

The exported graph takes the collated batch tensors (mapdistill_core.data.batch), any batch size B:
    images float32 [B, N, 3, H, W] (ImageNet-normalized), intrinsics float32 [B, N, 3, 3],
    cam_to_ego float32 [B, N, 4, 4] (optical frame -> base_link), camera_mask bool [B, N]
and returns the last decoder layer's logits float32 [B, Q, K] and normalized points float32
[B, Q, Np, 2] (decode with mapdistill_core.inference.decode). The model config and class names are
stored in the file's metadata, so ``OnnxRuntimeBackend`` needs nothing else. With ``fp16`` the
weights and activations are float16 while inputs, outputs, camera geometry and the lift-splat
sums stay float32.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from mapdistill_core.atomic import atomic_output
from mapdistill_core.checkpoint import ONNX_FORMAT, load_model, model_metadata
from mapdistill_core.data.batch import blank_cameras
from mapdistill_core.data.sample import CAMERA_NAMES, Sample
from mapdistill_core.errors import CheckpointError
from mapdistill_core.inference import (
    ONNX_INPUTS,
    ONNX_OUTPUTS,
    OnnxRuntimeBackend,
    TorchBackend,
    model_inputs,
)
from mapdistill_core.models.model import MapModel

DEFAULT_OPSET = 18
MAX_BATCH = 64


class ExportedModel(nn.Module):
    """The four batch tensors in, last-layer (logits, points) out, float32 at both ends."""

    def __init__(self, model: MapModel, dtype: torch.dtype):
        super().__init__()
        self.model, self.dtype = model, dtype

    def forward(self, images, intrinsics, cam_to_ego, camera_mask) -> tuple[torch.Tensor, torch.Tensor]:
        batch = {"images": images.to(self.dtype), "intrinsics": intrinsics, "cam_to_ego": cam_to_ego}
        outputs = self.model({**batch, "camera_mask": camera_mask})
        return outputs["logits"].float(), outputs["points"].float()


@dataclass(frozen=True)
class ExportCheck:
    """Exported model (onnxruntime, CPU) against the PyTorch model on the same batch."""

    max_logit_error: float
    max_point_error_m: float
    ran: bool
    reason: str = ""


def export_onnx(weights: str | Path, out: str | Path, opset: int = DEFAULT_OPSET, fp16: bool = False) -> Path:
    """Export safetensors ``weights`` to ``out`` (written atomically); returns ``out``.

    Raises:
        CheckpointError: the weights are unreadable, do not fit their config, or are a teacher's
            (only camera-only students are exported).
    """
    out = Path(out)
    model, _ = load_model(weights, torch.device("cpu"))
    if model.config.lidar is not None:
        raise CheckpointError(f"{weights}: a teacher (camera + LiDAR); export a camera-only student")
    dtype = torch.float16 if fp16 else torch.float32
    wrapper = ExportedModel(model.to(dtype), dtype).eval()
    example = example_batch(model, batch_size=2)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    with quiet_exporter():
        program = torch.onnx.export(
            wrapper,
            tuple(example[k] for k in ONNX_INPUTS),
            dynamo=True,
            opset_version=opset,
            input_names=list(ONNX_INPUTS),
            output_names=list(ONNX_OUTPUTS),
            dynamic_shapes={k: {0: batch} for k in ONNX_INPUTS},
            verbose=False,
        )
    proto = program.model_proto
    metadata = model_metadata(model.config, ONNX_FORMAT, fp16=fp16, source_weights=Path(weights).name)
    onnx.helper.set_model_props(proto, metadata)
    onnx.checker.check_model(proto)
    with atomic_output(out) as tmp:
        onnx.save(proto, str(tmp))
    return out


@contextlib.contextmanager
def quiet_exporter():
    """Hide the exporter's per-node INFO logs (onnxscript's optimizer), its note that torchvision's
    operators are not registered (we use none) and its internal deprecation warnings."""
    loggers = [logging.getLogger(name) for name in ("onnxscript", "onnx_ir", "torch.onnx")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*axis name.*will not be used")
            warnings.filterwarnings("ignore", category=FutureWarning)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def example_batch(model: MapModel, batch_size: int = 1, samples: list[Sample] | None = None) -> dict:
    """A collated batch at the model's sizes: ``samples`` or, without them, fixed random pixels on the
    blank camera set (``blank_cameras``)."""
    if samples is None:
        rng = np.random.default_rng(0)
        images, intrinsics, cam_to_ego = blank_cameras(len(CAMERA_NAMES), model.config.image_size)
        samples = [
            Sample(rng.integers(0, 256, images.shape, dtype=np.uint8), intrinsics, cam_to_ego)
            for _ in range(batch_size)
        ]
    return model_inputs(samples, model.config, model.grid)


def check_export(model: MapModel, onnx_path: str | Path, batch: dict) -> ExportCheck:
    """Run the exported file with onnxruntime (CPU) and the float32 ``model`` it came from with
    PyTorch on ``batch``."""
    try:
        runtime = OnnxRuntimeBackend(onnx_path, "cpu")
        logits, points = runtime(batch)
    except Exception as e:  # onnxruntime has no CPU kernels for some float16 operators
        return ExportCheck(float("nan"), float("nan"), False, f"onnxruntime could not run it on CPU: {e}")
    reference_logits, reference_points = TorchBackend(model, "cpu")(batch)
    extent = torch.tensor([model.grid.region[2] - model.grid.region[0], model.grid.region[3] - model.grid.region[1]])
    return ExportCheck(
        float((logits - reference_logits).abs().max()),
        float(((points - reference_points).abs() * extent).max()),
        True,
    )
