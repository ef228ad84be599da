"""Distillation: each loss is zero for a student equal to its teacher, reaches the student parameters
it should, carries weight at the plan's lambdas, pairs queries like the training matcher."""

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mapdistill_core.bev_grid import BEVGrid
from mapdistill_core.checkpoint import load_model, save_model
from mapdistill_core.config import load_config
from mapdistill_core.data.batch import collate, element_targets
from mapdistill_core.distill.config import DistillConfig
from mapdistill_core.distill.distiller import Distiller
from mapdistill_core.distill.losses import (
    bev_feature_loss,
    head_loss,
    hidden_loss,
    map_cell_weights,
    pair_queries,
    relation_loss,
)
from mapdistill_core.distill.pseudo_labels import pseudo_elements, teacher_is_right
from mapdistill_core.errors import ConfigError
from mapdistill_core.experiment.plan import ExperimentPlan
from mapdistill_core.map_elements import CLASS_IDS, MapElement
from mapdistill_core.models.matcher import HungarianMatcher
from mapdistill_core.models.model import build_model
from mapdistill_core.training.config import ExperimentConfig
from mapdistill_core.training.trainer import Trainer, gradient_cosines, gradient_shares, term_gradients
from tests.model_fixtures import STUDENT, TEACHER, experiment_yaml, samples

ROOT = Path(__file__).resolve().parent.parent
WIDE_TEACHER = dataclasses.replace(TEACHER, bev_channels=48)
PLAN = load_config(ExperimentPlan, ROOT / "config/experiment_synthetic.yaml")


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory):
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("teacher") / "teacher.safetensors"
    save_model(path, build_model(WIDE_TEACHER))
    return path


def distiller(teacher_file, **setting) -> Distiller:
    teacher, _ = load_model(teacher_file)
    return Distiller(DistillConfig(str(teacher_file), **setting), STUDENT, teacher)


def outputs_of(model_config, seed):
    torch.manual_seed(seed)
    model = build_model(model_config)
    batch = collate(samples(), model_config.image_size, model.grid, 20)
    return model, batch, model(batch)


MATCHER = HungarianMatcher(STUDENT.loss.classification, STUDENT.loss.points)


def test_each_loss_is_zero_for_a_student_equal_to_the_teacher_and_positive_otherwise():
    with torch.no_grad():
        _, _, a = outputs_of(STUDENT, 0)
        _, _, b = outputs_of(STUDENT, 1)
    assert relation_loss(a["bev_views"], a["bev_views"], 4) == pytest.approx(0.0, abs=1e-5)
    assert relation_loss(b["bev_views"], a["bev_views"], 4) > 1e-3
    same = pair_queries(MATCHER, a, a)
    kl, l1 = head_loss(same, 2.0)
    # the teacher's ped_crossing predictions are closed before pairing, so only their last point differs
    points, confidence = a["points"].flatten(0, 1), a["logits"].flatten(0, 1).sigmoid().amax(-1)
    closed = a["logits"].flatten(0, 1).argmax(-1) == CLASS_IDS["ped_crossing"]
    gap = (points[:, -1] - points[:, 0]).abs().sum(-1) / (2 * points.shape[1]) * closed
    assert closed.any() and not closed.all()
    assert kl == pytest.approx(0.0, abs=1e-6)
    assert float(l1) == pytest.approx(float((gap * confidence).sum() / confidence.sum()), rel=1e-5)
    assert hidden_loss(same["s_hidden"], same["t_hidden"], same["confidence"]) == pytest.approx(0.0, abs=1e-9)
    other = pair_queries(MATCHER, b, a)
    kl, l1 = head_loss(other, 2.0)
    assert kl > 1e-4 and l1 > 1e-3
    assert hidden_loss(other["s_hidden"], other["t_hidden"], other["confidence"]) > 1e-3


def test_relation_loss_is_the_kl_summed_over_rows_by_hand():
    """Two 1-channel streams of 2 patches: a->b rows are softmax([a_i * b_j]); KL summed over the
    rows, averaged over the two directions and the batch."""
    a = torch.tensor([1.0, -1.0]).reshape(1, 1, 2, 1)
    b = torch.tensor([2.0, 0.0]).reshape(1, 1, 2, 1)
    zero = torch.zeros(1, 1, 2, 1)

    # teacher (a, b): a->b rows softmax([2, 0]) and softmax([-2, 0]); b->a rows softmax([2, -2]), [.5, .5]
    # student (0, 0): every row uniform
    def kl_to_uniform(p):
        p = np.asarray(p)
        return float((p * np.log(p / 0.5)).sum())

    s2 = np.exp(2) / (np.exp(2) + 1)
    a_to_b = kl_to_uniform([s2, 1 - s2]) + kl_to_uniform([1 - s2, s2])
    s4 = np.exp(4) / (np.exp(4) + 1)
    b_to_a = kl_to_uniform([s4, 1 - s4]) + kl_to_uniform([0.5, 0.5])
    assert float(relation_loss((zero, zero), (a, b), 1)) == pytest.approx((a_to_b + b_to_a) / 2, rel=1e-5)


