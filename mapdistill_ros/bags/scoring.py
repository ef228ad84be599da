"""Scoring a drive's predictions against its ground truth, frame by frame, paired by stamp.

Used alike by offline replay and the live evaluator node: ``pair_by_stamp`` pairs each
ground-truth frame with the nearest prediction (cameras fire up to ~50 ms apart from the LiDAR key
frame that stamps nuScenes' ground truth), ``score`` is the MapTR Chamfer AP over the pairs,
``ground_truth_for_predictions`` keys the ground truth like the predictions for MapTR's JSON, and
``StampedFrames`` collects MapElementArray messages by stamp as they arrive; ``metrics_document``
is the one layout of metrics.json (both write it) and ``metrics_text`` the console form of it.
"""

from __future__ import annotations

from collections.abc import Callable

from mapdistill_core.map_elements import MapElement
from mapdistill_core.metrics import EvalResult, evaluate_vectors, format_table
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


def metrics_document(
    meta: dict,
    metrics: dict | None,
    no_metrics_reason: str | None,
    *,
    predictions: int,
    ground_truth: int,
    processed: int | None = None,
    dropped: dict | None = None,
    skipped_messages: dict | None = None,
    missing_camera_topics: list | None = None,
    unscored_predictions: int | None = None,
    latency_ms: dict | None = None,
) -> dict:
    """metrics.json, one layout for ``mapdistill replay`` and the live evaluator; a field the writer
    cannot know is null (the evaluator sees no stage latencies, replay no skipped messages).

    Keys: meta; metrics (``score``'s dict) or null with no_metrics_reason; frames {predictions,
    ground_truth, processed, dropped}; skipped_messages; missing_camera_topics; unscored_predictions;
    latency_ms {stage: {p50, p95}}.
    """
    return {
        "meta": meta,
        "metrics": metrics,
        "no_metrics_reason": None if metrics else no_metrics_reason,
        "frames": {
            "predictions": predictions,
            "ground_truth": ground_truth,
            "processed": processed,
            "dropped": dropped,
        },
        "skipped_messages": skipped_messages,
        "missing_camera_topics": missing_camera_topics,
        "unscored_predictions": unscored_predictions,
        "latency_ms": latency_ms,
    }


def metrics_text(document: dict) -> str:
    """What a person reads of metrics.json on the console: frames, drops, latencies, the AP table."""
    frames = document["frames"]
    lines = []
    if frames["processed"] is not None:
        lines.append(f"{frames['processed']} camera sets processed, dropped: {frames['dropped'] or 'none'}")
    for name, stage in (document["latency_ms"] or {}).items():
        if stage["p50"] is not None:
            lines.append(f"  {name:<12} p50 {stage['p50']:7.1f} ms   p95 {stage['p95']:7.1f} ms")
    skipped = {what: n for what, n in (document["skipped_messages"] or {}).items() if n}
    if skipped:
        lines.append("skipped messages: " + ", ".join(f"{n} {what}" for what, n in skipped.items()))
    m = document["metrics"]
    if m is None:
        lines.append(f"no metric: {document['no_metrics_reason']} ({frames['predictions']} predicted frames)")
    else:
        lines.append(
            f"Chamfer AP on {m['paired']} of {m['ground_truth']} ground-truth frames "
            f"({frames['predictions']} predicted frames received):"
        )
        lines.append(format_table(EvalResult(m["AP"], m["mAP"], m["counts"])))
    return "\n".join(lines)
