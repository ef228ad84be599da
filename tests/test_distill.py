"""Distillation losses: zero for a perfect student, gradients to the student only, switchable terms,
and learning."""

import dataclasses
import json

import pytest
import torch

from mapdistill_core.checkpoint import load_model, save_model
from mapdistill_core.config import ConfigError, load_config
from mapdistill_core.data.batch import collate
from mapdistill_core.distill.config import DistillConfig
from mapdistill_core.distill.distiller import Distiller
from mapdistill_core.distill.losses import gather_matched, head_loss, hidden_loss, match_queries, relation_loss
from mapdistill_core.models.model import build_model
from mapdistill_core.training.config import ExperimentConfig
from mapdistill_core.training.trainer import Trainer
from tests.model_fixtures import STUDENT, TEACHER, experiment_yaml, samples

WIDE_TEACHER = dataclasses.replace(TEACHER, bev_channels=48)


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory):
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("teacher") / "teacher.safetensors"
    save_model(path, build_model(WIDE_TEACHER))
    return path


def outputs_of(model_config, seed):
    torch.manual_seed(seed)
    model = build_model(model_config)
    batch = collate(samples(), model_config.image_size, model.grid, 20)
    return model, batch, model(batch)


def test_each_loss_is_zero_for_a_student_equal_to_the_teacher_and_positive_otherwise():
    with torch.no_grad():
        _, _, a = outputs_of(STUDENT, 0)
        _, _, b = outputs_of(STUDENT, 1)
    assert relation_loss(a["bev_views"], a["bev_views"], 4) == pytest.approx(0.0, abs=1e-6)
    assert relation_loss(b["bev_views"], a["bev_views"], 4) > 1e-4
    same = gather_matched(a, a, match_queries(a["logits"][-1], a["points"][-1], a["logits"][-1], a["points"][-1]))
    kl, l1 = head_loss(same, 2.0)
    assert kl == pytest.approx(0.0, abs=1e-6) and l1 == pytest.approx(0.0, abs=1e-7)
    assert hidden_loss(same["s_hidden"], same["t_hidden"], same["confidence"]) == pytest.approx(0.0, abs=1e-9)
    other = gather_matched(b, a, match_queries(b["logits"][-1], b["points"][-1], a["logits"][-1], a["points"][-1]))
    kl, l1 = head_loss(other, 2.0)
    assert kl > 1e-4 and l1 > 1e-3
    assert hidden_loss(other["s_hidden"], other["t_hidden"], other["confidence"]) > 1e-3


def test_gradients_reach_the_student_and_the_adapters_never_the_teacher(teacher_file):
    distiller = Distiller(DistillConfig(str(teacher_file)), STUDENT, torch.device("cpu"))
    student, batch, outputs = outputs_of(STUDENT, 0)
    loss, parts = distiller(outputs, batch, student)
    loss.backward()
    assert {"relation", "feature_low", "feature_high", "head_cls", "head_points"} <= set(parts)
    assert all(p.grad is not None for p in student.image_encoder.parameters())
    assert distiller.low_adapter.weight.grad.abs().sum() > 0 and distiller.high_adapter.weight.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in distiller.teacher.parameters())
    assert not distiller.teacher.training
    assert [n for n, _ in distiller.named_parameters()] == [
        "low_adapter.weight",
        "low_adapter.bias",
        "high_adapter.weight",
        "high_adapter.bias",
    ]


def test_a_zero_weight_removes_its_term(teacher_file):
    student, batch, outputs = outputs_of(STUDENT, 0)
    none = Distiller(DistillConfig(str(teacher_file), relation=0, feature=0, head=0), STUDENT, torch.device("cpu"))
    loss, parts = none(outputs, batch, student)
    assert loss.item() == pytest.approx(parts["map_total"].item())
    assert not {"relation", "feature_low", "head_cls"} & set(parts)
    only_head = Distiller(DistillConfig(str(teacher_file), relation=0, feature=0), STUDENT, torch.device("cpu"))
    _, parts = only_head(outputs, batch, student)
    assert "head_cls" in parts and not {"relation", "feature_low"} & set(parts)


