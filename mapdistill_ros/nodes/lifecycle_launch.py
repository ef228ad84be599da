"""Launch actions that drive the online map node's lifecycle (needs launch_ros; used by the launch
files and the launch test).

``autostart(node)``: configure the node once it is up, activate it once configured; a configure
that fails (bad weights, bad parameters: the node logs why in one line) stops the launch with an
error instead of leaving an idle node behind. It drives the start-up only: its handlers fire once,
so a later `ros2 lifecycle set` cleanup / configure / activate is the user's alone.
``when_active(entities)``: start ``entities`` (a bag player) the first time a lifecycle node of the
launch is active, so that nothing is played to a node still loading its model.
"""

from __future__ import annotations

from launch.actions import EmitEvent, OpaqueFunction, RegisterEventHandler, UnregisterEventHandler
from launch.events import matches_action
from launch_ros.actions import LifecycleNode
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition


def _change(node: LifecycleNode, transition: int) -> EmitEvent:
    return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node), transition_id=transition))


def _configure_failed(context, node_name: str):
    raise RuntimeError(f"{node_name}: configure failed (the node logs why); the launch stops")


def autostart(node: LifecycleNode, node_name: str) -> list:
    """The actions that take ``node`` (named ``node_name`` in messages) to active, once."""
    failed = RegisterEventHandler(
        OnStateTransition(
            target_lifecycle_node=node,
            start_state="configuring",
            goal_state="unconfigured",
            entities=[OpaqueFunction(function=_configure_failed, args=[node_name])],
            handle_once=True,
        )
    )
    configured = RegisterEventHandler(
        OnStateTransition(
            target_lifecycle_node=node,
            start_state="configuring",
            goal_state="inactive",
            entities=[UnregisterEventHandler(failed.event_handler), _change(node, Transition.TRANSITION_ACTIVATE)],
            handle_once=True,
        )
    )
    return [configured, failed, _change(node, Transition.TRANSITION_CONFIGURE)]


def when_active(entities: list) -> RegisterEventHandler:
    """Start ``entities`` the first time a lifecycle node of this launch has become active."""
    return RegisterEventHandler(
        OnStateTransition(start_state="activating", goal_state="active", entities=entities, handle_once=True)
    )
