"""Chamfer AP under the MapTR protocol: hand-computed cases and agreement with the plain reference."""

import numpy as np
import pytest

from mapdistill_core.errors import MapFileError
from mapdistill_core.map_elements import MapElement
from mapdistill_core.metrics import evaluate_vectors
from mapdistill_core.metrics.average_precision import assign_true_positives, average_precision, precision_recall_at
from mapdistill_core.metrics.chamfer import (
    NON_CANDIDATE,
    bounding_box_gap,
    buffers_intersect,
    chamfer_matrix,
    paired_chamfer,
    paired_chamfer_lower_bound,
    score_matrix,
)
from mapdistill_core.metrics.reference import reference_mean_ap
from tests.metric_cases import hline, random_scene


def test_perfect_predictions_give_ap_one():
    gt = {"a": [hline(0.0), hline(5.0, cls=2), hline(-3.0, cls=1)], "b": [hline(2.0), hline(-7.0, cls=2)]}
    pred = {t: [hline(e.points[0, 1], cls=e.class_id, score=0.9) for e in es] for t, es in gt.items()}
    result = evaluate_vectors(pred, gt)
    assert result.mean_ap == pytest.approx(1.0)
    for name in ("divider", "ped_crossing", "boundary"):
        assert result.ap[name] == pytest.approx({"0.5": 1.0, "1.0": 1.0, "1.5": 1.0, "mean": 1.0})
    assert result.counts["divider"] == {"gt": 2, "pred": 2}


def test_no_predictions_give_zero():
    result = evaluate_vectors({}, {"a": [hline(0.0)]})
    assert result.mean_ap == 0.0
    assert result.ap["divider"]["mean"] == 0.0
    assert result.counts["divider"] == {"gt": 1, "pred": 0}


def test_duplicate_is_a_false_positive():
    # Two gts; predictions in confidence order: A, duplicate of A, B  ->  TP, FP, TP.
    gt = {"s": [hline(0.0), hline(8.0)]}
    pred = {"s": [hline(0.0, score=0.9), hline(0.0, score=0.8), hline(8.0, score=0.7)]}
    result = evaluate_vectors(pred, gt)
    # recall 0.5, 0.5, 1.0; precision 1, 1/2, 2/3  ->  AP = 0.5 * 1 + 0.5 * 2/3.
    assert result.ap["divider"]["0.5"] == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_average_precision_by_hand():
    conf = np.array([0.9, 0.8, 0.7, 0.6])
    tp = np.array([True, False, False, True])
    # recall .25 .25 .25 .5, precision 1 .5 .33 .5  ->  envelope: .25 * 1 + .25 * .5.
    assert average_precision(conf, tp, num_gt=4) == pytest.approx(0.375)
    # Order comes from the confidences, not from the input order.
    assert average_precision(conf[::-1].copy(), tp[::-1].copy(), num_gt=4) == pytest.approx(0.375)
    assert average_precision(conf, tp, num_gt=0) == 0.0


def test_average_precision_takes_the_precision_envelope():
    # TP, FP, TP, TP against 4 ground truths: recall .25 .25 .5 .75, precision 1 .5 .67 .75. The
    # envelope lifts recall .5 to precision .75 (the best at any higher recall): .25 * (1 + .75 + .75)
    # = 0.625; without it .25 * (1 + 2/3 + .75) = 0.604.
    conf = np.array([0.9, 0.8, 0.7, 0.6])
    assert average_precision(conf, np.array([True, False, True, True]), num_gt=4) == pytest.approx(0.625)
    # a false positive after the last true positive changes nothing; a missed ground truth caps recall
    assert average_precision(np.array([0.9, 0.5]), np.array([True, False]), num_gt=1) == pytest.approx(1.0)
    assert average_precision(np.array([0.9, 0.5]), np.array([False, True]), num_gt=2) == pytest.approx(0.25)


