"""The node's parameter table, config/online_map.yaml and parameter validation."""

from pathlib import Path

import pytest
import yaml

from mapdistill_ros.nodes.node_params import (
    DEFAULTS,
    NODE_NAME,
    PARAMETERS,
    RAW_TOPICS,
    RUNTIME,
    runtime_update,
    validate_parameters,
)

YAML = Path(__file__).resolve().parent.parent / "config/online_map.yaml"


def test_yaml_holds_exactly_the_table_with_its_defaults():
    values = yaml.safe_load(YAML.read_text())[NODE_NAME]["ros__parameters"]
    assert list(values) == [p.name for p in PARAMETERS]
    for p in PARAMETERS:
        default = list(p.default) if p.type is list else p.default
        assert values[p.name] == default and type(values[p.name]) is p.type, p.name
    assert validate_parameters(values, str(YAML)) == {
        k: list(v) if isinstance(v, tuple) else v for k, v in DEFAULTS.items()
    }


def test_yaml_comments_each_key_with_its_description():
    lines = YAML.read_text().splitlines()
    keys = {line.split(":")[0].strip(): i for i, line in enumerate(lines) if line.startswith("    ") and ":" in line}
    for p in PARAMETERS:
        comment, i = [], keys[p.name] - 1
        while lines[i].strip().startswith("#"):
            comment.insert(0, lines[i].strip().lstrip("# "))
            i -= 1
        assert " ".join(comment) == p.description, p.name


def test_defaults_and_topics():
    params = validate_parameters({})
    assert params["image_topics"][0] == "/CAM_FRONT/image_rect/compressed"
    assert params["camera_info_topics"][5] == "/CAM_BACK_RIGHT/camera_info"
    assert validate_parameters({"compressed": False})["image_topics"] == list(RAW_TOPICS)
    custom = [f"/rig/cam{i}/image" for i in range(6)]
    assert validate_parameters({"compressed": False, "image_topics": custom})["image_topics"] == custom
    assert validate_parameters({"score_threshold": 1, "sync_slop_s": 2})["sync_slop_s"] == 2.0


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"slop": 0.1}, ["unknown parameter 'slop'"]),
        ({"queue_size": 2.5}, ["'queue_size'", "int"]),
        ({"queue_size": True}, ["'queue_size'", "int"]),
        ({"compressed": "yes"}, ["'compressed'", "bool"]),
        ({"image_topics": ["/a"] * 6}, ["'image_topics'", "twice"]),
        ({"image_topics": ["/a", "/b"]}, ["'image_topics'", "6 topic names"]),
        ({"camera_info_topics": ["/a", "/b", "/c", "/d", "/e", ""]}, ["'camera_info_topics'"]),
        ({"score_threshold": 1.5}, ["'score_threshold'", "out of range"]),
        ({"min_cameras": 7}, ["'min_cameras'"]),
        ({"sync_slop_s": 0.0}, ["'sync_slop_s'"]),
        ({"queue_size": 0}, ["'queue_size'"]),
        ({"max_frame_age_s": -1.0}, ["'max_frame_age_s'"]),
        ({"marker_width": 0.0}, ["'marker_width'"]),
        ({"device": "gpu"}, ["'device'"]),
        ({"input_reliability": "transient_local"}, ["'input_reliability'"]),
        ({"weights": ""}, ["'weights'"]),
    ],
)
def test_validation_errors_name_the_source_and_parameter(values, words):
    with pytest.raises(ValueError) as error:
        validate_parameters(values, "online_map.yaml")
    assert all(w in str(error.value) for w in ["online_map.yaml", *words]), str(error.value)


def test_runtime_changes_apply_only_to_runtime_parameters_with_start_up_validation():
    current = validate_parameters({})
    assert RUNTIME == ("score_threshold", "max_frame_age_s", "marker_width")
    changed = runtime_update(current, {"score_threshold": 0.9, "use_sim_time": True}, "node /online_map_node")
    assert changed == {**current, "score_threshold": 0.9}  # rclpy's own use_sim_time is left to rclpy
    with pytest.raises(ValueError, match=r"'score_threshold' = 1.5 is out of range"):
        runtime_update(current, {"score_threshold": 1.5}, "node /online_map_node")
    with pytest.raises(ValueError, match=r"node /online_map_node: parameter 'min_cameras' is read at start-up only"):
        runtime_update(current, {"min_cameras": 9}, "node /online_map_node")
