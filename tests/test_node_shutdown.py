"""Every way a node can be ended ends it quietly: rclpy shut down from another thread while the node
spins (as launch does on its way out), and Ctrl-C / SIGTERM at different moments of the online node
and the evaluator processes, each repeated: exit code 0, no traceback.

Needs a sourced ROS 2 workspace with mapdistill_ros built; skipped where rclpy is missing (CI).
"""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("mapdistill_ros.msg")

from mapdistill_ros.nodes.spin import spin_until_shutdown  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = 10


def test_a_shutdown_from_another_thread_ends_the_spin_without_an_error():
    for round_ in range(ROUNDS):
        rclpy.init()
        node = rclpy.create_node(f"spinner_{round_}")
        node.create_timer(0.001, lambda: None)  # keep the executor building wait sets
        errors = []

        def spin(node=node, errors=errors):
            try:
                spin_until_shutdown(node)
            except Exception as error:  # noqa: BLE001 - the test reports any
                errors.append(error)

        thread = threading.Thread(target=spin)
        thread.start()
        time.sleep(0.01 * round_)
        rclpy.shutdown()
        thread.join(timeout=10)
        assert not thread.is_alive() and errors == [], (round_, errors)
        node.destroy_node()


@pytest.mark.parametrize("entry", ["online_map_node", "map_evaluator"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_node_process_ended_at_any_moment_exits_0_without_a_traceback(entry, signum, tmp_path):
    """From while it imports (0.2 s) to spinning (3 s), through the installed entry scripts."""
    args = ["--ros-args", "-p", f"out:={tmp_path}"] if entry == "map_evaluator" else []
    for delay in (0.2, 0.8, 1.5, 3.0):
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / entry), *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        time.sleep(delay)
        process.send_signal(signum)
        out, _ = process.communicate(timeout=30)
        assert process.returncode == 0 and "Traceback" not in out, (entry, signum, delay, out)