def test_distillation_steps_lower_the_distillation_loss(teacher_file):
    config = DistillConfig(str(teacher_file))
    distiller = Distiller(config, STUDENT, torch.device("cpu"))
    student, batch, _ = outputs_of(STUDENT, 0)
    optimizer = torch.optim.AdamW([*student.parameters(), *distiller.parameters()], lr=2e-3)

    def distillation_part():
        parts = {}
        return distiller.distillation(student(batch), batch, parts), parts

    with torch.no_grad():
        before, _ = distillation_part()
    for _ in range(15):
        loss, _ = distillation_part()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after, _ = distillation_part()
    assert after < 0.7 * before, (before, after)


def test_incompatible_teacher_is_a_clear_error(tmp_path, teacher_file):
    other = dataclasses.replace(WIDE_TEACHER, bev_size=(20, 10))
    save_model(tmp_path / "t.safetensors", build_model(other))
    with pytest.raises(ConfigError, match=r"student bev_size \[40, 20\] != teacher \[20, 10\]"):
        Distiller(DistillConfig(str(tmp_path / "t.safetensors")), STUDENT, torch.device("cpu"))
    save_model(tmp_path / "s.safetensors", build_model(STUDENT))
    with pytest.raises(ConfigError, match="is a student, not a teacher"):
        Distiller(DistillConfig(str(tmp_path / "s.safetensors")), STUDENT, torch.device("cpu"))


def test_trainer_distils_and_resumes_with_the_adapters(tmp_path, teacher_file):
    path = experiment_yaml(tmp_path)
    path.write_text(path.read_text() + f"distill: {{teacher: {teacher_file}, relation: 1.0}}\n")
    config = load_config(ExperimentConfig, path)
    Trainer(config, tmp_path / "kd", "cpu", max_steps=2, progress=False).run()
    Trainer(config, tmp_path / "kd", "cpu", max_steps=3, progress=False).run(resume=True)
    records = [json.loads(line) for line in (tmp_path / "kd" / "log.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3]
    assert {"relation", "feature_low", "feature_high", "head_cls", "head_points", "map_total"} <= set(steps[-1]["loss"])


def test_experiment_trains_selects_on_val_and_reports_on_test(tmp_path):
    student = experiment_yaml(tmp_path, epochs=1, val_every=1)
    text = student.read_text()
    (tmp_path / "teacher.yaml").write_text(
        text.replace("kind: student", "kind: teacher\n  view_transform: lss\n  lidar: {channels: 16}")
    )
    (tmp_path / "plan.yaml").write_text(
        f"teacher: {tmp_path / 'teacher.yaml'}\nstudent: {student}\nseeds: [0]\nablation_seeds: [0]\n"
        f"out: {tmp_path / 'runs'}\nresults: {tmp_path / 'kd.json'}\ntable: {tmp_path / 'kd.md'}\n"
        f"checkpoints: {tmp_path / 'ckpt'}\ndevice: cpu\n"
    )
    from mapdistill_core.cli import main

    assert main(["experiment", "--config", str(tmp_path / "plan.yaml")]) == 0
    document = json.loads((tmp_path / "kd.json").read_text())
    kinds = [r["kind"] for r in document["runs"].values()]
    assert kinds == [
        "teacher",
        "student",
        "distilled",
        "relation",
        "feature",
        "head",
        "relation+feature",
        "relation+head",
        "feature+head",
    ]
    assert document["meta"]["split"] == "test" and document["meta"]["git_revision"]
    for run in document["runs"].values():
        assert set(run["test"]) == {"mAP", "AP", "counts"} and run["latency_ms"] > 0
    assert "gap_recovered" in document["summary"]
    table = (tmp_path / "kd.md").read_text()
    assert table.count("\n|") >= 10 and "divider @0.5" in table
    assert (tmp_path / "ckpt" / "synthetic_student.safetensors").exists()
    model, _ = load_model(tmp_path / "ckpt" / "synthetic_teacher.safetensors")
    assert model.config.kind == "teacher"
