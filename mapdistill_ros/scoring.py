"""Scoring a drive's predictions against its ground truth, frame by frame, paired by stamp.

Used alike by offline replay and the live evaluator node: ``pair_by_stamp`` pairs each
ground-truth frame with the nearest prediction (cameras fire up to ~50 ms apart from the LiDAR key
frame that stamps nuScenes' ground truth), ``score`` is the MapTR Chamfer AP over the pairs,
``ground_truth_for_predictions`` keys the ground truth like the predictions for MapTR's JSON, and
``StampedFrames`` collects MapElementArray messages by stamp as they arrive.
"""

from __future__ import annotations

from collections.abc import Callable

from mapdistill_core.map_elements import MapElement
from mapdistill_core.metrics import evaluate_vectors
from mapdistill_ros import messages

PAIR_TOLERANCE_NS = 250_000_000


def pair_by_stamp(targets: list[int], candidates: list[int], tolerance_ns: int = PAIR_TOLERANCE_NS) -> dict[int, int]:
    """Each target stamp -> the nearest candidate stamp within ``tolerance_ns``, each candidate used
    at most once (targets in time order take the nearest free one)."""
    free, pairs = sorted(candidates), {}
    for target in sorted(targets):
        near = [c for c in free if abs(c - target) <= tolerance_ns]
        if near:
            best = min(near, key=lambda c: abs(c - target))
            pairs[target] = best
            free.remove(best)
    return pairs


def score(predictions: dict[int, list[MapElement]], ground_truth: dict[int, list[MapElement]]) -> dict:
    """MapTR Chamfer AP of the predictions paired with each ground-truth stamp (unpaired ground truth
    counts as a frame with no predictions; predictions without ground truth in reach are not scored);
    keys: {"mAP", "AP", "counts", "paired", "ground_truth"}."""
    pairs = pair_by_stamp(list(ground_truth), list(predictions))
    result = evaluate_vectors(
        {str(t): predictions[p] for t, p in pairs.items()}, {str(t): e for t, e in ground_truth.items()}
    ).to_dict()
    return {**result, "paired": len(pairs), "ground_truth": len(ground_truth)}


def ground_truth_for_predictions(
    predictions: dict[int, list[MapElement]], ground_truth: dict[int, list[MapElement]]
) -> tuple[dict[str, list[MapElement]], int]:
    """The ground truth keyed by the token (stamp) of the prediction paired with each frame, its own
    stamp where none is, so MapTR's evaluation of the two files gives ``score``'s AP; and how many
    predictions have no ground truth in reach (not scored)."""
    pairs = pair_by_stamp(list(ground_truth), list(predictions))
    keyed = {str(pairs.get(stamp, stamp)): elements for stamp, elements in ground_truth.items()}
    return keyed, len(predictions) - len(pairs)


class StampedFrames:
    """Elements of MapElementArray messages by stamp; a message the metric cannot use is skipped and
    counted (``skipped``), and ``add`` returns why, for the caller to log."""

    def __init__(self, read: Callable = messages.elements_from_message):
        self.read = read
        self.frames: dict[int, list[MapElement]] = {}
        self.skipped = 0

    def add(self, message) -> str | None:
        stamp = messages.stamp_ns(message.header.stamp)
        try:
            self.frames[stamp] = self.read(message)
        except ValueError as e:
            self.skipped += 1
            return f"skipped the message at {stamp} ns: {e}"
        return None
