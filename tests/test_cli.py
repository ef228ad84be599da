"""The `mapdistill` command line: eval-vectors and plot-vectors on real files."""

import json
import subprocess
import sys

import matplotlib.image
import pytest

from mapdistill_core.cli import main
from mapdistill_core.metrics.maptr_json import ground_truth_document, predictions_document
from tests.metric_cases import hline


@pytest.fixture
def files(tmp_path):
    gt = {"a": [hline(0.0), hline(6.0, cls=2)], "b": [hline(-4.0, cls=1)]}
    pred = {"a": [hline(0.2, score=0.9), hline(6.0, cls=2, score=0.8)], "b": [hline(-5.2, cls=1, score=0.7)]}
    pred_doc = predictions_document(pred)
    pred_doc["results"][0]["vectors"].append({"pts": [[1.0, 1.0]], "type": 0, "confidence_level": 0.1})
    (tmp_path / "pred.json").write_text(json.dumps(pred_doc))
    (tmp_path / "gt.json").write_text(json.dumps(ground_truth_document(gt)))
    return tmp_path


def test_eval_vectors_prints_table_and_writes_json(files, capsys, caplog):
    out = files / "res" / "result.json"
    assert (
        main(["eval-vectors", "--pred", str(files / "pred.json"), "--gt", str(files / "gt.json"), "--out", str(out)])
        == 0
    )
    table = capsys.readouterr().out
    assert "divider" in table and "mAP" in table
    assert "skipped 1 predicted element(s) with fewer than 2 points" in caplog.text
    result = json.loads(out.read_text())
    assert set(result) == {"mAP", "AP", "counts", "meta"}
    # ped_crossing is 1.2 m off: a miss at 0.5 and 1.0, a hit at 1.5.
    assert result["AP"]["ped_crossing"] == {"0.5": 0.0, "1.0": 0.0, "1.5": 1.0, "mean": pytest.approx(1 / 3)}
    assert result["AP"]["divider"]["mean"] == 1.0 and result["AP"]["boundary"]["mean"] == 1.0
    assert result["mAP"] == pytest.approx((1 + 1 + 1 / 3) / 3)
    assert result["counts"]["divider"] == {"gt": 1, "pred": 1}
    assert result["meta"]["skipped_short_predictions"] == 1
    assert result["meta"]["pred"].endswith("pred.json") and "git_revision" in result["meta"]


def test_eval_vectors_reports_the_operating_point_at_a_score(files, capsys):
    out = files / "result.json"
    args = ["eval-vectors", "--pred", str(files / "pred.json"), "--gt", str(files / "gt.json"), "--out", str(out)]
    assert main([*args, "--score-threshold", "0.75"]) == 0
    table = capsys.readouterr().out
    assert "Predictions scoring >= 0.75: precision / recall (%)" in table
    at_score = json.loads(out.read_text())["at_score"]
    assert at_score["divider"] == {
        "kept": 1,
        "precision": dict.fromkeys(("0.5", "1.0", "1.5"), 1.0),
        "recall": dict.fromkeys(("0.5", "1.0", "1.5"), 1.0),
        "f1": dict.fromkeys(("0.5", "1.0", "1.5"), 1.0),
    }
    assert at_score["ped_crossing"]["kept"] == 0  # its only prediction scores 0.7
    # divider and boundary 1, ped_crossing 0 at every threshold: 2 / 3
    assert at_score["mean_f1"] == pytest.approx(dict.fromkeys(("0.5", "1.0", "1.5"), 2 / 3))
    assert "F1 (mean)".ljust(14) + "66.7".rjust(13) * 3 in table


def test_eval_vectors_bad_input_is_a_clear_error(files, capsys):
    bad = files / "bad.json"
    bad.write_text(json.dumps({"results": [{"sample_token": "zzz", "vectors": []}]}))
    assert main(["eval-vectors", "--pred", str(bad), "--gt", str(files / "gt.json")]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "sample 'zzz'" in err and "bad.json" in err and "Traceback" not in err


def test_plot_vectors_writes_png(files):
    out = files / "bev.png"
    assert (
        main(
            [
                "plot-vectors",
                "--pred",
                str(files / "pred.json"),
                "--gt",
                str(files / "gt.json"),
                "--token",
                "a",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    image = matplotlib.image.imread(out)
    assert image.ndim == 3 and image.shape[0] > image.shape[1] > 100  # portrait: x forward is up


def test_plot_vectors_unknown_token(files, capsys):
    assert (
        main(
            [
                "plot-vectors",
                "--pred",
                str(files / "pred.json"),
                "--gt",
                str(files / "gt.json"),
                "--token",
                "nope",
                "--out",
                str(files / "x.png"),
            ]
        )
        == 2
    )
    assert "no sample with token 'nope'" in capsys.readouterr().err


def test_console_script_help():
    out = subprocess.run(
        [sys.executable, "-m", "mapdistill_core.cli", "eval-vectors", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--pred" in out and "MapTR" in out
