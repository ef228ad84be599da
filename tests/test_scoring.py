"""Scoring by stamp, as replay and the live evaluator do: each ground-truth frame with its own frame's
predictions (a hand-made drive where any other pairing scores 0), MapTR JSON keyed alike."""

from __future__ import annotations

from mapdistill_core.metrics import evaluate_vectors
from mapdistill_ros import messages
from mapdistill_ros.bags.scoring import StampedFrames, ground_truth_for_predictions, pair_by_stamp, score
from mapdistill_ros.bags.typestore import MessageFactory
from tests.metric_cases import hline

MS = 1_000_000
GT_STAMPS = [1_000 * MS, 1_500 * MS, 2_000 * MS]


def frames():
    """Three ground-truth frames whose dividers lie 4 m apart from frame to frame (farther than any
    Chamfer threshold), and perfect predictions stamped 30 ms later (cameras after the LiDAR)."""
    ground_truth = {t: [hline(4.0 * k - 4.0), hline(4.0 * k - 2.0, cls=2)] for k, t in enumerate(GT_STAMPS)}
    predictions = {
        t + 30 * MS: [hline(e.points[0, 1], cls=e.class_id, score=0.9) for e in elements]
        for t, elements in ground_truth.items()
    }
    return predictions, ground_truth


def test_each_frame_is_scored_against_its_own_predictions():
    predictions, ground_truth = frames()
    result = score(predictions, ground_truth)
    assert result["mAP"] == 1.0 and result["paired"] == 3 and result["ground_truth"] == 3
    shifted = dict(zip(list(predictions)[1:] + list(predictions)[:1], predictions.values(), strict=True))
    assert score(shifted, ground_truth)["mAP"] == 0.0  # the neighbours' predictions are 4 m off


def test_pairing_takes_the_nearest_free_stamp_within_the_tolerance():
    assert pair_by_stamp([100, 200, 1_000], [105, 190, 195, 5_000], tolerance_ns=20) == {100: 105, 200: 195}
    predictions, ground_truth = frames()
    first = GT_STAMPS[0]
    late = {first + 260 * MS: predictions[first + 30 * MS]}  # 260 ms after its frame: beyond 250 ms
    result = score(late, {first: ground_truth[first]})
    assert result["paired"] == 0 and result["mAP"] == 0.0


def test_ground_truth_keyed_like_the_predictions_gives_the_same_ap_in_maptr_json():
    predictions, ground_truth = frames()
    predictions[5_000 * MS] = [hline(0.0, score=0.5)]  # no ground truth in reach: not scored
    keyed, unscored = ground_truth_for_predictions(predictions, ground_truth)
    assert sorted(keyed) == [str(t + 30 * MS) for t in GT_STAMPS] and unscored == 1
    scored = {t: e for t, e in predictions.items() if str(t) in keyed}
    maptr = evaluate_vectors({str(t): e for t, e in scored.items()}, keyed)
    assert maptr.mean_ap == score(predictions, ground_truth)["mAP"] == 1.0


def test_stamped_frames_keep_messages_by_stamp_and_count_what_the_metric_cannot_use():
    f = MessageFactory()
    predictions, ground_truth = frames()
    collected = StampedFrames(messages.ground_truth_from_message)
    for stamp, elements in ground_truth.items():
        assert collected.add(messages.map_element_array(f, elements, stamp, "base_link")) is None
    bad = messages.map_element_array(f, [hline(0.0)], 3_000 * MS, "base_link")
    bad.elements[0].points = bad.elements[0].points[:1]  # one point: no line to score
    problem = collected.add(bad)
    assert problem.startswith(f"skipped the message at {3_000 * MS} ns:") and collected.skipped == 1
    assert sorted(collected.frames) == GT_STAMPS
    assert score(predictions, collected.frames)["mAP"] == 1.0
