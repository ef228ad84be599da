"""Shipped files and paths in configs resolve the same from any folder (mapdistill_core.resources)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mapdistill_core.checkpoint import read_model_config
from mapdistill_core.config import load_config
from mapdistill_core.errors import CheckpointError, ConfigError
from mapdistill_core.experiment.plan import ExperimentPlan
from mapdistill_core.resources import resolve, shipped
from mapdistill_core.training.config import ExperimentConfig
from tests.model_fixtures import WORLD_YAML

REPO = Path(__file__).resolve().parents[1]


def test_a_user_file_wins_and_a_shipped_name_is_found_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    expected = str((REPO / "config" / "synthetic.yaml").resolve())
    assert resolve("synthetic.yaml", "config") == expected
    assert resolve("config/synthetic.yaml", "config") == expected
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "synthetic.yaml").write_text("image_height: 32\n")
    assert resolve("config/synthetic.yaml", "config") == "config/synthetic.yaml"  # the user's, relative
    with pytest.raises(FileNotFoundError, match=r"elsewhere/synthetic.yaml: no such file \(looked for"):
        resolve("elsewhere/synthetic.yaml", "config")  # only <name> and <kind>/<name> mean the shipped file
    assert shipped("msg", "MapElement.msg") == (REPO / "msg" / "MapElement.msg").resolve()
    assert read_model_config("synthetic_student.safetensors").kind == "student"
    with pytest.raises(CheckpointError, match="nothere.safetensors: no such file"):
        read_model_config("checkpoints/nothere.safetensors")


def test_paths_inside_a_config_are_relative_to_the_config_file(tmp_path, monkeypatch):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "world.yaml").write_text(WORLD_YAML)
    (folder / "run.yaml").write_text((REPO / "config" / "synthetic_student.yaml").read_text().replace(
        "world: synthetic_train_world.yaml", "world: world.yaml"))  # fmt: skip
    monkeypatch.chdir(tmp_path)
    assert load_config(ExperimentConfig, "mine/run.yaml").data.world == "mine/world.yaml"
    (folder / "world.yaml").unlink()
    with pytest.raises(ConfigError, match=r"mine/run.yaml.data.world: world.yaml: no such file"):
        load_config(ExperimentConfig, "mine/run.yaml")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the shipped plan names its configs relative to itself
    plan = load_config(ExperimentPlan, "experiment_synthetic.yaml")
    assert Path(plan.student).resolve() == (REPO / "config" / "synthetic_student.yaml").resolve()
    student = load_config(ExperimentConfig, plan.student)
    assert Path(student.data.world).resolve() == (REPO / "config" / "synthetic_train_world.yaml").resolve()