def test_operating_point_keeps_only_confident_predictions():
    # A (TP), a duplicate of A (FP), then B 0.7 m off its ground truth: a miss at 0.5 m, a hit at 1.0 m.
    gt = {"s": [hline(0.0), hline(8.0)]}
    pred = {"s": [hline(0.0, score=0.9), hline(0.0, score=0.8), hline(8.7, score=0.3), hline(3.0, cls=1, score=0.9)]}
    strict = evaluate_vectors(pred, gt, min_score=0.5).at_score
    assert strict["score"] == 0.5 and strict["divider"]["kept"] == 2
    assert strict["divider"]["precision"] == {"0.5": 0.5, "1.0": 0.5, "1.5": 0.5}
    assert strict["divider"]["recall"] == {"0.5": 0.5, "1.0": 0.5, "1.5": 0.5}
    assert strict["ped_crossing"] is None  # no ground truth of that class
    loose = evaluate_vectors(pred, gt, min_score=0.2).at_score["divider"]
    assert loose["kept"] == 3
    assert loose["precision"] == pytest.approx({"0.5": 1 / 3, "1.0": 2 / 3, "1.5": 2 / 3})
    assert loose["recall"] == {"0.5": 0.5, "1.0": 1.0, "1.5": 1.0}
    assert loose["f1"] == pytest.approx({"0.5": 0.4, "1.0": 0.8, "1.5": 0.8})  # 2pr / (p + r)
    assert strict["mean_f1"] == pytest.approx({"0.5": 0.5, "1.0": 0.5, "1.5": 0.5})  # the divider only
    plain = evaluate_vectors(pred, gt)
    assert plain.at_score == {} and "at_score" not in plain.to_dict()
    assert evaluate_vectors(pred, gt, min_score=0.5).ap == plain.ap


def test_operating_point_by_hand():
    conf = np.array([0.9, 0.8, 0.7, 0.6])
    tp = np.array([True, False, True, True])
    assert precision_recall_at(conf, tp, num_gt=5, min_score=0.7) == pytest.approx((2 / 3, 2 / 5))
    assert precision_recall_at(conf, tp, num_gt=5, min_score=0.95) == (0.0, 0.0)
    assert precision_recall_at(conf, tp, num_gt=0, min_score=0.0) == (0.75, 0.0)


def test_reversed_polyline_has_the_same_chamfer_distance():
    rng = np.random.default_rng(1)
    a = np.cumsum(rng.normal(size=(1, 100, 2)), axis=1)
    b = np.cumsum(rng.normal(size=(1, 100, 2)), axis=1)
    assert chamfer_matrix(a, a[:, ::-1])[0, 0] == 0.0
    assert chamfer_matrix(a, b[:, ::-1])[0, 0] == pytest.approx(chamfer_matrix(a, b)[0, 0])
    reversed_pred = MapElement(0, hline(0.3).points[::-1], 0.5)
    assert evaluate_vectors({"s": [reversed_pred]}, {"s": [hline(0.0)]}).ap["divider"]["0.5"] == 1.0


@pytest.mark.parametrize("threshold", [0.5, 1.0, 1.5])
def test_just_inside_and_just_outside_each_threshold(threshold):
    # A parallel line at lateral offset d has Chamfer distance exactly d.
    for offset, expect_tp in [(threshold - 0.01, True), (threshold + 0.01, False)]:
        result = evaluate_vectors({"s": [hline(offset, score=0.5)]}, {"s": [hline(0.0)]})
        assert result.ap["divider"][f"{threshold:.1f}"] == (1.0 if expect_tp else 0.0), offset


def test_buffer_gate_flat_caps_and_far_lines():
    a = hline(0.0, 0.0, 10.0, num=100).points[None]
    others = np.stack([hline(y, x0, x1, num=100).points for y, x0, x1 in [(3.9, 0, 10), (4.1, 0, 10), (0, 10.3, 20)]])
    # 3.9 m apart touch, 4.1 m apart do not; flat caps: collinear lines with a 0.3 m gap do not touch.
    assert buffers_intersect(a, others, np.zeros(3, int), np.arange(3)).tolist() == [True, False, False]
    crossing = np.array([[[5.0, -3.0], [5.0, 3.0]]])
    assert buffers_intersect(a, crossing, np.zeros(1, int), np.zeros(1, int)).tolist() == [True]
    far = hline(30.0, num=100).points[None]
    assert score_matrix(hline(0.0, num=100).points[None], far, 1.5)[0, 0] < -1.5


