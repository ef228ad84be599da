"""The node's receiving side (CameraFeed): superseded sets counted, a dead camera's set released on
time, too few cameras named, exactly as the node wires it (the node only adds rclpy)."""

from __future__ import annotations

from mapdistill_core.data.sample import CAMERA_NAMES
from mapdistill_ros.bags.typestore import MessageFactory
from mapdistill_ros.online.camera_feed import CameraFeed
from mapdistill_ros.online.frame_sync import SUPERSEDED, TIME_JUMP, TOO_FEW_CAMERAS, FrameAssembler
from mapdistill_ros.online.stage_timer import StageTimer, diagnostic_array

MS = 1_000_000
SLOP_S = 0.1


def make_feed(min_cameras: int = 4) -> CameraFeed:
    return CameraFeed(FrameAssembler(CAMERA_NAMES, SLOP_S, min_cameras, queue_size=5), StageTimer())


def capture(feed: CameraFeed, stamp_ns: int, cameras=range(6), received_ns: int | None = None) -> list[str]:
    warnings = []
    for camera in cameras:
        warnings += feed.add(camera, stamp_ns + camera * MS, f"{camera}@{stamp_ns}", received_ns or stamp_ns)
    return warnings


def test_sets_arriving_faster_than_inference_are_superseded_and_counted():
    feed = make_feed()
    for k in range(4):  # four complete captures at 8 Hz while the worker takes none
        assert capture(feed, k * 125 * MS) == []
    newest = feed.slot.get(timeout=0)
    assert newest.stamp_ns == 3 * 125 * MS and newest.payloads[0] == f"0@{3 * 125 * MS}"
    assert feed.timer.summary()["dropped"] == {SUPERSEDED: 3}
    assert capture(feed, 4 * 125 * MS) == [] and feed.slot.get(timeout=0).stamp_ns == 4 * 125 * MS
    assert feed.timer.summary()["dropped"] == {SUPERSEDED: 3}  # a set taken in time is not counted
    status = diagnostic_array(MessageFactory(), feed.timer.summary(), None, 0).status[0]
    assert {kv.key: kv.value for kv in status.values}[f"dropped_{SUPERSEDED}"] == "3"


def test_a_dead_camera_holds_its_set_one_slop_not_until_the_next_capture():
    feed = make_feed()
    start = 1_000 * MS
    capture(feed, start, cameras=range(5), received_ns=start)  # CAM_BACK_RIGHT (index 5) is dead
    assert feed.expire(start + int(0.5 * SLOP_S * 1e9)) == [] and feed.slot.get(timeout=0) is None
    assert feed.expire(start + int(SLOP_S * 1e9)) == []
    released = feed.slot.get(timeout=0)
    assert released.stamp_ns == start and [CAMERA_NAMES[i] for i in released.missing] == ["CAM_BACK_RIGHT"]
    assert feed.assembler.pending == [] and feed.timer.summary()["dropped"] == {}


def test_a_set_with_too_few_cameras_is_dropped_naming_the_cameras():
    feed = make_feed(min_cameras=4)
    capture(feed, 0, cameras=(0, 1), received_ns=0)
    (warning,) = feed.expire(int(SLOP_S * 1e9))
    assert warning == (
        "dropped a camera set: too_few_cameras (2 of 6 cameras (minimum 4), missing "
        "CAM_FRONT_LEFT, CAM_BACK, CAM_BACK_LEFT, CAM_BACK_RIGHT)"
    )
    summary = feed.timer.summary()
    assert summary["dropped"] == {TOO_FEW_CAMERAS: 1}
    assert summary["missing"] == ["CAM_FRONT_LEFT", "CAM_BACK", "CAM_BACK_LEFT", "CAM_BACK_RIGHT"]
    status = diagnostic_array(MessageFactory(), summary, None, 0).status[0]
    values = {kv.key: kv.value for kv in status.values}
    assert values["missing_cameras"] == "CAM_FRONT_LEFT, CAM_BACK, CAM_BACK_LEFT, CAM_BACK_RIGHT"


def test_the_node_routes_every_message_and_its_timer_through_the_feed():
    """online_map_node.py needs rclpy, so its wiring is checked in its source: images and the timer go
    through CameraFeed, the worker takes from the feed's slot, and nothing bypasses it."""
    import ast
    from pathlib import Path

    source = (Path(__file__).resolve().parents[1] / "mapdistill_ros" / "nodes" / "online_map_node.py").read_text()
    calls = {ast.unparse(n.func) for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call)}
    assert {"self.configured.feed.add", "self.configured.feed.expire", "c.feed.slot.get"} <= calls
    assert "self.create_timer" in calls and "self.expire_sets" in source
    assert not any(c.endswith((".put", "assembler.add")) or c == "LatestSlot" for c in calls)


def test_time_going_back_resets_the_feed_counts_it_and_keeps_publishing():
    """A bag played twice into a running feed: the second play's sets reach the worker, one warning
    line and one TIME_JUMP per jump, on_rewind called each time (the node clears its transforms);
    the clock jumping back (rewind) does the same."""
    resets = []
    feed = CameraFeed(
        FrameAssembler(CAMERA_NAMES, SLOP_S, 4, queue_size=5, rewind_s=1.0), StageTimer(), lambda: resets.append(1)
    )
    taken = []
    for play in range(2):
        for k in range(3):
            warnings = capture(feed, 10_000 * MS + k * 500 * MS)
            if play == 1 and k == 0:
                (line,) = warnings
                assert line.startswith("time went back 1.005 s (a message stamped") and line.endswith("reset")
            else:
                assert warnings == []
            taken.append(feed.slot.get(timeout=0).stamp_ns)
    assert taken == [10_000 * MS + k * 500 * MS for k in range(3)] * 2
    assert feed.timer.summary()["events"] == {TIME_JUMP: 1} and resets == [1]
    status = diagnostic_array(MessageFactory(), feed.timer.summary(), None, 0).status[0]
    assert {kv.key: kv.value for kv in status.values}["time_jumps"] == "1"
    assert "time went back 1 time(s): reset" in status.message
    (line,) = feed.rewind(30 * 10**9)
    assert line == "time went back 30.000 s (the clock): synchronization and transforms reset"
    assert feed.timer.summary()["events"] == {TIME_JUMP: 2} and resets == [1, 1]
    assert capture(feed, 10_000 * MS) == [] and feed.slot.get(timeout=0).stamp_ns == 10_000 * MS
