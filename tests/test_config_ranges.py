"""Every numeric field of every config section declares its range, and a value outside it is one
line naming the file and the key when the file is read (before any work)."""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path

import pytest
import yaml

from mapdistill_core.config import load_config
from mapdistill_core.data.synthetic.config import SyntheticConfig
from mapdistill_core.distill.config import DistillConfig
from mapdistill_core.errors import ConfigError
from mapdistill_core.experiment.plan import ExperimentPlan
from mapdistill_core.training.config import ExperimentConfig

ROOT = Path(__file__).resolve().parent.parent
ROOTS = (ExperimentConfig, ExperimentPlan, SyntheticConfig)
NUMBERS = (int, float)


def numeric(kind) -> bool:
    """Whether a field of type ``kind`` holds numbers (a number, or a tuple, list or mapping of them)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        return any(numeric(a) for a in args if a is not type(None))
    if origin in (tuple, list):
        return any(a in NUMBERS for a in args)
    if origin is dict:
        return len(args) == 2 and args[1] in NUMBERS
    return kind in NUMBERS


def sections(cls, seen=None):
    seen = set() if seen is None else seen
    if cls in seen:
        return
    seen.add(cls)
    yield cls
    for kind in typing.get_type_hints(cls).values():
        for inner in (kind, *typing.get_args(kind)):
            if dataclasses.is_dataclass(inner):
                yield from sections(inner, seen)


def test_every_numeric_field_of_every_section_declares_its_range():
    walked = [cls for root in ROOTS for cls in sections(root)]
    assert len(walked) >= 12  # ExperimentConfig's model, data, train, distill sections and their parts
    undeclared = [
        f"{cls.__name__}.{f.name}"
        for cls in walked
        for f in dataclasses.fields(cls)
        if numeric(typing.get_type_hints(cls)[f.name]) and "range" not in f.metadata
    ]
    assert undeclared == []


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("train", "batch_size", -4, "train.batch_size: must be >= 1, got -4"),
        ("train", "epochs", 0, "train.epochs: must be >= 1, got 0"),
        ("train", "lr", 0.0, "train.lr: must be > 0, got 0.0"),
        ("train", "min_lr_ratio", 2, "train.min_lr_ratio: must be in [0, 1], got 2.0"),
        ("data", "val_scenes", -1, "data.val_scenes: must be >= 0, got -1"),
        ("model", "bev_size", [80, 0], "model.bev_size: must be >= 1, got (80, 0)"),
        ("distill", "pseudo_threshold", 1.0, "distill.pseudo_threshold: must be in (0, 1), got 1.0"),
    ],
)
def test_a_value_out_of_range_names_the_file_and_the_key(tmp_path, section, key, value, expected):
    config = yaml.safe_load((ROOT / "config/synthetic_distill.yaml").read_text())
    config[section][key] = value
    config["data"]["world"] = "config/synthetic_train_world.yaml"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError) as caught:
        load_config(ExperimentConfig, path)
    assert str(caught.value) == f"{path}.{expected}"


def test_a_config_made_in_code_is_held_to_the_same_ranges():
    """dataclasses.replace skips the loader: __post_init__ checks the declared ranges (check_ranges)."""
    config = load_config(ExperimentConfig, ROOT / "config/kd_student.yaml")
    with pytest.raises(ConfigError, match=r"^model.neck_channels: must be >= 1, got 0$"):
        dataclasses.replace(config.model, neck_channels=0)
    with pytest.raises(ConfigError, match=r"^decoder.num_points: must be >= 2, got 1$"):
        dataclasses.replace(config.model.decoder, num_points=1)
    with pytest.raises(ConfigError, match=r"^train.epochs: must be >= 1, got 0$"):
        dataclasses.replace(config.train, epochs=0)
    distill = DistillConfig(teacher="teacher.safetensors")
    with pytest.raises(ConfigError, match=r"^distill.pseudo_threshold: must be in \(0, 1\), got 1.5$"):
        dataclasses.replace(distill, pseudo_threshold=1.5)
    plan = load_config(ExperimentPlan, ROOT / "config/experiment_kd.yaml")
    with pytest.raises(ConfigError, match=r"^plan.parallel: must be >= 1, got 0$"):
        dataclasses.replace(plan, parallel=0)
