"""The training loop: resume, DDP under torchrun, checkpoints, the evaluate command."""

import dataclasses
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from mapdistill_core.checkpoint import load_model, load_weights, read_extra, save_model
from mapdistill_core.cli import main
from mapdistill_core.config import config_to_dict, load_config
from mapdistill_core.errors import CheckpointError
from mapdistill_core.models.model import build_model
from mapdistill_core.training.config import ExperimentConfig
from mapdistill_core.training.trainer import Trainer
from tests.model_fixtures import STUDENT, TEACHER, WORLD, experiment_yaml


def steps_logged(run):
    return [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines() if '"loss"' in line]


def test_resume_continues_from_the_saved_step(tmp_path):
    config = load_config(ExperimentConfig, experiment_yaml(tmp_path))
    straight = Trainer(config, tmp_path / "straight", "cpu", max_steps=5, progress=False).run()
    Trainer(config, tmp_path / "cut", "cpu", max_steps=3, progress=False).run()
    resumed = Trainer(config, tmp_path / "cut", "cpu", max_steps=5, progress=False)
    resumed.run(resume=True)
    assert steps_logged(tmp_path / "cut") == [1, 2, 3, 4, 5]
    a, _ = load_model(straight / "last.safetensors")
    b, _ = load_model(tmp_path / "cut" / "last.safetensors")
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5, msg=name)
    assert resumed.position["step"] == 5 and resumed.position["epoch"] == 1  # 4 steps per epoch


def test_a_run_cut_short_by_max_steps_is_validated_and_keeps_a_best_checkpoint(tmp_path):
    config = load_config(ExperimentConfig, experiment_yaml(tmp_path, epochs=2, val_every=1))
    run = Trainer(config, tmp_path / "short", "cpu", max_steps=2, progress=False).run()
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    (val,) = [r for r in records if "val" in r]
    assert val["step"] == 2 and val["epoch"] == 0.5  # 4 steps per epoch
    assert read_extra(run / "best.safetensors")["epoch"] == 0.5 and (run / "last.safetensors").exists()
    assert read_extra(run / "best.safetensors")["world"] == config_to_dict(WORLD)