def test_pairing_follows_the_training_matcher_for_closed_shapes_given_a_shifted_copy():
    """The teacher predicts two closed ped_crossing outlines and an open divider; the student predicts
    the same shapes from other start points and in the other direction, in another query order.
    The pairing must find the copies (the paired teacher points equal the student's exactly) and
    agree with the training matcher run on ground truth built from the same shapes."""
    grid = BEVGrid((40, 20))

    def ring(cx, cy):
        angles = np.linspace(0, 2 * np.pi, 20)
        return np.c_[cx + 2 * np.cos(angles), cy + np.sin(angles)]

    shapes = [(1, ring(5.0, 3.0)), (1, ring(-8.0, -4.0)), (0, np.c_[np.linspace(-20, 20, 20), np.full(20, 6.0)])]
    shapes[0][1][-1] = shapes[0][1][0]
    shapes[1][1][-1] = shapes[1][1][0]
    teacher_pts = torch.stack([grid.normalize(torch.from_numpy(p)).float() for _, p in shapes])
    student_pts = teacher_pts.clone()
    student_pts[0] = torch.cat([teacher_pts[0, 7:-1], teacher_pts[0, :8]])  # another start point
    student_pts[1] = torch.cat([teacher_pts[1, 12:-1], teacher_pts[1, :13]]).flip(0)  # and reversed
    student_pts[2] = teacher_pts[2].flip(0)
    order = [2, 0, 1]  # student query i copies teacher query order[i]
    logits = torch.full((3, 3), -4.0)
    for q, (cls, _) in enumerate(shapes):
        logits[q, cls] = 4.0
    teacher = {"logits": logits[None], "points": teacher_pts[None], "hidden": torch.zeros(1, 3, 20, 4)}
    student = {
        "logits": logits[order][None],
        "points": student_pts[order][None],
        "hidden": torch.zeros(1, 3, 20, 4),
    }
    pairs = pair_queries(MATCHER, student, teacher)
    assert torch.equal(pairs["t_logits"], pairs["s_logits"])
    assert torch.allclose(pairs["t_points"], pairs["s_points"], atol=1e-6)
    targets = element_targets([MapElement(c, p) for c, p in shapes], grid, 20)
    rows, cols, _ = MATCHER(student["logits"], student["points"], [targets])[0]
    assert cols[rows.argsort()].tolist() == order


def test_gradients_reach_the_student_and_the_adapters_never_the_teacher(teacher_file):
    kd = distiller(teacher_file)
    student, batch, outputs = outputs_of(STUDENT, 0)
    terms, parts = kd(outputs, batch, student)
    sum(terms.values()).backward()
    assert set(terms) == {"map", "relation", "feature", "head"}
    assert {"relation", "feature_low", "feature_high", "head_cls", "head_points"} <= set(parts)
    assert all(p.grad is not None for p in student.image_encoder.parameters())
    assert kd.low_adapter.weight.grad.abs().sum() > 0 and kd.high_adapter.weight.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in kd.teacher.parameters())
    assert not kd.teacher.training
    assert [n for n, _ in kd.named_parameters()] == [
        "low_adapter.weight",
        "low_adapter.bias",
        "high_adapter.weight",
        "high_adapter.bias",
    ]


