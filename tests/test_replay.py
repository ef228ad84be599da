"""Offline replay: a bag through the node's code path equals the inference entry point on the samples
(with tests/fixtures/seeing_student.safetensors, a model that sees its input)."""

from __future__ import annotations

import dataclasses
import json
import logging

import numpy as np
import pytest
import torch

from mapdistill_core.checkpoint import save_model
from mapdistill_core.cli import main as core_main
from mapdistill_core.data.batch import blank_cameras
from mapdistill_core.data.sample import CAMERA_NAMES, Sample
from mapdistill_core.errors import BagError
from mapdistill_core.inference import MapPredictor, model_inputs
from mapdistill_core.map_elements import CLASS_NAMES
from mapdistill_core.metrics import evaluate_vectors, load_ground_truth
from mapdistill_core.models.model import build_model
from mapdistill_ros import topics
from mapdistill_ros.bags.bag_reader import camera_topics, open_bag
from mapdistill_ros.bags.bag_writer import MapBagWriter
from mapdistill_ros.bags.replay import NODE_ELEMENTS, NODE_MARKERS, BagReplay, replay_bag
from mapdistill_ros.bags.scoring import metrics_document, metrics_text
from mapdistill_ros.bags.synthetic2bag import LIDAR_TO_EGO, bag_samples, sample_frame, write_synthetic_bag
from mapdistill_ros.bags.typestore import MessageFactory
from mapdistill_ros.cli import main
from mapdistill_ros.online.online_pipeline import OnlinePipeline
from mapdistill_ros.online.session import LIVE, OnlineMapSession
from mapdistill_ros.online.stage_timer import StageTimer
from tests.model_fixtures import TEACHER, WORLD
from tests.test_bags import read_bag

SCENES, SAMPLES = 2, 3


@pytest.fixture(scope="module")
def samples():
    return [s for drive in bag_samples(WORLD, "test", SCENES, SAMPLES) for s in drive]


@pytest.fixture(scope="module")
def png_bag(tmp_path_factory):
    path = tmp_path_factory.mktemp("bag") / "bag"
    write_synthetic_bag(WORLD, "test", SCENES, path, samples=SAMPLES, image_format="png")
    return path


def write_bag(path, samples, drop_cameras=(), ground_truth=True):
    """A synthetic bag with some camera topics left out (and optionally no ground truth)."""
    with MapBagWriter(path) as writer:
        rig = dict(zip(CAMERA_NAMES, samples[0].cam_to_ego, strict=True))
        writer.write_static(samples[0].timestamp_ns, {**rig, "LIDAR_TOP": LIDAR_TO_EGO})
        for sample in samples:
            frame = sample_frame(sample, "png")
            cameras = [c for c in frame.cameras if c.name not in drop_cameras]
            writer.write_frame(
                dataclasses.replace(frame, cameras=cameras, ground_truth=frame.ground_truth if ground_truth else None)
            )


