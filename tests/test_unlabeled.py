"""Unlabelled drives: written without their map, read without it, and trained on only through the
teacher (its pseudo labels are their map targets), never through a ground truth they do not have."""

import dataclasses

import numpy as np
import pytest
import torch

from mapdistill_core.checkpoint import load_model, save_model
from mapdistill_core.config import load_config
from mapdistill_core.data.batch import collate, to_device
from mapdistill_core.data.sample import load_sample, save_sample, without_labels
from mapdistill_core.data.synthetic.dataset import SyntheticDataset, read_index
from mapdistill_core.data.synthetic.generate import generate_split
from mapdistill_core.distill.config import DistillConfig
from mapdistill_core.distill.distiller import Distiller
from mapdistill_core.distill.pseudo_labels import pseudo_elements
from mapdistill_core.models.model import build_model
from mapdistill_core.training.config import ExperimentConfig
from mapdistill_core.training.datasets import build_train_set
from mapdistill_core.training.trainer import Trainer, gradient_cosines, gradient_shares, term_gradients
from tests.model_fixtures import STUDENT, TEACHER, WORLD, experiment_yaml, samples


def test_an_unlabelled_sample_cannot_carry_ground_truth():
    sample = samples()[0]
    assert sample.ground_truth and sample.labeled
    with pytest.raises(ValueError, match="an unlabelled sample carries no ground truth"):
        dataclasses.replace(sample, labeled=False)
    bare = without_labels(sample)
    assert bare.ground_truth == () and not bare.labeled and np.array_equal(bare.images, sample.images)


def test_the_unlabeled_split_is_written_without_its_map(tmp_path):
    """The files hold no ground-truth field at all, so nothing reading them can find the map; the
    same drives written with their map (the upper bound) are the same sensor data."""
    generate_split(WORLD, "unlabeled", tmp_path / "u", scenes=1)
    generate_split(WORLD, "unlabeled", tmp_path / "with", scenes=1, labels=True)
    assert read_index(tmp_path / "u")["labels"] is False
    bare, full = (
        SyntheticDataset(None, "unlabeled", root=tmp_path / "u"),
        SyntheticDataset(None, "unlabeled", root=tmp_path / "with"),
    )
    files = sorted((tmp_path / "u").rglob("*.npz"))
    assert len(files) == len(bare) == WORLD.samples_per_scene
    with np.load(files[0], allow_pickle=False) as data:
        assert not [name for name in data.files if name.startswith("vector_")]
    assert not bare[0].labeled and bare[0].ground_truth == ()
    assert full[0].labeled and full[0].ground_truth and np.array_equal(full[0].images, bare[0].images)
    on_the_fly = SyntheticDataset(WORLD, "unlabeled", 1)[0]
    assert not on_the_fly.labeled and on_the_fly.ground_truth == ()
    save_sample(bare[1], tmp_path / "again.npz")
    assert not load_sample(tmp_path / "again.npz").labeled


def test_a_batch_gives_an_unlabelled_sample_no_targets_and_the_distiller_gives_it_the_teachers():
    torch.manual_seed(0)
    teacher = build_model(TEACHER)
    labelled, unlabelled = samples()[0], without_labels(samples()[1])
    grid = teacher.grid
    batch = collate([labelled, unlabelled], STUDENT.image_size, grid, 20)
    assert batch["labeled"].tolist() == [True, False]
    assert batch["targets"][1] is None and batch["segmentation"][1].sum() == 0
    assert to_device(batch, torch.device("cpu"))["targets"][1] is None
    kd = Distiller(
        DistillConfig("t.safetensors", relation=0, feature=0, head=0, pseudo_threshold=0.001), STUDENT, teacher
    )
    teacher_out = kd.teacher_outputs(batch)
    pseudo = kd.pseudo_labels(teacher_out, batch)
    filled = kd.with_pseudo_targets(batch, pseudo)
    expected = pseudo_elements(teacher_out["logits"][1], teacher_out["points"][1], grid, 0.001)
    assert len(filled["targets"][1]["labels"]) == len(expected) > 0
    assert filled["targets"][1]["labels"].tolist() == [e.class_id for e in expected]
    assert filled["targets"][0] is batch["targets"][0] and filled["segmentation"][1].sum() > 0
    student = build_model(STUDENT)
    terms, _ = kd(student(batch), batch, student)
    assert set(terms) == {"map"} and torch.isfinite(terms["map"])


def test_unlabelled_drives_need_a_teacher_and_train_beside_the_labelled_ones(tmp_path):
    path = experiment_yaml(tmp_path)
    text = path.read_text().replace("  val_scenes: 1", "  val_scenes: 1\n  unlabeled_scenes: 1")
    path.write_text(text)
    with pytest.raises(Exception, match="unlabeled_scenes needs a distill section"):
        load_config(ExperimentConfig, path)
    teacher_file = tmp_path / "teacher.safetensors"
    save_model(teacher_file, build_model(TEACHER))
    path.write_text(text + f"distill: {{teacher: {teacher_file}, relation: 0.1, pseudo_threshold: 0.001}}\n")
    config = load_config(ExperimentConfig, path)
    train_set = build_train_set(config.data)
    assert [s.labeled for s in train_set] == [True] * 8 + [False] * WORLD.samples_per_scene
    Trainer(config, tmp_path / "run", "cpu", max_steps=3, progress=False).run()
    assert (tmp_path / "run" / "last.safetensors").exists()
    upper = load_config(ExperimentConfig, path)
    upper = dataclasses.replace(upper, data=dataclasses.replace(upper.data, unlabeled_labels=True), distill=None)
    assert all(s.labeled and s.ground_truth for s in build_train_set(upper.data))
    assert load_model(tmp_path / "run" / "last.safetensors")[0].config == config.model


def test_a_batch_without_a_labelled_sample_logs_a_zero_head_share_instead_of_failing():
    """The pseudo-label head teaches the labelled samples only: on a batch of unlabelled ones it is a
    constant, and the gradient-share log (every grad_share_every steps) gives it a zero share."""
    torch.manual_seed(0)
    teacher, student = build_model(TEACHER), build_model(STUDENT)
    batch = collate([without_labels(s) for s in samples()], STUDENT.image_size, teacher.grid, 20)
    config = DistillConfig("t.safetensors", head_targets="pseudo", pseudo_threshold=0.001)
    terms, _ = Distiller(config, STUDENT, teacher)(student(batch), batch, student)
    assert not terms["head"].requires_grad and terms["map"].requires_grad
    grads = term_gradients(terms, [p for p in student.parameters() if p.requires_grad])
    shares, cosines = gradient_shares(grads), gradient_cosines(grads)
    assert shares["head"] == 0.0 and cosines["head"] == 0.0 and shares["map"] > 0 and shares["feature"] > 0