def test_feature_adapter_puts_learned_maps_where_channels_agree():
    """Same channels: no adapter by default; with feature_adapter a 1x1 conv and a linear map sit
    where the identity was (set to the identity, they give the same loss) and learn."""
    torch.manual_seed(3)
    teacher = build_model(TEACHER)
    student, batch, outputs = outputs_of(STUDENT, 0)
    plain = Distiller(DistillConfig("t.safetensors", relation=0.0, head=0.0), STUDENT, teacher)
    adapted = Distiller(DistillConfig("t.safetensors", relation=0.0, head=0.0, feature_adapter=True), STUDENT, teacher)
    assert list(plain.parameters()) == []
    assert isinstance(adapted.low_adapter, torch.nn.Conv2d) and isinstance(adapted.high_adapter, torch.nn.Linear)
    with torch.no_grad():
        adapted.low_adapter.weight.copy_(torch.eye(32)[:, :, None, None])
        adapted.high_adapter.weight.copy_(torch.eye(32))
        adapted.low_adapter.bias.zero_()
        adapted.high_adapter.bias.zero_()
    feature = plain(outputs, batch, student)[0]["feature"].item()
    assert adapted(outputs, batch, student)[0]["feature"].item() == pytest.approx(feature, rel=1e-5)
    torch.nn.init.normal_(adapted.low_adapter.weight, std=0.1)
    terms, _ = adapted(outputs, batch, student)
    assert abs(terms["feature"].item() - feature) > 1e-4
    terms["feature"].backward()
    assert adapted.low_adapter.weight.grad.abs().sum() > 0 and adapted.high_adapter.weight.grad.abs().sum() > 0


def grad_norms(loss, params) -> list[float]:
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return [0.0 if g is None else float(g.norm()) for g in grads]


def test_each_term_reaches_the_parameters_it_should_and_only_those(teacher_file):
    """relation: the two BEV views and what feeds them, never the decoder; feature and head: the
    decoder too."""
    kd = distiller(teacher_file)
    student, batch, outputs = outputs_of(STUDENT, 0)
    terms, _ = kd(outputs, batch, student)
    decoder = [p for n, p in student.named_parameters() if n.startswith("decoder.")]
    views = [p for n, p in student.named_parameters() if n.startswith("view.")]
    assert decoder and views
    assert max(grad_norms(terms["relation"], decoder)) == 0.0
    assert max(grad_norms(terms["relation"], views)) > 0.0
    for name in ("feature", "head"):
        assert max(grad_norms(terms[name], decoder)) > 0.0, name


def test_each_term_carries_weight_at_the_plans_lambdas(teacher_file):
    """At the benchmark's lambdas every distillation term moves the student's gradient: its share of
    the summed gradient norms is at least 1 % (a mis-scaled term sits far below)."""
    setting = {k: v for k, v in PLAN.distill.items()}
    kd = distiller(teacher_file, **setting)
    student, batch, outputs = outputs_of(STUDENT, 0)
    terms, _ = kd(outputs, batch, student)
    grads = term_gradients(terms, list(student.parameters()))
    shares = gradient_shares(grads)
    assert sum(shares.values()) == pytest.approx(1.0)
    cosines = gradient_cosines(grads)
    assert set(cosines) == {"relation", "feature", "head"} and all(-1 <= c <= 1 for c in cosines.values())
    g = grads["map"]
    assert gradient_cosines({"map": g, "along": 2 * g, "against": -g}) == pytest.approx({"along": 1, "against": -1})
    for name in ("relation", "feature", "head"):
        assert shares[name] > 0.01, shares
        without = sum(v for k, v in terms.items() if k != name)
        full = torch.cat(
            [g.flatten() for g in torch.autograd.grad(sum(terms.values()), student.parameters(), retain_graph=True)]
        )
        rest = torch.cat([g.flatten() for g in torch.autograd.grad(without, student.parameters(), retain_graph=True)])
        assert float((full - rest).norm() / rest.norm()) > 0.01, name


def test_a_zero_weight_removes_its_term_and_adds_nothing(teacher_file):
    student, batch, outputs = outputs_of(STUDENT, 0)
    terms, parts = distiller(teacher_file, relation=0, feature=0, head=0)(outputs, batch, student)
    assert set(terms) == {"map"} and float(parts["total"]) == pytest.approx(float(parts["map_total"]))
    assert not {"relation", "feature_low", "head_cls"} & set(parts)
    terms, parts = distiller(teacher_file, relation=0, feature=0)(outputs, batch, student)
    assert set(terms) == {"map", "head"} and "head_cls" in parts and not {"relation", "feature_low"} & set(parts)


def test_distillation_steps_lower_the_distillation_loss(teacher_file):
    kd = distiller(teacher_file)
    student, batch, _ = outputs_of(STUDENT, 0)
    optimizer = torch.optim.AdamW([*student.parameters(), *kd.parameters()], lr=2e-3)

    def distillation_part():
        terms, _ = kd(student(batch), batch, student)
        return sum(v for k, v in terms.items() if k != "map")

    with torch.no_grad():
        before = distillation_part()
    for _ in range(15):
        loss = distillation_part()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = distillation_part()
    assert after < 0.7 * before, (before, after)