def test_chamfer_lower_bound_holds():
    rng = np.random.default_rng(3)
    a = np.cumsum(rng.normal(size=(50, 100, 2)), axis=1)
    b = np.cumsum(rng.normal(size=(50, 100, 2)), axis=1) + rng.normal(0, 5, (50, 1, 2))
    chamfer = paired_chamfer(a, b)
    assert np.all(paired_chamfer_lower_bound(a, b) <= chamfer + 1e-12)
    assert np.all(bounding_box_gap(a, b).diagonal() <= chamfer + 1e-12)
    np.testing.assert_allclose(chamfer, np.diagonal(chamfer_matrix(a, b)))


def test_gate_rejects_a_pair_within_the_chamfer_threshold():
    # pred on x in [0, 1], gt on x in [1.3, 2.3], same line: Chamfer 0.8 m but the flat-capped
    # buffers are disjoint, so MapTR never matches them, even at 1.0 m and 1.5 m.
    pred, gt = hline(0.0, 0.0, 1.0, score=0.9), hline(0.0, 1.3, 2.3)
    assert chamfer_matrix(pred.points[None], gt.points[None])[0, 0] == pytest.approx(0.8, abs=0.01)
    assert score_matrix(pred.points[None], gt.points[None], 1.5)[0, 0] == NON_CANDIDATE
    result = evaluate_vectors({"s": [pred]}, {"s": [gt]})
    assert result.ap["divider"] == {"0.5": 0.0, "1.0": 0.0, "1.5": 0.0, "mean": 0.0}


def test_each_prediction_takes_only_its_best_gt():
    # Both predictions are closest to gt A; the second is an FP although gt B is 0.6 m away.
    scores = np.array([[-0.1, -0.7], [-0.2, -0.6]])
    assert assign_true_positives(scores, np.array([0.9, 0.8]), 1.0).tolist() == [True, False]
    assert assign_true_positives(scores, np.array([0.7, 0.8]), 1.0).tolist() == [False, True]


def test_class_without_ground_truth_is_left_out_of_map():
    gt = {"s": [hline(0.0)]}
    pred = {"s": [hline(0.0, score=0.9), hline(4.0, cls=1, score=0.9)]}
    result = evaluate_vectors(pred, gt)
    assert result.ap["ped_crossing"] is None and result.ap["boundary"] is None
    assert result.counts["ped_crossing"] == {"gt": 0, "pred": 1}
    assert result.mean_ap == pytest.approx(1.0)


def test_samples_pair_by_token_not_order():
    gt = {"a": [hline(0.0)], "b": [hline(6.0)]}
    pred = {"b": [hline(6.0, score=0.8)], "a": [hline(0.0, score=0.9)]}
    assert evaluate_vectors(pred, gt).mean_ap == pytest.approx(1.0)


def test_prediction_for_unknown_sample_is_an_error():
    with pytest.raises(MapFileError, match="sample 'ghost'"):
        evaluate_vectors({"ghost": [hline(0.0)]}, {"a": [hline(0.0)]})


@pytest.mark.parametrize("seed", range(4))
def test_agrees_with_the_plain_reference(seed):
    rng = np.random.default_rng(seed)
    pred, gt = {}, {}
    for i in range(6):
        pred[f"s{i}"], gt[f"s{i}"] = random_scene(rng)
    gt["empty"] = []
    result = evaluate_vectors(pred, gt)
    ref_map, ref_ap = reference_mean_ap(pred, gt)
    assert result.mean_ap == pytest.approx(ref_map, abs=1e-12)
    for name, values in ref_ap.items():
        assert [result.ap[name][k] for k in ("0.5", "1.0", "1.5")] == pytest.approx(values, abs=1e-12)
    assert 0.0 < result.mean_ap < 1.0
