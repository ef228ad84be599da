"""Every parameter of the online map node, in one table, and their validation.

``config/online_map.yaml`` (ROS 2 params-file format, node ``online_map_node``) holds exactly these
parameters with these defaults. Types are ROS parameter types: bool, int, float (double), str and
list (string array). Parameters marked ``runtime`` may change while the node runs (``ros2 param
set``), validated like at start-up (``runtime_update``); the others are read-only once it started.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mapdistill_core.data.sample import CAMERA_NAMES
from mapdistill_core.options import BACKENDS, DEVICE, TORCH_ONLY, torch_only_message
from mapdistill_ros import topics

NODE_NAME = "online_map_node"
COMPRESSED_TOPICS = tuple(topics.image_topic(c, compressed=True) for c in CAMERA_NAMES)
RAW_TOPICS = tuple(topics.image_topic(c, compressed=False) for c in CAMERA_NAMES)
RELIABILITIES = ("best_effort", "reliable")


@dataclass(frozen=True)
class Parameter:
    name: str
    default: Any
    type: type
    description: str
    runtime: bool = False


PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        "image_topics",
        COMPRESSED_TOPICS,
        list,
        "Six image topics in rig order (CAM_FRONT, CAM_FRONT_RIGHT, CAM_FRONT_LEFT, CAM_BACK, CAM_BACK_LEFT, "
        "CAM_BACK_RIGHT); left at the default with compressed false, they become /<CAM>/image_rect.",
    ),
    Parameter(
        "lidar_topic",
        topics.LIDAR,
        str,
        "sensor_msgs/PointCloud2 topic read with teacher weights (camera + LiDAR); students ignore it.",
    ),
    Parameter("compressed", True, bool, "Subscribe to sensor_msgs/CompressedImage (jpeg/png), else sensor_msgs/Image."),
    Parameter(
        "camera_info_topics",
        tuple(topics.camera_info_topic(c) for c in CAMERA_NAMES),
        list,
        "Six sensor_msgs/CameraInfo topics in rig order.",
    ),
    Parameter(
        "backend",
        "torch",
        str,
        "Inference backend: torch (weights = .safetensors) or onnxruntime (weights = .onnx from mapdistill export).",
    ),
    Parameter(
        "weights",
        "checkpoints/synthetic_student.safetensors",
        str,
        "Weights (.safetensors or .onnx): a student (cameras), or a teacher (cameras + lidar_topic).",
    ),
    Parameter(
        "model_config", "", str, "torch backend: model config YAML; empty: the config stored in the weights' metadata."
    ),
    Parameter("device", "auto", str, "Device: auto (cuda when present, else cpu), cpu, cuda or cuda:<index>."),
    Parameter("half", False, bool, "torch backend: float16 autocast (GPU only); onnxruntime: export with --fp16."),
    Parameter(
        "cuda_graphs",
        False,
        bool,
        "torch backend: capture the model as a CUDA graph per input shape and replay it (GPU only; CPU: eager).",
    ),
    Parameter("score_threshold", 0.3, float, "Publish elements scoring at least this, in [0, 1].", runtime=True),
    Parameter("sync_slop_s", 0.1, float, "Largest spread of camera stamps within one synchronized set, seconds."),
    Parameter("queue_size", 5, int, "Most camera sets waiting for synchronization at once."),
    Parameter("min_cameras", 4, int, "Fewest cameras a set may have and still be used (1 to 6)."),
    Parameter(
        "time_jump_s",
        1.0,
        float,
        "Stamps (or ROS time) going back by more than this, seconds, mean a bag played again or looped: "
        "the node resets its synchronization and transforms and goes on; smaller steps back are late messages.",
    ),
    Parameter(
        "max_frame_age_s", 0.5, float, "Skip a set older than this when inference can start, seconds.", runtime=True
    ),
    Parameter("output_frame", topics.BASE_FRAME, str, "Ego frame: the model predicts in it, cameras are found in it."),
    Parameter("marker_width", 0.2, float, "Line width of the RViz markers, metres.", runtime=True),
    Parameter(
        "input_reliability", "best_effort", str, "QoS reliability of the image subscriptions: best_effort, reliable."
    ),
)
DEFAULTS: dict[str, Any] = {p.name: p.default for p in PARAMETERS}

_POSITIVE = ("sync_slop_s", "queue_size", "max_frame_age_s", "marker_width", "time_jump_s")


def _typed(p: Parameter, value: Any, source: str) -> Any:
    if p.type is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if p.type is list and isinstance(value, tuple):
        value = list(value)
    if p.type in (int, float) and isinstance(value, bool) or not isinstance(value, p.type):
        raise ValueError(f"{source}: parameter '{p.name}' must be {p.type.__name__}, got {value!r}")
    return value


def _topic_list(name: str, value: list, source: str) -> list[str]:
    if len(value) != len(CAMERA_NAMES) or not all(isinstance(t, str) and t and not t.isspace() for t in value):
        raise ValueError(f"{source}: parameter '{name}' must be {len(CAMERA_NAMES)} topic names, got {value!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"{source}: parameter '{name}' names a topic twice: {value!r}")
    return value


def validate_parameters(values: dict[str, Any], source: str = "parameters") -> dict[str, Any]:
    """The complete, checked parameter dict: defaults for what ``values`` leaves out.

    Raises ValueError naming ``source`` and the parameter for an unknown name, a wrong type, a value
    out of range or topic lists that are not six distinct names.
    """
    unknown = sorted(set(values) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"{source}: unknown parameter '{unknown[0]}' (known: {', '.join(DEFAULTS)})")
    out = {p.name: _typed(p, values.get(p.name, p.default), source) for p in PARAMETERS}
    if not out["compressed"] and tuple(out["image_topics"]) == COMPRESSED_TOPICS:
        out["image_topics"] = list(RAW_TOPICS)
    for name in ("image_topics", "camera_info_topics"):
        _topic_list(name, out[name], source)
    checks = {
        "score_threshold": 0.0 <= out["score_threshold"] <= 1.0,
        "min_cameras": 1 <= out["min_cameras"] <= len(CAMERA_NAMES),
        "device": DEVICE.fullmatch(out["device"]) is not None,
        "backend": out["backend"] in BACKENDS,
        "input_reliability": out["input_reliability"] in RELIABILITIES,
        "weights": bool(out["weights"]),
        "output_frame": bool(out["output_frame"]),
        "lidar_topic": bool(out["lidar_topic"].strip()),
        **{name: out[name] > 0 for name in _POSITIVE},
    }
    for name, ok in checks.items():
        if not ok:
            p = next(p for p in PARAMETERS if p.name == name)
            raise ValueError(f"{source}: parameter '{name}' = {out[name]!r} is out of range ({p.description})")
    wrong = torch_only_message(
        out["backend"], {k: f"parameter '{k}'" for k in TORCH_ONLY}, **{k: out[k] for k in TORCH_ONLY}
    )
    if wrong:
        raise ValueError(f"{source}: {wrong}")
    return out


RUNTIME = tuple(p.name for p in PARAMETERS if p.runtime)


def runtime_update(current: dict[str, Any], changes: dict[str, Any], source: str = "parameters") -> dict[str, Any]:
    """The node's parameters after ``changes`` set while it runs (names that are not ours, such as
    rclpy's use_sim_time, are left to rclpy). Raises ValueError naming ``source`` and the parameter
    for one that is read at start-up only, or a value ``validate_parameters`` refuses."""
    ours = {name: value for name, value in changes.items() if name in DEFAULTS}
    fixed = sorted(set(ours) - set(RUNTIME))
    if fixed:
        raise ValueError(
            f"{source}: parameter '{fixed[0]}' is read at start-up only (restart the node to change it); "
            f"these change at runtime: {', '.join(RUNTIME)}"
        )
    return validate_parameters({**current, **ours}, source)
