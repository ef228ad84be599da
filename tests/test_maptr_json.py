"""Reading MapTR JSON files: round trip and clear errors for bad input."""

import json

import numpy as np
import pytest

from mapdistill_core.errors import MapFileError
from mapdistill_core.metrics import load_ground_truth, load_predictions
from mapdistill_core.metrics.maptr_json import ground_truth_document, predictions_document
from tests.metric_cases import hline

GOOD_VEC = {"pts": [[0, 0], [1, 0]], "pts_num": 2, "cls_name": "divider", "type": 0, "confidence_level": 0.5}


def write_pred(tmp_path, vectors, token="tok-1"):
    path = tmp_path / "pred.json"
    path.write_text(json.dumps({"meta": {}, "results": [{"sample_token": token, "vectors": vectors}]}))
    return path


def test_round_trip(tmp_path):
    samples = {"a": [hline(0.0, score=0.25), hline(3.0, cls=2, score=0.75)], "b": []}
    (tmp_path / "p.json").write_text(json.dumps(predictions_document(samples, {"source": "test"})))
    (tmp_path / "g.json").write_text(json.dumps(ground_truth_document(samples)))
    pred, gt = load_predictions(tmp_path / "p.json"), load_ground_truth(tmp_path / "g.json")
    assert list(pred.samples) == ["a", "b"] and list(gt.samples) == ["a", "b"]
    for loaded, score in ((pred, 0.75), (gt, 1.0)):
        e = loaded.samples["a"][1]
        assert e.class_id == 2 and e.score == score
        np.testing.assert_array_equal(e.points, samples["a"][1].points)


def test_class_from_type_or_name(tmp_path):
    only_type = {"pts": [[0, 0], [1, 0]], "type": 2, "confidence_level": 0.5}
    only_name = {"pts": [[0, 0], [1, 0]], "cls_name": "ped_crossing", "confidence_level": 0.5}
    loaded = load_predictions(write_pred(tmp_path, [only_type, only_name]))
    assert [e.class_id for e in loaded.samples["tok-1"]] == [2, 1]


def test_short_prediction_is_skipped_and_counted(tmp_path):
    short = dict(GOOD_VEC, pts=[[0, 0]], pts_num=1)
    loaded = load_predictions(write_pred(tmp_path, [short, GOOD_VEC, dict(short, pts=[], pts_num=0)]))
    assert loaded.skipped_short == 2
    assert len(loaded.samples["tok-1"]) == 1


@pytest.mark.parametrize(
    "vector, message",
    [
        ({k: v for k, v in GOOD_VEC.items() if k != "pts"}, r"tok-1'.*vectors\[0\]: missing field 'pts'"),
        (dict(GOOD_VEC, pts=[[0, "x"], [1, 0]]), r"tok-1'.*vectors\[0\]\.pts: expected a list of \[x, y\] numbers"),
        (dict(GOOD_VEC, pts=[[0, 0, 0], [1, 0, 0]]), r"vectors\[0\]\.pts: expected a list of \[x, y\] pairs"),
        (dict(GOOD_VEC, pts=[[0, 0], [float("nan"), 0]]), r"tok-1'.*vectors\[0\]\.pts\[1\]: .*NaN or infinite"),
        (dict(GOOD_VEC, pts=[[0, 0], [float("inf"), 0]]), r"vectors\[0\]\.pts\[1\]: .*NaN or infinite"),
        (dict(GOOD_VEC, type=7, cls_name=None), r"tok-1'.*vectors\[0\]\.type: unknown class id 7"),
        (dict(GOOD_VEC, type=None, cls_name="lane"), r"vectors\[0\]\.cls_name: unknown class 'lane'"),
        (dict(GOOD_VEC, type=1), r"vectors\[0\]: 'type' 1 and 'cls_name' 'divider' disagree"),
        ({"pts": [[0, 0], [1, 0]], "confidence_level": 0.5}, r"missing field 'type' \(class id\) or 'cls_name'"),
        ({k: v for k, v in GOOD_VEC.items() if k != "confidence_level"}, r"missing field 'confidence_level'"),
        (dict(GOOD_VEC, confidence_level=float("nan")), r"\.confidence_level: expected a finite number"),
        (dict(GOOD_VEC, pts_num=3), r"\.pts_num: says 3 but 'pts' has 2 points"),
        ("not a dict", r"vectors\[0\]: expected an object"),
    ],
)
def test_bad_vector_names_sample_and_field(tmp_path, vector, message):
    vector = {k: v for k, v in vector.items() if v is not None} if isinstance(vector, dict) else vector
    with pytest.raises(MapFileError, match=message):
        load_predictions(write_pred(tmp_path, [GOOD_VEC, vector][1:]))


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", r"pred\.json: not valid JSON"),
        ("[]", r"expected a JSON object with the field 'results'"),
        ('{"results": {}}', r"field 'results' must be a list"),
        ('{"results": [{"vectors": []}]}', r"results\[0\]: missing or non-string field 'sample_token'"),
        ('{"results": [{"sample_token": "t"}]}', r"sample 't': missing field 'vectors'"),
        (
            '{"results": [{"sample_token": "t", "vectors": []}, {"sample_token": "t", "vectors": []}]}',
            r"sample 't' appears twice",
        ),
    ],
)
def test_bad_file_structure(tmp_path, content, message):
    path = tmp_path / "pred.json"
    path.write_text(content)
    with pytest.raises(MapFileError, match=message):
        load_predictions(path)


def test_missing_file_and_short_ground_truth(tmp_path):
    with pytest.raises(MapFileError, match="no such file"):
        load_ground_truth(tmp_path / "nope.json")
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"GTs": [{"sample_token": "g", "vectors": [{"pts": [[0, 0]], "type": 0}]}]}))
    with pytest.raises(MapFileError, match=r"sample 'g': vectors\[0\]\.pts: a ground-truth element needs at least 2"):
        load_ground_truth(path)
