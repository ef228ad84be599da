"""The distillation benchmark's plan: an existing teacher trains no teacher, runs leave records that
a second start skips, a killed plan resumes its run from its state, and the report's statistics."""

import dataclasses
import fcntl
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mapdistill_core.checkpoint import save_model
from mapdistill_core.config import load_config
from mapdistill_core.errors import ConfigError, MapdistillError, RunLockedError
from mapdistill_core.experiment.plan import ExperimentPlan, Plan
from mapdistill_core.experiment.records import RunRecord, sha256
from mapdistill_core.experiment.report import (
    README_BEGIN,
    README_END,
    drives_text,
    grid_text,
    one_comparison,
    plot_drives,
    table_groups,
)
from mapdistill_core.experiment.runner import Experiment
from mapdistill_core.experiment.statistics import drive_curve, screen, summarize
from mapdistill_core.models.model import build_model
from mapdistill_core.training.config import ExperimentConfig
from mapdistill_core.training.trainer import Trainer
from tests.model_fixtures import TEACHER, experiment_yaml

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 300


def plan_files(tmp: Path, epochs: int, checkpoint_every: int = 100, extra: str = "") -> Path:
    """A tiny student config, an existing tiny teacher and a plan that names it."""
    student = experiment_yaml(tmp, epochs=epochs, val_every=1, checkpoint_every=checkpoint_every)
    student.write_text(student.read_text().replace("val_scenes: 1", "val_scenes: 1\n  test_scenes: 1"))
    torch.manual_seed(3)
    save_model(tmp / "teacher.safetensors", build_model(TEACHER))
    (tmp / "README.md").write_text(f"# x\n\n{README_BEGIN}\nold table\n{README_END}\n\nrest\n")
    plan = tmp / "plan.yaml"
    plan.write_text(
        f"teacher_weights: {tmp / 'teacher.safetensors'}\nstudent: {student}\nseeds: [0]\nablation_seeds: []\n"
        f"out: {tmp / 'runs'}\nrecords: {tmp / 'records'}\nresults: {tmp / 'kd.json'}\ntable: {tmp / 'kd.md'}\n"
        f"checkpoints: {tmp / 'ckpt'}\nreadme: {tmp / 'README.md'}\ndevice: cpu\n{extra}"
    )
    return plan


def experiment(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "mapdistill_core.cli", "experiment", *args]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen) -> str:
    out, _ = process.communicate(timeout=TIMEOUT_S)
    assert process.returncode == 0, out
    return out


def test_a_plan_with_existing_teacher_weights_trains_no_teacher_records_and_skips(tmp_path):
    plan = plan_files(tmp_path, epochs=1, extra="grid: [{relation: 0.0}]\ngrid_epochs: 1\n")
    out = finish(experiment("--config", str(plan), "--parallel", "2"))
    assert "4 runs, 0 done, 4 to train" in out
    records = {p.stem: json.loads(p.read_text()) for p in (tmp_path / "records").glob("*.json")}
    assert set(records) == {"teacher", "student-s0", "distilled-s0", "grid0-s0"}
    teacher = records["teacher"]
    assert teacher["steps"] == 0 and teacher["val_curve"] == [] and teacher["test"] is not None
    assert not (tmp_path / "runs" / "teacher" / "log.jsonl").exists(), "the existing teacher was trained"
    assert teacher["weights_sha256"] == sha256(tmp_path / "teacher.safetensors")
    assert records["distilled-s0"]["teacher_sha256"] == teacher["weights_sha256"]
    assert records["distilled-s0"]["grad_share"] and records["student-s0"]["grad_share"] == []
    assert records["grid0-s0"]["test"] is None and records["grid0-s0"]["setting"]["relation"] == 0.0
    assert records["student-s0"]["steps"] == 4 and len(records["student-s0"]["val_curve"]) == 1
    best = max(("student-s0", "distilled-s0"), key=lambda name: records[name]["val_mAP"])
    assert sha256(tmp_path / "ckpt" / "synthetic_student.safetensors") == records[best]["weights_sha256"]
    assert not (tmp_path / "ckpt" / "synthetic_teacher.safetensors").exists()
    document = json.loads((tmp_path / "kd.json").read_text())
    assert document["pending"] == [] and "distilled_vs_student" in document["summary"]
    assert set(document["architecture"]) == {"teacher", "student"}
    readme = (tmp_path / "README.md").read_text()
    assert "old table" not in readme and "| distilled | 0 |" in readme and readme.endswith("rest\n")
    assert (tmp_path / "kd.png").read_bytes()[:4] == b"\x89PNG"
    assert "| grid0-s0 | relation 0.0 |" in (tmp_path / "kd.md").read_text(), "the grid row names its override"

    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "records").glob("*.json")}
    out = finish(experiment("--config", str(plan)))
    assert "4 runs, 4 done, 0 to train" in out
    assert before == {p.name: p.stat().st_mtime_ns for p in (tmp_path / "records").glob("*.json")}


