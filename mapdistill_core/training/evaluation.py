"""Running a model over a dataset and scoring it with the MapTR-protocol Chamfer AP."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from mapdistill_core.data.batch import to_device
from mapdistill_core.inference import model_inputs
from mapdistill_core.map_elements import MapElement
from mapdistill_core.metrics import EvalResult, evaluate_vectors
from mapdistill_core.models.model import MapModel
from mapdistill_core.models.postprocess import decode


@torch.inference_mode()
def predict_dataset(
    model: MapModel, dataset: Dataset, device: torch.device, batch_size: int = 4, limit: int = 0, progress: bool = True
) -> tuple[dict[str, list[MapElement]], dict[str, list[MapElement]]]:
    """Predictions and ground truth (token -> elements) over the first ``limit`` samples (0: all)."""
    was_training = model.training
    model.eval()
    count = len(dataset) if limit <= 0 else min(limit, len(dataset))
    predictions, ground_truth = {}, {}
    cfg = model.config
    for start in tqdm(range(0, count, batch_size), desc="evaluate", unit="batch", disable=not progress, leave=False):
        samples = [dataset[i] for i in range(start, min(start + batch_size, count))]
        batch = to_device(model_inputs(samples, cfg, model.grid), device)
        outputs = model(batch)
        for sample, elements in zip(samples, decode(outputs["logits"], outputs["points"], model.grid), strict=True):
            predictions[sample.token] = elements
            ground_truth[sample.token] = list(sample.ground_truth)
    model.train(was_training)
    return predictions, ground_truth


def evaluate_model(model: MapModel, dataset: Dataset, device: torch.device, limit: int = 0) -> EvalResult:
    """Chamfer AP of ``model`` on ``dataset``."""
    predictions, ground_truth = predict_dataset(model, dataset, device, limit=limit)
    return evaluate_vectors(predictions, ground_truth)
