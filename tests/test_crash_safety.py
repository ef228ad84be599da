"""Crash safety: a training run killed with SIGKILL resumes and its loss curve continues; bag
writing and replay interrupted with Ctrl-C (SIGINT) leave readable, complete files."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from mapdistill_core.checkpoint import save_model
from mapdistill_core.config import load_config
from mapdistill_core.models.model import build_model
from mapdistill_core.training.config import ExperimentConfig
from mapdistill_core.training.trainer import Trainer
from mapdistill_ros.bags.replay import NODE_ELEMENTS, NODE_MARKERS
from mapdistill_ros.bags.synthetic2bag import write_synthetic_bag
from mapdistill_ros.topics import GT_ELEMENTS, image_topic
from tests.model_fixtures import STUDENT, WORLD, WORLD_YAML, experiment_yaml
from tests.test_bags import read_bag

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 240
SAME_THREADS = ("--threads", str(torch.get_num_threads()))
"""Subprocess training with this process's thread count: its losses then equal the in-process run's
(another thread count sums in another order; train otherwise picks the idle cores)."""


def losses(run: Path) -> dict[int, float]:
    """Step -> total loss from a run's log.jsonl (failing on a duplicated step)."""
    out = {}
    for line in (run / "log.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "loss" in record:
            assert record["step"] not in out, f"step {record['step']} logged twice"
            out[record["step"]] = record["loss"]["total"]
    return out


def wait_for(predicate, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not predicate():
        if process.poll() is not None:
            pytest.fail(f"the process ended (code {process.returncode}) before {what}: {process.stderr.read()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no {what} within {TIMEOUT_S} s")
        time.sleep(0.05)


def mapdistill(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", "import sys; from mapdistill_ros.cli import main; sys.exit(main())", *args]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell's background job inherits SIGINT ignored, and Python then never raises KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


class ProgressReader:
    """Collects a process's stderr in a thread (tqdm's carriage returns read as line ends) and tells
    how far its progress bar has come."""

    def __init__(self, process: subprocess.Popen):
        self.lines: list[str] = []
        self.thread = threading.Thread(target=lambda: self.lines.extend(process.stderr), daemon=True)
        self.thread.start()

    def done(self, bar: str) -> int:
        counts = [int(m.group(1)) for line in list(self.lines) if (m := re.search(rf"{bar}:.*?(\d+)/\d+ ", line))]
        return max(counts, default=0)

    def text(self) -> str:
        self.thread.join(timeout=60)
        return "".join(self.lines)


def test_sigkill_mid_epoch_then_resume_continues_the_loss_curve(tmp_path):
    # 4 steps per epoch; a checkpoint every 3 steps and at each epoch's end, so the kill lands after
    # steps the resumed run trains again
    config_path = experiment_yaml(tmp_path, epochs=3, checkpoint_every=3)
    config = load_config(ExperimentConfig, config_path)
    straight = Trainer(config, tmp_path / "straight", "cpu", progress=False).run()
    expected = losses(straight)
    assert len(expected) == 12

    run = tmp_path / "killed"
    process = mapdistill("train", "--config", str(config_path), "--out", str(run), "--device", "cpu", *SAME_THREADS)
    wait_for(lambda: (run / "log.jsonl").exists() and len(losses(run)) >= 6, process, "6 logged steps")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    logged_before_kill = len(losses(run))
    assert 6 <= logged_before_kill < 12, "the run must be killed mid-way"

    resumed = Trainer(config, run, "cpu", progress=False)
    resumed.run(resume=True)
    assert resumed_from(run) in (3, 4, 6, 8, 9) and resumed_from(run) <= logged_before_kill
    curve = losses(run)
    assert sorted(curve) == list(range(1, 13))
    for step, loss in curve.items():
        assert math.isclose(loss, expected[step], rel_tol=1e-4, abs_tol=1e-5), f"step {step}"


def test_ctrl_c_in_training_before_any_checkpoint_saves_the_state_and_resume_continues(tmp_path):
    """No checkpoint is due for 100 steps; Ctrl-C after a few steps still keeps them: the state is
    saved at the step reached, the message says how to continue, and --resume gives the loss curve
    of an uninterrupted run."""
    config_path = experiment_yaml(tmp_path, epochs=3, checkpoint_every=100)
    config = load_config(ExperimentConfig, config_path)
    expected = losses(Trainer(config, tmp_path / "straight", "cpu", progress=False).run())
    run = tmp_path / "interrupted"
    process = mapdistill("train", "--config", str(config_path), "--out", str(run), "--device", "cpu", *SAME_THREADS)
    wait_for(lambda: (run / "log.jsonl").exists() and len(losses(run)) >= 3, process, "3 logged steps")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=TIMEOUT_S)
    assert process.returncode == 130, stderr
    reached = max(losses(run))
    assert 3 <= reached < 12
    assert f"mapdistill train: interrupted at step {reached}; the training state is saved in" in stderr
    assert "run again with --resume to continue" in stderr and "Traceback" not in stderr
    process = mapdistill(
        "train", "--config", str(config_path), "--out", str(run), "--device", "cpu", "--resume", *SAME_THREADS
    )
    _, stderr = process.communicate(timeout=TIMEOUT_S)
    assert process.returncode == 0, stderr
    assert resumed_from(run) == reached
    curve = losses(run)
    assert sorted(curve) == list(range(1, 13))
    for step, loss in curve.items():
        assert math.isclose(loss, expected[step], rel_tol=1e-4, abs_tol=1e-5), f"step {step}"


def resumed_from(run: Path) -> int:
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    (record,) = [r for r in records if "resumed" in r]
    return record["step"]


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_ctrl_c_while_writing_a_bag_leaves_a_readable_partial_bag(tmp_path, storage):
    (tmp_path / "world.yaml").write_text(WORLD_YAML)
    bag = tmp_path / "bag"
    process = mapdistill(
        "synthetic2bag", "--config", str(tmp_path / "world.yaml"), "--scenes", "100", "--out", str(bag),
        "--storage", storage,
    )  # fmt: skip
    progress = ProgressReader(process)
    wait_for(lambda: progress.done("synthetic2bag") >= 3, process, "3 samples written")
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)
    stderr = progress.text()
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    messages, _ = read_bag(bag)  # every message deserializes
    front = len(messages[image_topic("CAM_FRONT", compressed=True)])
    assert 1 <= front < 100 * 4
    assert len(messages[GT_ELEMENTS]) >= front - 1


def test_ctrl_c_during_replay_keeps_complete_outputs_for_the_frames_done(tmp_path):
    torch.manual_seed(0)
    save_model(tmp_path / "student.safetensors", build_model(STUDENT))
    world = dataclasses.replace(WORLD, samples_per_scene=10)
    write_synthetic_bag(world, "test", 20, tmp_path / "bag")
    out = tmp_path / "out"
    process = mapdistill(
        "replay", str(tmp_path / "bag"), "--weights", str(tmp_path / "student.safetensors"), "--out", str(out),
        "--device", "cpu", "--min-cameras", "6",
    )  # fmt: skip
    progress = ProgressReader(process)
    wait_for(lambda: progress.done("replay") >= 60, process, "a few frames replayed (60 messages)")
    process.send_signal(signal.SIGINT)
    stdout = process.stdout.read()  # until it exits (stderr goes to the reader thread)
    process.wait(timeout=120)
    stderr = progress.text()
    assert process.returncode == 130, stderr
    metrics = json.loads((out / "metrics.json").read_text())
    frames = metrics["frames"]["processed"]
    assert metrics["meta"]["interrupted"] is True and 1 <= frames < 200
    assert f"for the {frames} camera sets done" in stdout
    assert len(json.loads((out / "predictions.json").read_text())["results"]) == frames
    written, _ = read_bag(out / "predictions")
    assert len(written[NODE_ELEMENTS]) == len(written[NODE_MARKERS]) == frames
