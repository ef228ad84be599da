"""MapTR-protocol evaluation of vector maps: Chamfer-distance AP at 0.5 / 1.0 / 1.5 m."""

from mapdistill_core.errors import MapFileError
from mapdistill_core.metrics.evaluate import THRESHOLDS, EvalResult, evaluate_vectors, format_table
from mapdistill_core.metrics.maptr_json import load_ground_truth, load_predictions

__all__ = [
    "THRESHOLDS",
    "EvalResult",
    "MapFileError",
    "evaluate_vectors",
    "format_table",
    "load_ground_truth",
    "load_predictions",
]
