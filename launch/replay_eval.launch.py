"""`ros2 launch mapdistill_ros replay_eval.launch.py bag:=BAG [weights:=W] [backend:=B] [out:=DIR] [rviz:=false]`

Runs the online map node on sim time and the evaluator, plays the bag (`ros2 bag play --clock`) once
the node is active (its model loaded, so no frame is lost), and the evaluator, which pairs the node's
MapElementArray with /map_gt/elements by stamp, writes DIR/metrics.json when the bag has finished
playing (the same scoring as the offline `mapdistill replay`). A missing bag or `ros2 bag` stops the
launch before anything starts, a node that fails to configure stops it with an error.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    ExecuteProcess,
    IncludeLaunchDescription,
    OpaqueFunction,
    RegisterEventHandler,
    TimerAction,
)
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription
from mapdistill_ros.nodes.lifecycle_launch import when_active

SHARE = Path(get_package_share_directory("mapdistill_ros"))
SETTLE_S = 3.0
"""Seconds between the end of the bag and shutdown, for the last frames to be predicted."""


def check_pieces(context):
    """Stop before anything starts, in one line, when the bag or `ros2 bag` is missing."""
    bag = Path(LaunchConfiguration("bag").perform(context))
    if not (bag / "metadata.yaml").is_file():
        raise RuntimeError(f"bag:={bag}: not a rosbag2 folder (no metadata.yaml); nothing was started")
    try:
        get_package_share_directory("ros2bag")
    except LookupError:
        raise RuntimeError(
            "`ros2 bag` is not installed (package 'ros2bag'; install ros-$ROS_DISTRO-rosbag2 with its MCAP "
            "storage plugin); nothing was started"
        ) from None
    return []


def generate_launch_description():
    arguments = [
        DeclareLaunchArgument("bag", description="rosbag2 folder (e.g. from synthetic2bag or nuscenes2bag)"),
        DeclareLaunchArgument(
            "weights",
            default_value="",
            description="student weights (.safetensors, or .onnx with backend onnxruntime), or teacher weights; "
            "empty: the shipped student",
        ),
        DeclareLaunchArgument("backend", default_value="torch", description="torch or onnxruntime"),
        DeclareLaunchArgument("out", default_value="replay_eval", description="folder for metrics.json"),
        DeclareLaunchArgument("rate", default_value="1.0", description="playback rate"),
        DeclareLaunchArgument("rviz", default_value="false", description="also start RViz2"),
    ]
    play = ExecuteProcess(
        cmd=["ros2", "bag", "play", LaunchConfiguration("bag"), "--clock", "--rate", LaunchConfiguration("rate")],
        output="screen",
    )
    online = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(SHARE / "launch" / "online_map.launch.py")),
        launch_arguments={
            "weights": LaunchConfiguration("weights"),
            "backend": LaunchConfiguration("backend"),
            "use_sim_time": "true",
            "rviz": LaunchConfiguration("rviz"),
        }.items(),
    )
    evaluator = Node(
        package="mapdistill_ros",
        executable="map_evaluator",
        parameters=[{"out": LaunchConfiguration("out"), "use_sim_time": True}],
        output="screen",
    )
    stop = RegisterEventHandler(
        OnProcessExit(target_action=play, on_exit=[TimerAction(period=SETTLE_S, actions=[EmitEvent(event=Shutdown())])])
    )
    pieces = OpaqueFunction(function=check_pieces)
    return LaunchDescription([*arguments, pieces, evaluator, online, when_active([play]), stop])