def test_replay_equals_the_inference_entry_point_on_the_same_samples(png_bag, weights, samples, tmp_path):
    result = replay_bag(png_bag, weights, tmp_path / "out", device="cpu", min_cameras=6, pictures=False)
    predictor = MapPredictor.from_checkpoint(weights, "cpu")
    direct = {s.timestamp_ns: predictor.predict(s, 0.0)[0] for s in samples}
    assert sorted(result.predictions) == sorted(direct)
    for stamp, elements in direct.items():
        replayed = result.predictions[stamp]
        assert [e.class_id for e in replayed] == [e.class_id for e in elements]
        np.testing.assert_allclose([e.score for e in replayed], [e.score for e in elements], atol=1e-4)
        np.testing.assert_allclose(
            np.stack([e.points for e in replayed]), np.stack([e.points for e in elements]), atol=1e-3
        )
    ground_truth = {str(s.timestamp_ns): list(s.ground_truth) for s in samples}
    expected = evaluate_vectors({str(t): e for t, e in direct.items()}, ground_truth).to_dict()
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["metrics"]["counts"] == expected["counts"]
    assert expected["mAP"] > 0.1  # the fixture sees its input: a wrong frame or camera would show here
    assert metrics["metrics"]["mAP"] == pytest.approx(expected["mAP"], abs=1e-6)
    assert metrics["metrics"]["paired"] == len(samples)
    n = len(samples)
    assert metrics["frames"] == {"predictions": n, "ground_truth": n, "processed": n, "dropped": {}}
    assert metrics["skipped_messages"] is None  # replay skips no MapElementArray: the layout keeps the key
    assert metrics["latency_ms"]["inference"]["p50"] > 0
    submission = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert len(submission["results"]) == len(samples)
    assert metrics["unscored_predictions"] == 0
    written = load_ground_truth(tmp_path / "out" / "ground_truth.json").samples
    assert written.keys() == ground_truth.keys()
    for token, elements in ground_truth.items():
        assert [e.class_id for e in written[token]] == [e.class_id for e in elements]
        np.testing.assert_allclose(
            np.concatenate([e.points for e in written[token]]), np.concatenate([e.points for e in elements]), atol=1e-6
        )
    out = tmp_path / "out"
    args = ["eval-vectors", "--pred", str(out / "predictions.json"), "--gt", str(out / "ground_truth.json")]
    assert core_main([*args, "--out", str(tmp_path / "rescored.json")]) == 0
    rescored = json.loads((tmp_path / "rescored.json").read_text())
    assert (rescored["AP"], rescored["counts"]) == (metrics["metrics"]["AP"], metrics["metrics"]["counts"])


def test_predictions_bag_and_pictures(png_bag, weights, tmp_path):
    replay_bag(png_bag, weights, tmp_path / "out", device="cpu")
    bag, types = read_bag(tmp_path / "out" / "predictions")
    frames = SCENES * SAMPLES
    assert {t: len(v) for t, v in bag.items()} == {
        NODE_ELEMENTS: frames,
        NODE_MARKERS: frames,
        topics.GT_ELEMENTS: frames,
        topics.GT_MARKERS: frames,
    }
    assert types[NODE_ELEMENTS] == "mapdistill_ros/msg/MapElementArray"
    assert all(m.markers[0].action == 3 for _, m in bag[NODE_MARKERS])
    pictures = sorted(p.name for p in (tmp_path / "out" / "bev").iterdir())
    assert [p for p in pictures if p.endswith(".gif")] == ["scene00.gif", "scene01.gif"]
    assert len([p for p in pictures if p.endswith(".png")]) == frames


def test_a_missing_camera_topic_runs_degraded_with_a_warning(samples, weights, tmp_path, caplog):
    write_bag(tmp_path / "bag", samples[:SAMPLES], drop_cameras=("CAM_BACK",), ground_truth=False)
    with caplog.at_level(logging.WARNING, "mapdistill.replay"):
        result = replay_bag(tmp_path / "bag", weights, tmp_path / "out", device="cpu", pictures=False)
    assert result.missing_topics == ["CAM_BACK"]
    assert "CAM_BACK" in caplog.text
    assert len(result.predictions) == SAMPLES
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["metrics"] is None and "/map_gt/elements" in metrics["no_metrics_reason"]


def test_a_bag_without_cameras_is_a_clear_error(samples, weights, tmp_path, capsys):
    with MapBagWriter(tmp_path / "gt_only") as writer:
        writer.write_frame(dataclasses.replace(sample_frame(samples[0]), cameras=[]))
    with pytest.raises(BagError, match="no camera image topic.*/map_gt/elements"):
        replay_bag(tmp_path / "gt_only", weights, tmp_path / "out", device="cpu")
    code = main(["replay", str(tmp_path / "gt_only"), "--weights", str(weights), "--out", str(tmp_path / "o2")])
    assert code == 2 and "/LIDAR_TOP" in capsys.readouterr().err


def test_a_truncated_bag_is_a_clear_error_and_writes_nothing(png_bag, weights, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "metadata.yaml").write_bytes((png_bag / "metadata.yaml").read_bytes())
    (data,) = png_bag.glob("*.mcap")
    (broken / data.name).write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with pytest.raises(BagError, match="broken: not a readable rosbag2"):
        replay_bag(broken, weights, tmp_path / "out", device="cpu")
    assert not (tmp_path / "out").exists()


