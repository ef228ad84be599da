"""`ros2 launch mapdistill_ros online_map.launch.py [weights:=W] [backend:=B] [device:=D] [rviz:=true] ...`

Starts the online map node (a lifecycle node) with config/online_map.yaml (or params_file) plus the
overrides given on the command line, configures and activates it (autostart:=false leaves it
unconfigured for a lifecycle manager or `ros2 lifecycle set`; a failed configure stops the launch),
and with rviz:=true RViz2 with config/online_map.rviz (off by default: a robot is usually headless;
asking for RViz where rviz2 is not installed stops the launch before anything starts).
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

from launch import LaunchDescription
from mapdistill_ros.nodes.lifecycle_launch import autostart

SHARE = Path(get_package_share_directory("mapdistill_ros"))
ARGUMENTS = {
    "weights": (
        "",
        "student weights (.safetensors, or .onnx with backend onnxruntime), or teacher weights (reads the LiDAR "
        "too); empty: the params file's",
    ),
    "backend": ("", "torch or onnxruntime; empty: the params file's"),
    "config": ("", "model config YAML; empty: the params file's (by default the config in the weights)"),
    "device": ("", "auto, cpu, cuda, cuda:1 ...; empty: the params file's"),
    "params_file": (str(SHARE / "config" / "online_map.yaml"), "node parameters (ROS 2 params file)"),
    "use_sim_time": ("false", "use /clock (true when playing a bag with --clock)"),
    "rviz": ("false", "start RViz2 with config/online_map.rviz (needs rviz2 installed)"),
    "namespace": ("", "namespace of the node"),
    "autostart": ("true", "configure and activate the node (false: a lifecycle manager does)"),
}
OVERRIDES = {"weights": "weights", "backend": "backend", "config": "model_config", "device": "device"}


def nodes(context):
    value = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    if value["rviz"].lower() == "true":
        try:
            get_package_share_directory("rviz2")
        except LookupError:
            raise RuntimeError(
                "rviz:=true but the package 'rviz2' is not installed (install ros-$ROS_DISTRO-rviz2, or launch "
                "with rviz:=false); nothing was started"
            ) from None
    overrides = {param: value[arg] for arg, param in OVERRIDES.items() if value[arg]}
    overrides["use_sim_time"] = value["use_sim_time"].lower() == "true"
    node = LifecycleNode(
        package="mapdistill_ros",
        executable="online_map_node",
        name="online_map_node",
        namespace=value["namespace"],
        parameters=[value["params_file"], overrides],
        output="screen",
    )
    started = autostart(node, "online_map_node") if value["autostart"].lower() == "true" else []
    return [
        node,
        *started,
        Node(
            package="rviz2",
            executable="rviz2",
            arguments=["-d", str(SHARE / "config" / "online_map.rviz")],
            parameters=[{"use_sim_time": overrides["use_sim_time"]}],
            condition=IfCondition(value["rviz"]),
            output="log",
        ),
    ]


def generate_launch_description():
    arguments = [DeclareLaunchArgument(name, default_value=d, description=h) for name, (d, h) in ARGUMENTS.items()]
    return LaunchDescription([*arguments, OpaqueFunction(function=nodes)])
