"""The one inference entry point: weights + config in, map elements in base_link out.

Every consumer (evaluation, the ROS node, bag replay, export) goes through ``MapPredictor``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mapdistill_core.checkpoint import load_model
from mapdistill_core.config import load_config
from mapdistill_core.data.batch import collate, to_device
from mapdistill_core.data.sample import Sample
from mapdistill_core.map_elements import MapElement
from mapdistill_core.models.model import MapModel
from mapdistill_core.training.config import ExperimentConfig


def resolve_device(device: str) -> torch.device:
    """The torch device for a name: "auto" is cuda when available, else cpu."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def decode(
    logits: torch.Tensor, points: torch.Tensor, model: MapModel, top_k: int | None = None
) -> list[list[MapElement]]:
    """Last-layer outputs -> per sample the top-k (query, class) pairs by score, as MapTR does.

    Args:
        logits: [B, Q, K]; points: [B, Q, Np, 2] normalized.
    """
    b, q, k = logits.shape
    top_k = top_k or q
    scores = logits.float().sigmoid().flatten(1)  # [B, Q * K]
    values, index = scores.topk(min(top_k, q * k), dim=1)
    metres = model.grid.denormalize(points.float())
    out = []
    for i in range(b):
        labels = (index[i] % k).tolist()
        queries = (index[i] // k).tolist()
        pts = metres[i, queries].cpu().numpy().astype(np.float32)
        out.append([MapElement(c, p, float(s)) for c, p, s in zip(labels, pts, values[i].tolist(), strict=True)])
    return out


class MapPredictor:
    """A loaded model that turns Samples into map elements.

    Args:
        model: a MapModel (teacher or student).
        device: where to run it.
        half: run the forward under float16 autocast (CUDA only; ignored on CPU).
    """

    def __init__(self, model: MapModel, device: str | torch.device = "cpu", half: bool = False):
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.model = model.to(self.device).eval()
        self.config = model.config
        self.half = half and self.device.type == "cuda"

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, device: str = "auto", half: bool = False, model_config: str | Path | None = None
    ) -> MapPredictor:
        """Load weights; the model is the one in their metadata, or the ``model:`` section of the
        experiment config ``model_config`` when given (misfitting weights are a CheckpointError)."""
        target = resolve_device(device)
        config = load_config(ExperimentConfig, model_config).model if model_config else None
        model, _ = load_model(path, target, config)
        return cls(model, target, half)

    @torch.inference_mode()
    def predict(
        self, samples: Sample | list[Sample], score_threshold: float = 0.0, camera_mask: np.ndarray | None = None
    ) -> list[list[MapElement]]:
        """Per sample, elements (class, score, 20 points in base_link) scoring at least the threshold.

        Args:
            samples: one Sample or a list.
            camera_mask: bool [B, N] cameras present (default: all).
        """
        samples = [samples] if isinstance(samples, Sample) else samples
        batch = collate(
            samples, self.config.image_size, self.model.grid, self.config.decoder.num_points, False, camera_mask
        )
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.half):
            outputs = self.model(to_device(batch, self.device))
        decoded = decode(outputs["logits"][-1], outputs["points"][-1], self.model)
        return [[e for e in elements if e.score >= score_threshold] for elements in decoded]