def test_incompatible_teacher_is_a_clear_error(tmp_path, teacher_file):
    other = dataclasses.replace(WIDE_TEACHER, bev_size=(20, 10))
    save_model(tmp_path / "t.safetensors", build_model(other))
    with pytest.raises(ConfigError, match=r"student bev_size \[40, 20\] != teacher \[20, 10\]"):
        Distiller.from_config(DistillConfig(str(tmp_path / "t.safetensors")), STUDENT, torch.device("cpu"))
    save_model(tmp_path / "s.safetensors", build_model(STUDENT))
    with pytest.raises(ConfigError, match="is a student, not a teacher"):
        Distiller.from_config(DistillConfig(str(tmp_path / "s.safetensors")), STUDENT, torch.device("cpu"))


def test_trainer_distils_logs_gradient_shares_and_resumes_with_the_adapters(tmp_path, teacher_file):
    path = experiment_yaml(tmp_path)
    path.write_text(path.read_text() + f"distill: {{teacher: {teacher_file}, relation: 0.1}}\n")
    config = load_config(ExperimentConfig, path)
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, grad_share_every=2))
    Trainer(config, tmp_path / "kd", "cpu", max_steps=2, progress=False).run()
    adapters = {k: v.clone() for k, v in Trainer(config, tmp_path / "kd", "cpu").loss_module.state_dict().items()}
    resumed = Trainer(config, tmp_path / "kd", "cpu", max_steps=3, progress=False)
    resumed.resume()
    for key, value in resumed.loss_module.state_dict().items():
        assert not torch.equal(value, adapters[key]), f"{key} was not restored from the state"
    resumed.run(resume=True)
    records = [json.loads(line) for line in (tmp_path / "kd" / "log.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3]
    assert {"relation", "feature_low", "feature_high", "head_cls", "head_points", "map_total"} <= set(steps[-1]["loss"])
    shares = [r for r in records if "grad_share" in r]
    assert [r["step"] for r in shares] == [1, 3]
    assert set(shares[0]["grad_share"]) == {"map", "relation", "feature", "head"}
    assert set(shares[0]["grad_cosine"]) == {"relation", "feature", "head"}


# ---- the terms rebuilt for the camera-LiDAR gap (issue: distillation that helps)


def test_feature_weights_put_more_weight_on_map_cells_than_on_empty_road():
    """A hand-made raster: one divider along row 5 of a 12 x 8 grid; dilated by 1 cell, rows 4-6 are
    map (weight 1), the rest road (0.05); a confident teacher cell away from the line is map too.
    The weighted loss then follows an error on the line 20 times more than the same error off it."""
    raster = torch.zeros(1, 3, 12, 8)
    raster[0, 0, 5, :] = 1.0
    confident = torch.zeros(1, 1, 12, 8, dtype=torch.bool)
    confident[0, 0, 10, 2] = True
    weights = map_cell_weights(raster, confident, dilate=1, background=0.05)
    expected = torch.full((12, 8), 0.05)
    expected[4:7, :] = 1.0
    expected[10, 2] = 1.0
    assert torch.equal(weights[0, 0], expected)
    teacher = torch.zeros(1, 4, 12, 8)
    on_line, off_line = teacher.clone(), teacher.clone()
    on_line[0, :, 5, 3] = 1.0
    off_line[0, :, 0, 3] = 1.0
    ratio = bev_feature_loss(on_line, teacher, weights, False) / bev_feature_loss(off_line, teacher, weights, False)
    assert float(ratio) == pytest.approx(20.0)
    assert float(bev_feature_loss(on_line, teacher, None, False)) == pytest.approx(1 / 96)


def test_normalized_features_compare_directions_not_scales():
    """Per-cell standardization over the channels: a student feature that is the teacher's scaled
    and shifted per cell costs nothing normalized, and a lot unnormalized."""
    torch.manual_seed(0)
    teacher = torch.randn(2, 8, 6, 4)
    student = 3.0 * teacher + torch.randn(2, 1, 6, 4)
    assert float(bev_feature_loss(student, teacher, None, True)) == pytest.approx(0.0, abs=1e-4)
    assert float(bev_feature_loss(student, teacher, None, False)) > 1.0


def test_pseudo_labels_keep_exactly_the_predictions_at_the_threshold_and_close_closed_shapes():
    grid = BEVGrid((40, 20))
    logits = torch.full((5, 3), -6.0)
    probabilities = [0.9, 0.4, 0.39, 0.7, 0.1]  # queries 0, 1 and 3 reach 0.4
    classes = [CLASS_IDS["ped_crossing"], CLASS_IDS["divider"], CLASS_IDS["boundary"], CLASS_IDS["boundary"], 0]
    for q, (p, c) in enumerate(zip(probabilities, classes, strict=True)):
        logits[q, c] = math.log(p / (1 - p))
    points = torch.rand(5, 20, 2, generator=torch.Generator().manual_seed(0))
    elements = pseudo_elements(logits, points, grid, 0.4)
    assert [e.class_id for e in elements] == [classes[0], classes[1], classes[3]]
    assert [e.score for e in elements] == pytest.approx([0.9, 0.4, 0.7], abs=1e-6)
    metres = grid.denormalize(points).numpy()
    crossing, divider = elements[0].points, elements[1].points
    assert elements[0].closed
    assert np.allclose(crossing[:-1], metres[0, :-1], atol=1e-5) and np.array_equal(crossing[-1], crossing[0])
    assert not elements[1].closed and np.allclose(divider, metres[1], atol=1e-5)
    targets = element_targets(elements, grid, 20)
    assert targets["permutation_mask"][0].sum() == 2 * 19 and targets["permutation_mask"][1].sum() == 2


def test_the_gate_keeps_the_teachers_elements_near_ground_truth_of_their_class():
    line = np.c_[np.linspace(-10, 10, 20), np.zeros(20)]
    truth = [MapElement(CLASS_IDS["divider"], line)]
    near, far = MapElement(0, line + [0.0, 0.5]), MapElement(0, line + [0.0, 3.0])
    other_class = MapElement(CLASS_IDS["boundary"], line)
    assert teacher_is_right([near, far, other_class], truth, 1.0) == [True, False, False]


def test_the_warm_up_ramps_each_weight_from_zero_to_its_value(teacher_file):
    """With warmup_steps 4 every term is 0 at step 0, a quarter at step 1, and whole from step 4."""
    kd = distiller(teacher_file, warmup_steps=4)
    student, batch, outputs = outputs_of(STUDENT, 0)
    full = {k: float(v.detach()) for k, v in kd(outputs, batch, student)[0].items()}
    assert set(full) == {"map", "relation", "feature", "head"}
    for step, share in ((0, 0.0), (1, 0.25), (2, 0.5), (4, 1.0), (40, 1.0)):
        terms = {k: float(v.detach()) for k, v in kd(outputs, batch, student, step)[0].items()}
        assert terms["map"] == pytest.approx(full["map"])
        for name in ("relation", "feature", "head"):
            assert terms[name] == pytest.approx(share * full[name], rel=1e-5, abs=1e-9), (name, step)


REBUILT = {
    "feature_adapter": True,
    "feature_norm": True,
    "feature_background": 0.05,
    "head_targets": "pseudo",
    "pseudo_threshold": 0.001,  # the untrained teacher scores about 0.01 (focal prior)
}


@pytest.mark.parametrize("setting", [{}, REBUILT, REBUILT | {"teacher_gate": 5.0}], ids=["soft", "rebuilt", "gated"])
def test_every_part_of_every_term_sends_gradient_to_the_student_on_its_own(teacher_file, setting):
    kd = distiller(teacher_file, **setting)
    student, batch, outputs = outputs_of(STUDENT, 0)
    pieces = kd.pieces(outputs, batch, kd.teacher_outputs(batch), kd.pseudo_labels(kd.teacher_outputs(batch), batch))
    expected = {"relation_ab", "relation_ba", "feature_low", "feature_high", "head_cls", "head_points"}
    assert expected <= set(pieces)
    params = [p for p in student.parameters()]
    for name in expected:
        assert max(grad_norms(pieces[name], params)) > 0.0, name


def test_the_teacher_cache_gives_the_teachers_outputs_without_running_it_again(teacher_file):
    kd = distiller(teacher_file)
    student, batch, outputs = outputs_of(STUDENT, 0)
    fresh = kd.run_teacher(batch)
    first = kd.teacher_outputs(batch)
    calls = []
    handle = kd.teacher.register_forward_hook(lambda *_: calls.append(1))
    again = kd.teacher_outputs(batch)
    handle.remove()
    assert calls == [] and set(again) == set(fresh)
    for key in fresh:
        assert torch.equal(again[key], fresh[key]) and torch.equal(first[key], fresh[key]), key
    uncached = distiller(teacher_file, cache_teacher=False)
    assert uncached.cache is None
    terms, _ = uncached(outputs, batch, student)
    cached_terms, _ = kd(outputs, batch, student)
    for name, value in terms.items():
        assert float(cached_terms[name].detach()) == pytest.approx(float(value.detach()), rel=1e-6), name