def test_replay_with_the_onnxruntime_backend_gives_the_torch_metrics(png_bag, weights, tmp_path):
    from mapdistill_core.export import export_onnx

    exported = export_onnx(weights, tmp_path / "student.onnx")
    by_torch = replay_bag(png_bag, weights, tmp_path / "torch", device="cpu", min_cameras=6, pictures=False)
    by_onnx = replay_bag(
        png_bag, exported, tmp_path / "onnx", device="cpu", min_cameras=6, pictures=False, backend="onnxruntime"
    )
    assert by_onnx.metrics["counts"] == by_torch.metrics["counts"]
    assert by_torch.metrics["mAP"] > 0.1 and by_onnx.metrics["mAP"] == pytest.approx(by_torch.metrics["mAP"], abs=1e-6)
    assert json.loads((tmp_path / "onnx" / "metrics.json").read_text())["meta"]["backend"] == "onnxruntime"


def test_a_bad_onnx_file_or_a_torch_only_option_is_one_clear_line(png_bag, tmp_path, capsys):
    (tmp_path / "garbage.onnx").write_bytes(b"not a model")
    args = ["replay", str(png_bag), "--backend", "onnxruntime", "--weights", str(tmp_path / "garbage.onnx")]
    assert main([*args, "--out", str(tmp_path / "out")]) == 2
    assert "garbage.onnx: onnxruntime cannot load it" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "out2"), "--config", "config/synthetic_student.yaml"]) == 2
    assert "--config applies to the torch backend" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "out3"), "--half", "--cuda-graphs"]) == 2
    assert "--half and --cuda-graphs apply to the torch backend" in capsys.readouterr().err


def test_a_teacher_replays_with_the_lidar_moved_into_the_ego_frame(png_bag, samples, tmp_path):
    """Teacher weights read /LIDAR_TOP beside the cameras: the bag's scans (in the LIDAR_TOP frame) end
    up where the samples' points are, so replay equals the entry point on the samples; without the
    LiDAR the outputs move by a hundred times that tolerance (the teacher uses the scan)."""
    torch.manual_seed(0)
    save_model(tmp_path / "teacher.safetensors", build_model(TEACHER))
    result = replay_bag(png_bag, tmp_path / "teacher.safetensors", tmp_path / "out", device="cpu", pictures=False)
    predictor = MapPredictor.from_checkpoint(tmp_path / "teacher.safetensors", "cpu")
    assert sorted(result.predictions) == sorted(s.timestamp_ns for s in samples)
    for sample in samples:
        replayed = np.stack([e.points for e in result.predictions[sample.timestamp_ns]])
        direct = np.stack([e.points for e in predictor.predict(sample, 0.0)[0]])
        blind = np.stack([e.points for e in predictor.predict(dataclasses.replace(sample, lidar=sample.lidar[:0]))[0]])
        np.testing.assert_allclose(replayed, direct, atol=1e-5)  # float32 round-trips of the scan only
        assert np.abs(blind - direct).max() > 1e-3  # the untrained teacher moves 3.7 mm without its scan


