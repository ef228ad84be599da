"""How both nodes spin until the end: the one place that knows every way rclpy reports a shutdown."""

from __future__ import annotations

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.impl.implementation_singleton import rclpy_implementation


def spin_until_shutdown(node) -> None:
    """``rclpy.spin(node)`` until Ctrl-C or shutdown, however the shutdown reaches the spin: an
    interrupt, rclpy's ExternalShutdownException, or the context invalidated while the executor
    builds its wait set (a launch shutting down: RCLError "the given context is not valid"). Any
    other error, while the context is still valid, is raised."""
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except rclpy_implementation.RCLError:
        if rclpy.ok():
            raise
