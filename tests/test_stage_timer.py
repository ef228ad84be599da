"""Stage latencies, counters and the DiagnosticArray the node publishes once a second."""

import numpy as np
import pytest

from mapdistill_ros.bags.typestore import MessageFactory
from mapdistill_ros.online.frame_sync import SUPERSEDED, TOO_FEW_CAMERAS
from mapdistill_ros.online.stage_timer import DIAGNOSTIC_NAME, STAGES, StageTimer, diagnostic_array

F = MessageFactory()


def test_percentiles_match_numpy_over_the_ring_buffer():
    timer = StageTimer(window=50)
    times = np.random.default_rng(1).gamma(2.0, 10.0, 80)
    for t in times:
        timer.record("inference", float(t))
    stats = timer.summary()["stages"]["inference"]
    assert stats["count"] == 50  # only the last 50 are kept
    assert stats["p50_ms"] == pytest.approx(np.percentile(times[-50:], 50))
    assert stats["p95_ms"] == pytest.approx(np.percentile(times[-50:], 95))
    assert timer.summary()["stages"]["decode"] == {"count": 0, "p50_ms": None, "p95_ms": None}


def test_known_values():
    timer = StageTimer()
    for t in range(1, 101):
        timer.record("decode", float(t))
    stats = timer.summary()["stages"]["decode"]
    assert (stats["p50_ms"], stats["p95_ms"]) == (50.5, pytest.approx(95.05))


def test_stage_context_times_the_body_and_skips_failures():
    timer = StageTimer()
    with timer.stage("publish"):
        pass
    with pytest.raises(RuntimeError), timer.stage("publish"):
        raise RuntimeError("frame failed")
    assert timer.summary()["stages"]["publish"]["count"] == 1
    with pytest.raises(ValueError, match="unknown stage 'encode'"):
        timer.record("encode", 1.0)


def test_counters():
    timer = StageTimer()
    timer.frame_done(["CAM_BACK"])
    timer.frame_done()
    timer.drop(SUPERSEDED)
    timer.drop(SUPERSEDED)
    timer.drop("error")
    summary = timer.summary()
    assert summary["frames"] == 2 and summary["missing"] == []
    assert summary["dropped"] == {SUPERSEDED: 2, "error": 1}
    assert list(summary["stages"]) == list(STAGES)


def values(array) -> dict:
    (status,) = array.status
    return {kv.key: kv.value for kv in status.values}


def test_diagnostic_array_ok():
    timer = StageTimer()
    for stage in STAGES:
        timer.record(stage, 2.0)
    timer.frame_done()
    timer.drop(SUPERSEDED)  # inference slower than the cameras: normal, still OK
    array = diagnostic_array(F, timer.summary(), None, 5_000_000_123)
    (status,) = array.status
    assert array.__msgtype__ == "diagnostic_msgs/msg/DiagnosticArray"
    assert (array.header.stamp.sec, array.header.stamp.nanosec) == (5, 123)
    assert status.level == type(status).OK and status.message == "ok"
    assert status.name == DIAGNOSTIC_NAME == "mapdistill: online map"
    kv = values(array)
    assert kv["frames"] == "1" and kv["frames_since_last_report"] == "1" and kv["dropped_superseded"] == "1"
    assert kv["missing_cameras"] == ""
    assert all(kv[f"{stage}_{p}_ms"] == "2.0" for stage in STAGES for p in ("p50", "p95"))


def test_diagnostic_array_warns_on_drops_missing_cameras_and_no_frames():
    timer = StageTimer()
    timer.frame_done(["CAM_BACK", "CAM_FRONT_LEFT"])
    timer.drop(TOO_FEW_CAMERAS)
    first = timer.summary()
    (status,) = diagnostic_array(F, first, None, 0).status
    assert status.level == type(status).WARN
    assert status.message == "dropped 1 too_few_cameras; missing CAM_BACK, CAM_FRONT_LEFT"
    assert values(diagnostic_array(F, first, None, 0))["inference_p50_ms"] == "-"
    (status,) = diagnostic_array(F, first, first, 0).status  # nothing new since the last report
    assert status.level == type(status).WARN
    assert status.message.startswith("no frame processed")
    assert "too_few_cameras" not in status.message