def test_evaluate_without_config_uses_the_world_in_the_weights_and_limit_limits_generation(
    tmp_path, monkeypatch, capsys
):
    world = dataclasses.replace(WORLD, samples_per_scene=2)
    model = build_model(STUDENT)
    save_model(tmp_path / "w.safetensors", model, {"world": config_to_dict(world)})
    save_model(tmp_path / "old.safetensors", model)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    args = ["evaluate", "--weights", str(tmp_path / "w.safetensors"), "--split", "val", "--device", "cpu"]
    assert main([*args, "--limit", "3", "--pictures", "1", "--out", "eval"]) == 0
    index = json.loads((elsewhere / "data" / "synthetic" / "val" / "index.json").read_text())
    assert index["scenes"] == 2 and index["config"] == config_to_dict(world)  # 3 samples: 2 scenes of 2
    assert json.loads((elsewhere / "eval" / "metrics.json").read_text())["meta"]["samples"] == 3
    capsys.readouterr()
    assert main(["evaluate", "--weights", str(tmp_path / "old.safetensors"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "old.safetensors: records no world config" in err and "--config" in err and len(err.splitlines()) == 1


def test_a_full_run_writes_weights_and_validates(tmp_path):
    config = load_config(ExperimentConfig, experiment_yaml(tmp_path, epochs=1, val_every=1))
    out = Trainer(config, tmp_path / "run", "cpu", progress=False).run()
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert "meta" in records[0] and records[0]["meta"]["git_revision"] is not None
    (val,) = [r for r in records if "val" in r]
    assert set(val["val"]) == {"mAP", "AP", "counts"}
    model, extra = load_model(out / "best.safetensors")
    assert model.config == config.model and extra["epoch"] == 1
    assert (out / "config.yaml").exists() and (out / "last.safetensors").exists()
    # evaluate finds the data section in the config.yaml written next to the weights.
    assert (
        main(
            [
                "evaluate",
                "--weights",
                str(out / "best.safetensors"),
                "--out",
                str(tmp_path / "eval"),
                "--device",
                "cpu",
                "--pictures",
                "1",
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["meta"]["samples"] == 4
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        Trainer(config, tmp_path / "empty", "cpu", progress=False).run(resume=True)


def test_two_process_gloo_ddp_keeps_replicas_identical(tmp_path):
    config = experiment_yaml(tmp_path)
    load_config(ExperimentConfig, config)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # Generate the data first so that both processes only train.
    from mapdistill_core.training.datasets import build_dataset

    build_dataset(load_config(ExperimentConfig, config).data, "train")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "mapdistill_core.cli",
        "train",
        "--config",
        str(config),
        "--out",
        str(tmp_path / "ddp"),
        "--device",
        "cpu",
        "--max-steps",
        "2",
    ]
    subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=300)
    records = [json.loads(line) for line in (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2]
    assert records[0]["meta"]["world_size"] == 2
    assert records[-1] == {"step": 2, "replicas_identical": True}


def test_checkpoint_errors(tmp_path):
    student = build_model(STUDENT)
    save_model(tmp_path / "s.safetensors", student)
    model, _ = load_model(tmp_path / "s.safetensors")
    assert model.config == STUDENT
    tensors = {k: v for k, v in student.state_dict().items()}
    with pytest.raises(
        CheckpointError,
        match=r"s.safetensors: weights do not fit the model config \(\d+ missing, \d+ unexpected, \d+ of another "
        r"shape\): missing image_encoder\.",
    ):
        load_weights(build_model(TEACHER), tensors, "s.safetensors")
    wider = dict(tensors)
    wider["segmentation.weight"] = torch.zeros(3, 64, 1, 1)
    with pytest.raises(CheckpointError, match=r"segmentation.weight: file \[3, 64, 1, 1\] vs config \[3, 32, 1, 1\]"):
        load_weights(student, wider, "x")
    (tmp_path / "p.safetensors").write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(CheckpointError, match="pickled checkpoints are refused"):
        load_model(tmp_path / "p.safetensors")
    data = (tmp_path / "s.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.safetensors: not a readable safetensors file"):
        load_model(tmp_path / "cut.safetensors")


def test_evaluate_command(tmp_path, capsys):
    config = experiment_yaml(tmp_path)
    model = build_model(load_config(ExperimentConfig, config).model)
    save_model(tmp_path / "w.safetensors", model)
    assert (
        main(
            [
                "evaluate",
                "--weights",
                str(tmp_path / "w.safetensors"),
                "--config",
                str(config),
                "--split",
                "val",
                "--out",
                str(tmp_path / "eval"),
                "--device",
                "cpu",
                "--pictures",
                "2",
            ]
        )
        == 0
    )
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["meta"]["split"] == "val" and metrics["meta"]["samples"] == 4
    assert len(list((tmp_path / "eval").glob("*.png"))) == 2
    assert "Chamfer AP" in capsys.readouterr().out
    assert main(["evaluate", "--weights", str(tmp_path / "missing.safetensors"), "--out", str(tmp_path)]) == 2


def test_predictor_from_checkpoint_returns_elements_in_base_link(tmp_path):
    from mapdistill_core.inference import MapPredictor
    from tests.model_fixtures import samples

    save_model(tmp_path / "s.safetensors", build_model(STUDENT))
    predictor = MapPredictor.from_checkpoint(tmp_path / "s.safetensors", device="cpu")
    (elements,) = predictor.predict(samples()[0])
    assert len(elements) == STUDENT.decoder.num_queries
    assert all(e.points.shape == (20, 2) for e in elements)
    scores = [e.score for e in elements]
    assert scores == sorted(scores, reverse=True)
    assert predictor.predict(samples(), score_threshold=1.1) == [[], []]


def test_decode_by_hand_top_pairs_by_sigmoid_score_and_points_in_metres():
    from mapdistill_core.bev_grid import BEVGrid
    from mapdistill_core.models.postprocess import decode

    logits = torch.tensor([[[2.0, -1.0, 0.0], [-3.0, 3.0, 1.0]]])  # sigmoid: .881 .269 .5 / .047 .953 .731
    u = torch.linspace(0, 1, 20)
    points = torch.stack([torch.stack([u, u], -1), torch.stack([u, 1 - u], -1)])[None]  # [1, 2, 20, 2]
    (elements,) = decode(logits, points, BEVGrid((40, 20)), top_k=3)
    assert [(e.class_id, round(e.score, 3)) for e in elements] == [(1, 0.953), (0, 0.881), (2, 0.731)]
    # query 1 runs from (x, y) = (-30, 15) to (30, -15) m: u in [0, 1] spans the 60 m x 30 m region
    np.testing.assert_allclose(elements[0].points[[0, -1]], [[-30.0, 15.0], [30.0, -15.0]], atol=1e-5)
    np.testing.assert_allclose(elements[1].points[[0, -1]], [[-30.0, -15.0], [30.0, 15.0]], atol=1e-5)
    assert elements[2].points is not elements[0].points and np.allclose(elements[2].points, elements[0].points)