def step_losses(run: Path) -> dict[int, float]:
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    return {r["step"]: r["loss"]["total"] for r in records if "loss" in r}


def lock_is_free(folder: Path) -> bool:
    with open(folder / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(lock, fcntl.LOCK_UN)
        return True


def test_a_killed_plan_resumes_its_run_from_the_training_state(tmp_path):
    plan = plan_files(tmp_path, epochs=4, checkpoint_every=2, extra="grid: []\n")
    run = tmp_path / "runs" / "student-s0"
    process = experiment("--config", str(plan), "--parallel", "1")
    deadline = time.monotonic() + TIMEOUT_S
    while not ((run / "log.jsonl").exists() and len(step_losses(run)) >= 7):
        assert process.poll() is None, process.stdout.read()
        assert time.monotonic() < deadline, "the student run logged no 7 steps"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    deadline = time.monotonic() + 60
    while not lock_is_free(run):  # the worker dies with the plan
        assert time.monotonic() < deadline, "the worker outlived the killed plan"
        time.sleep(0.1)
    logged_before_kill = len(step_losses(run))
    assert 7 <= logged_before_kill < 16 and not (tmp_path / "records" / "student-s0.json").exists()

    finish(experiment("--config", str(plan)))
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    (resumed,) = [r for r in records if "resumed" in r]
    assert 6 <= resumed["step"] <= logged_before_kill, "the run started again instead of resuming"
    curve = step_losses(run)
    assert sorted(curve) == list(range(1, 17))
    straight = Trainer(
        load_config(ExperimentConfig, tmp_path / "tiny.yaml"), tmp_path / "straight", "cpu", progress=False
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)  # as the plan's one worker runs (sums in the same order)
    try:
        expected = step_losses(straight.run())
    finally:
        torch.set_num_threads(threads)
    for step, loss in curve.items():
        assert math.isclose(loss, expected[step], rel_tol=1e-4, abs_tol=1e-5), f"step {step}"
    assert json.loads((tmp_path / "records" / "student-s0.json").read_text())["steps"] == 16


def record(kind: str, seed: int, test_map: float) -> RunRecord:
    return RunRecord(f"{kind}-s{seed}", kind, seed, test={"mAP": test_map})


def test_the_summary_pairs_seeds_and_measures_the_gap_by_hand():
    records = {
        "t": record("teacher", 0, 0.40),
        **{f"s{i}": record("student", i, m) for i, m in enumerate([0.20, 0.22, 0.24])},
        **{f"d{i}": record("distilled", i, m) for i, m in enumerate([0.26, 0.27, 0.31])},
    }
    summary = summarize(records)
    c = summary["distilled_vs_student"]
    assert c["differences"] == pytest.approx({"0": 0.06, "1": 0.05, "2": 0.07})
    assert c["mean_difference"] == pytest.approx(0.06)
    assert c["std_difference"] == pytest.approx(0.01)
    # t = 0.06 / (0.01 / sqrt(3)) = 10.39 with 2 degrees of freedom: two-sided p = 0.00913
    assert c["p_value"] == pytest.approx(0.00913, abs=5e-5)
    assert c["gap"] == pytest.approx(0.18) and c["gap_recovered"] == pytest.approx(0.06 / 0.18)
    assert c["beyond_seed_noise"]
    assert summary["student"]["mAP_std"] == pytest.approx(0.02)
    records["d2"] = record("distilled", 2, 0.23)  # one seed loses: not beyond noise, whatever p says
    assert not summarize(records)["distilled_vs_student"]["beyond_seed_noise"]


def test_the_grid_compares_its_best_setting_with_the_reference_without_distillation():
    plan = {"relation": 0.1, "feature": 1.0, "head": 1.0}

    def run(name, val, **changes):
        return RunRecord(name, "grid", 0, setting=plan | changes, val_mAP=val)

    grid = [
        run("grid0-s0", 0.20),
        run("grid1-s0", 0.25, feature=0.1),
        run("grid2-s0", 0.22, relation=0.0, feature=0.0, head=0.0),
    ]
    text = grid_text({r.name: r for r in grid}, plan)
    assert "| grid0-s0 | the plan's | 20.0 |" in text and "| grid1-s0 | feature 0.1 | 25.0 (best) |" in text
    assert "| grid2-s0 | relation 0.0, feature 0.0, head 0.0 | 22.0 (reference: no distillation) |" in text
    assert "**not** the grid's best" in text and "(grid1-s0, 25.0) is above the student without" in text
    grid[2] = dataclasses.replace(grid[2], val_mAP=0.30)
    assert "(grid1-s0, 25.0) is **not above** the student without distillation" in grid_text(
        {r.name: r for r in grid}, plan
    )


def test_the_screening_rule_marks_a_setting_better_only_beyond_twice_the_references_deviation():
    """References 20, 22, 24 (mean 22, sample std 2): the floor is 4 mAP, so 26.5 clears it and 25.9
    does not; with one reference there is no floor and nothing counts as better."""
    references = [0.20, 0.22, 0.24]
    assert screen(references, 0.265) == pytest.approx({"gain": 0.045, "floor": 0.04, "better": True})
    assert screen(references, 0.259)["better"] is False and screen(references, 0.259)["gain"] == pytest.approx(0.039)
    assert screen(references, 0.10)["better"] is False
    assert screen([0.2], 0.9) == pytest.approx({"gain": 0.7, "floor": None, "better": False})
    plan = {"relation": 0.1, "feature": 1.0, "head": 1.0}
    records = {
        f"reference-s{i}": RunRecord(f"reference-s{i}", "reference", i, val_mAP=v) for i, v in enumerate(references)
    }
    records["grid0-s0"] = RunRecord("grid0-s0", "grid", 0, setting=plan, val_mAP=0.265)
    records["grid1-s0"] = RunRecord("grid1-s0", "grid", 0, setting=plan | {"head": 3.0}, val_mAP=0.259)
    text = grid_text(records, plan)
    assert "val mAP 22.0 ± 2.0; noise floor (twice the seed deviation) 4.0" in text
    assert "| grid0-s0 | the plan's | 26.5 | +4.5 | **yes** |" in text
    assert "| grid1-s0 | head 3.0 | 25.9 | +3.9 | no |" in text


def test_the_plan_lists_the_teacher_the_long_curve_the_references_and_the_grid_before_the_main_runs():
    plan_path = ROOT / "config/experiment_kd.yaml"
    specs = Plan(load_config(ExperimentPlan, plan_path), str(plan_path)).specs
    kinds = [s.kind for s in specs]
    assert kinds[:2] == ["teacher", "student-long"]
    assert kinds.index("grid") > kinds.index("reference") and kinds.index("student") > max(
        i for i, k in enumerate(kinds) if k == "grid"
    )
    references = [s for s in specs if s.kind == "reference"]
    grid = [s for s in specs if s.kind == "grid"]
    assert len(references) >= 3 and len({s.seed for s in references}) == len(references)
    for spec in references + grid:
        assert not spec.test and spec.config.train.epochs == grid[0].config.train.epochs
    assert all(s.config.distill is None for s in references)
    assert specs[0].config.data.val_scenes >= 8 and specs[0].config.data.test_scenes == 12


def test_the_unlabelled_drive_study_has_its_control_and_its_upper_bound(tmp_path):
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(
        (ROOT / "config/experiment_kd.yaml").read_text()
        + "unlabeled_scenes: [20, 60]\nunlabeled_seeds: [0, 1]\nupper_seeds: [0]\nunlabeled_steps: 4800\n"
    )
    plan = Plan(load_config(ExperimentPlan, plan_path), str(plan_path))
    runs = {s.name: s for s in plan.specs if s.kind in ("unlabeled", "pseudo", "upper")}
    assert set(runs) == {f"{k}{n}-s{s}" for k in ("unlabeled", "pseudo") for n in (20, 60) for s in (0, 1)} | {
        "upper20-s0",
        "upper60-s0",
    }
    full, control, upper = runs["unlabeled60-s0"].config, runs["pseudo60-s0"].config, runs["upper60-s0"].config
    assert full.data.unlabeled_scenes == control.data.unlabeled_scenes == upper.data.unlabeled_scenes == 60
    assert not full.data.unlabeled_labels and not control.data.unlabeled_labels and upper.data.unlabeled_labels
    assert full.distill == plan.distilled(plan.full_setting, 0).distill
    assert control.distill.relation == control.distill.feature == control.distill.head == 0
    assert upper.distill is None and full.train == upper.train == control.train
    assert (runs["unlabeled20-s0"].config.train.epochs, full.train.epochs) == (12, 6)  # 4,800 steps each
    plan_path.write_text(plan_path.read_text() + "unlabeled_scenes: [30]\n")
    with pytest.raises(ConfigError, match=r"unlabeled_steps 4800 is not a whole number of epochs with 30 drives "):
        Plan(load_config(ExperimentPlan, plan_path), str(plan_path))


def test_the_long_distilled_runs_are_the_plans_setting_on_the_long_schedule_paired_with_student_long(tmp_path):
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text((ROOT / "config/experiment_kd.yaml").read_text() + "long_distilled_seeds: [0, 2]\n")
    plan = Plan(load_config(ExperimentPlan, plan_path), str(plan_path))
    runs = {s.name: s for s in plan.specs if s.kind == "distilled-long"}
    assert list(runs) == ["distilled-long-s0", "distilled-long-s2"]
    long = next(s for s in plan.specs if s.name == "student-long-s2")
    config = runs["distilled-long-s2"].config
    assert config.train == long.config.train and config.data == long.config.data
    assert config.distill == plan.distilled(plan.full_setting, 2).distill and runs["distilled-long-s2"].test
    plan_path.write_text(plan_path.read_text() + "long_epochs: 0\n")
    with pytest.raises(ConfigError, match="long_distilled_seeds needs long_epochs"):
        load_config(ExperimentPlan, plan_path)
    records = [
        record("teacher", 0, 0.40),
        *(record("student", s, 0.15) for s in (0, 1)),
        *(
            RunRecord(f"student-long-s{s}", "student-long", s, test={"mAP": m}, steps=4800)
            for s, m in ((0, 0.2), (1, 0.26))
        ),
        *(
            RunRecord(f"distilled-long-s{s}", "distilled-long", s, test={"mAP": m}, steps=4800)
            for s, m in ((0, 0.22), (1, 0.25))
        ),
    ]
    comparison = summarize({r.name: r for r in records})["distilled-long_vs_student"]
    assert comparison["student"] == "student-long"
    assert comparison["differences"] == pytest.approx({"0": 0.02, "1": -0.01})


def test_a_committed_record_reads_back_and_writes_the_same_json(tmp_path):
    path = ROOT / "results/kd/reference-s0.json"
    record = RunRecord.read(path)
    assert record.group == "reference" and record.test is None and len(record.val_curve) == 6
    record.write(tmp_path / "copy.json")
    assert json.loads((tmp_path / "copy.json").read_text()) == json.loads(path.read_text())
    (tmp_path / "bad.json").write_text('{"kind": "student"}')
    with pytest.raises(ConfigError, match=r"bad.json: not a run record \(no name, seed\)"):
        RunRecord.read(tmp_path / "bad.json")


def test_every_group_of_the_unlabelled_study_is_compared_with_the_student_of_its_seed():
    """Two numbers of drives share kinds and seeds: each is its own group, paired with the student."""
    records = [
        record("teacher", 0, 0.40),
        *(record("student", s, m) for s, m in ((0, 0.20), (1, 0.22))),
        *(RunRecord(f"unlabeled20-s{s}", "unlabeled", s, test={"mAP": m}) for s, m in ((0, 0.23), (1, 0.24))),
        *(RunRecord(f"unlabeled60-s{s}", "unlabeled", s, test={"mAP": m}) for s, m in ((0, 0.29), (1, 0.30))),
        *(RunRecord(f"pseudo60-s{s}", "pseudo", s, test={"mAP": m}) for s, m in ((0, 0.21), (1, 0.21))),
    ]
    summary = summarize({r.name: r for r in records})
    assert [k for k in summary if k.endswith("_vs_student")] == [
        "unlabeled20_vs_student",
        "unlabeled60_vs_student",
        "pseudo60_vs_student",
    ]
    assert summary["unlabeled60"]["mAP_mean"] == pytest.approx(0.295)
    assert summary["unlabeled60_vs_student"]["mean_difference"] == pytest.approx(0.085)
    assert summary["unlabeled60_vs_student"]["gap_recovered"] == pytest.approx(0.085 / 0.19)
    assert summary["pseudo60_vs_student"]["differences"] == pytest.approx({"0": 0.01, "1": -0.01})


def test_teacher_labelled_drives_are_compared_with_their_true_map_on_the_seeds_all_share():
    records = [
        record("teacher", 0, 0.40),
        *(
            RunRecord(f"student-long-s{s}", "student-long", s, test={"mAP": m}, steps=4800)
            for s, m in ((0, 0.2), (1, 0.26))
        ),
        RunRecord("upper20-s0", "upper", 0, test={"mAP": 0.25}, steps=4800),
        *(RunRecord(f"pseudo20-s{s}", "pseudo", s, test={"mAP": m}, steps=4800) for s, m in ((0, 0.23), (1, 0.27))),
        RunRecord("unlabeled60-s0", "unlabeled", 0, test={"mAP": 0.24}, steps=4800),
    ]
    summary = summarize({r.name: r for r in records})
    share = summary["pseudo20_vs_student"]["label_share"]
    assert share["upper"] == "upper20" and share["seeds"] == [0]  # upper20 has seed 0 only
    assert share["gain"] == pytest.approx(0.03) and share["upper_gain"] == pytest.approx(0.05)
    assert share["recovered"] == pytest.approx(0.6)
    assert "upper20 against student-long" in one_comparison(summary, "upper20")
    assert "label_share" not in summary["upper20_vs_student"]
    assert summary["unlabeled60_vs_student"]["label_share"] is None  # no upper60 run
    text = one_comparison(summary, "pseudo20")
    assert "the true map of the same drives (upper20) gains +5.0 mAP over student-long" in text
    assert "the teacher's labels give +3.0, **60 %** of what labels would" in text
    assert "of what labels would" not in one_comparison(summary, "unlabeled60")


def test_the_gain_by_number_of_drives_compares_counts_on_the_seeds_they_share(tmp_path):
    """pseudo20 has seeds 0 and 1, pseudo60 seed 0 only: each count's mean is over its own seeds,
    the curve over seed 0 alone; a kind outside the drive study is left out."""
    long = {0: 0.20, 1: 0.26}
    records = [
        record("teacher", 0, 0.40),
        *(RunRecord(f"student-long-s{s}", "student-long", s, test={"mAP": m}, steps=4800) for s, m in long.items()),
        *(RunRecord(f"pseudo20-s{s}", "pseudo", s, test={"mAP": m}, steps=4800) for s, m in ((0, 0.23), (1, 0.27))),
        RunRecord("pseudo60-s0", "pseudo", 0, test={"mAP": 0.28}, steps=4800),
        RunRecord("upper20-s1", "upper", 1, test={"mAP": 0.30}, steps=4800),
        RunRecord("distilled-s0", "distilled", 0, test={"mAP": 0.21}, steps=4800),
    ]
    curve = drive_curve(summarize({r.name: r for r in records}))
    assert list(curve) == ["pseudo", "upper"]
    pseudo = curve["pseudo"]
    assert list(pseudo["drives"]) == ["20", "60"]
    assert pseudo["drives"]["20"]["mean_difference"] == pytest.approx(0.02)  # (+0.03 + 0.01) / 2
    assert pseudo["drives"]["60"]["std_difference"] is None
    assert pseudo["shared_seeds"] == [0]
    assert pseudo["shared_gain"] == pytest.approx({"0": 0.0, "20": 0.03, "60": 0.08})
    assert curve["upper"]["shared_gain"] == pytest.approx({"0": 0.0, "20": 0.04})
    text = drives_text(curve)
    assert "| pseudo | +2.0 ± 1.4 (seeds 0, 1) | +8.0 (seed 0) |" in text
    assert "- pseudo (seed 0): 0 drives +0.0, 20 drives +3.0, 60 drives +8.0" in text
    assert "| upper | +4.0 (seed 1) |  |" in text
    plot_drives(curve, tmp_path / "drives.png")
    assert (tmp_path / "drives.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_run_held_by_another_process_is_a_run_error_not_bad_input(tmp_path):
    plan = plan_files(tmp_path, epochs=1, extra="grid: []\n")
    experiment = Experiment(load_config(ExperimentPlan, plan), str(plan))
    folder = tmp_path / "runs" / "student-s0"
    folder.mkdir(parents=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(RunLockedError, match="another process is training student-s0"):
            experiment.execute(experiment.plan.spec("student-s0"))
    assert not issubclass(RunLockedError, MapdistillError)
    assert not (folder / "log.jsonl").exists()


def test_a_compared_group_is_paired_with_the_student_that_trained_as_many_steps():
    """The unlabelled-drive study's epochs cover the drives too: its runs train more steps than the
    student, so they are paired with the long student of equal steps; without one, with the student,
    and the report says that the difference mixes data with schedule."""
    records = [
        record("teacher", 0, 0.40),
        *(RunRecord(f"student-s{s}", "student", s, test={"mAP": m}, steps=2400) for s, m in ((0, 0.15), (1, 0.2))),
        RunRecord("student-long-s0", "student-long", 0, test={"mAP": 0.21}, steps=4800),
        RunRecord("upper20-s0", "upper", 0, test={"mAP": 0.254}, steps=4800),
        *(RunRecord(f"distilled-s{s}", "distilled", s, test={"mAP": m}, steps=2400) for s, m in ((0, 0.19), (1, 0.2))),
        RunRecord("pseudo20-s1", "pseudo", 1, test={"mAP": 0.25}, steps=4800),
    ]
    summary = summarize({r.name: r for r in records})
    upper = summary["upper20_vs_student"]
    assert (upper["student"], upper["steps"], upper["student_steps"]) == ("student-long", 4800, 4800)
    assert upper["differences"] == pytest.approx({"0": 0.044}) and upper["gap"] == pytest.approx(0.19)
    assert summary["distilled_vs_student"]["student"] == "student"
    assert summary["distilled_vs_student"]["differences"] == pytest.approx({"0": 0.04, "1": 0.0})
    text = one_comparison(summary, "upper20")
    assert "| seed | student-long | upper20 | upper20 - student-long |" in text
    assert "upper20 against student-long (4,800 steps): mean paired difference +4.4" in text
    assert "trained" not in text
    assert table_groups(summary)[:4] == ["teacher", "student", "student-long", "distilled"]
    summary = summarize({r.name: r for r in records if r.kind != "student-long"})
    assert summary["upper20_vs_student"]["student"] == "student"
    assert "pseudo20_vs_student" in summary
    text = one_comparison(summary, "pseudo20")
    assert "pseudo20's runs trained 4,800 steps, student's 2,400: this difference mixes" in text