def test_teacher_weights_and_a_bag_without_lidar_is_one_line(samples, tmp_path, capsys):
    with MapBagWriter(tmp_path / "bag") as writer:
        writer.write_static(samples[0].timestamp_ns, dict(zip(CAMERA_NAMES, samples[0].cam_to_ego, strict=True)))
        for sample in samples:
            writer.write_frame(dataclasses.replace(sample_frame(sample, "png"), lidar=None))
    torch.manual_seed(0)
    save_model(tmp_path / "teacher.safetensors", build_model(TEACHER))
    args = ["replay", str(tmp_path / "bag"), "--weights", str(tmp_path / "teacher.safetensors")]
    assert main([*args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the weights are a teacher (cameras + LiDAR) and the bag has no /LIDAR_TOP" in err[0]


def test_replay_warms_the_model_up_before_it_times_any_frame(png_bag, weights, samples):
    predictor = MapPredictor.from_checkpoint(weights, "cpu")
    calls = []
    run = predictor.backend.__call__
    black = Sample(*blank_cameras(len(CAMERA_NAMES), predictor.config.image_size))
    blank = model_inputs([black], predictor.config, predictor.grid)["images"]

    class CountingBackend:  # the real backend, with its calls counted
        config, device, half = predictor.backend.config, predictor.backend.device, predictor.backend.half

        def __call__(self, batch):
            calls.append(bool((batch["images"] == blank).all()))  # a blank set or a real one
            return run(batch)

    predictor.backend = CountingBackend()
    replay = BagReplay(predictor, score_threshold=0.0, min_cameras=6)
    result = replay.run(png_bag)
    assert calls[:2] == [True, True] and not any(calls[2:])  # two blank warm-up sets first
    assert len(calls) == 2 + len(samples) == 2 + result.timing["stages"]["inference"]["count"]


def test_metrics_text_is_what_replay_and_the_live_evaluator_print():
    """One console form of metrics.json: the evaluator's document (no latencies, skipped messages)
    and replay's (latencies, drops) print through it alike."""
    ap = {c: {"0.5": 0.1, "1.0": 0.2, "1.5": 0.3, "mean": 0.2} for c in CLASS_NAMES}
    counts = {c: {"gt": 4, "pred": 5} for c in CLASS_NAMES}
    metrics = {"mAP": 0.2, "AP": ap, "counts": counts, "paired": 3, "ground_truth": 4}
    live = metrics_document({}, metrics, "x", predictions=5, ground_truth=4, skipped_messages={"prediction": 2})
    text = metrics_text(live)
    assert text.splitlines()[0] == "skipped messages: 2 prediction"
    assert "Chamfer AP on 3 of 4 ground-truth frames (5 predicted frames received):" in text
    assert text.splitlines()[-1].split() == ["mAP", "20.0"]
    latency = {"inference": {"p50": 12.0, "p95": 15.5}}
    offline = metrics_document({}, None, "bag has no /map_gt/elements", predictions=2, ground_truth=0,
                               processed=2, dropped={}, latency_ms=latency)  # fmt: skip
    assert metrics_text(offline).splitlines() == [
        "2 camera sets processed, dropped: none",
        "  inference    p50    12.0 ms   p95    15.5 ms",
        "no metric: bag has no /map_gt/elements (2 predicted frames)",
    ]


def test_replay_gives_what_a_live_session_gives_on_the_same_messages(png_bag, weights):
    """The node's side: a LIVE session fed the bag's messages in order, its worker keeping up (it
    takes each set as it is given out, 'now' the set's stamp), transforms found through a lookup as
    tf2 finds them; replay's REPLAY session on the same bag gives the same elements for every set."""
    predictor = MapPredictor.from_checkpoint(weights, "cpu")
    replayed = BagReplay(predictor, score_threshold=0.0, min_cameras=6).run(png_bag).predictions
    pipeline = OnlinePipeline(predictor, MessageFactory(), StageTimer(), 0.0, min_cameras=6)
    static = {}
    live = OnlineMapSession(pipeline, CAMERA_NAMES, LIVE, lookup=lambda base, frame: static[frame])
    infos = {topics.camera_info_topic(c): i for i, c in enumerate(CAMERA_NAMES)}
    published = {}

    def work():
        while (frame_set := live.next_set()) is not None:
            result, lines = live.step(frame_set, frame_set.stamp_ns)
            assert lines == []
            published[frame_set.stamp_ns] = result.map_elements

    with open_bag(png_bag) as reader:
        sensors, _ = camera_topics({c.topic for c in reader.connections}, png_bag)
        for connection, t, raw in reader.messages():
            message = reader.deserialize(raw, connection.msgtype)
            if connection.topic == topics.TF_STATIC:
                static.update({tf.child_frame_id: tf for tf in message.transforms})
            elif connection.topic in infos:
                live.on_info(infos[connection.topic], message)
            elif connection.topic in sensors:
                assert live.on_sensor(sensors[connection.topic], message, t) == []
                work()
    assert live.flush() == []
    work()
    assert sorted(published) == sorted(replayed) and len(published) == SCENES * SAMPLES
    for stamp, elements in replayed.items():
        assert [(e.class_id, e.score) for e in published[stamp]] == [(e.class_id, e.score) for e in elements]
    assert live.timer.summary()["dropped"] == {}
