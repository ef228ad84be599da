"""The online map session, what the node (LIVE) and replay (REPLAY) both drive: superseded and stale
sets counted, a dead camera's set released on time, too few cameras named, late messages, time going
back, every set kept in REPLAY mode, and one worker step."""

from __future__ import annotations

import numpy as np
import pytest

from mapdistill_core.data.sample import CAMERA_NAMES
from mapdistill_ros import messages
from mapdistill_ros.bags.typestore import MessageFactory
from mapdistill_ros.online.frame_sync import LATE, STALE, SUPERSEDED, TIME_JUMP, TOO_FEW_CAMERAS
from mapdistill_ros.online.online_pipeline import OnlinePipeline, TransformCache
from mapdistill_ros.online.session import ERROR, LIVE, REPLAY, OnlineMapSession
from mapdistill_ros.online.stage_timer import StageTimer, diagnostic_array

MS = 1_000_000
SLOP_S = 0.1
FACTORY = MessageFactory()


def make_session(predictor, mode=LIVE, min_cameras=4, **options) -> OnlineMapSession:
    pipeline = OnlinePipeline(predictor, FACTORY, StageTimer(), min_cameras=min_cameras)
    return OnlineMapSession(pipeline, CAMERA_NAMES, mode, SLOP_S, queue_size=5, **options)


def image(camera: int, stamp_ns: int):
    """A camera's CompressedImage header (the synchronization reads only the stamp)."""
    return FACTORY.new(
        "sensor_msgs/msg/CompressedImage",
        header=messages.header(FACTORY, stamp_ns, f"{CAMERA_NAMES[camera]}_optical"),
        format="png",
    )


def capture(session, stamp_ns: int, cameras=range(6), received_ns: int | None = None) -> list[str]:
    lines = []
    for camera in cameras:
        stamp = stamp_ns + camera * MS
        lines += session.on_sensor(camera, image(camera, stamp), received_ns or stamp_ns)
    return lines


def test_sets_arriving_faster_than_inference_are_superseded_and_counted(predictor):
    session = make_session(predictor)
    for k in range(4):  # four complete captures at 8 Hz while the worker takes none
        assert capture(session, k * 125 * MS) == []
    newest = session.next_set()
    assert newest.stamp_ns == 3 * 125 * MS and messages.stamp_ns(newest.payloads[0].header.stamp) == 3 * 125 * MS
    assert session.timer.summary()["dropped"] == {SUPERSEDED: 3}
    assert capture(session, 4 * 125 * MS) == [] and session.next_set().stamp_ns == 4 * 125 * MS
    assert session.timer.summary()["dropped"] == {SUPERSEDED: 3}  # a set taken in time is not counted
    status = diagnostic_array(FACTORY, session.timer.summary(), None, 0).status[0]
    assert {kv.key: kv.value for kv in status.values}[f"dropped_{SUPERSEDED}"] == "3"


def test_replay_mode_keeps_every_set_in_order(predictor):
    session = make_session(predictor, REPLAY)
    for k in range(4):
        assert capture(session, k * 125 * MS) == []
    assert [session.next_set().stamp_ns for _ in range(4)] == [k * 125 * MS for k in range(4)]
    assert session.next_set() is None and session.timer.summary()["dropped"] == {}


def test_a_dead_camera_holds_its_set_one_slop_not_until_the_next_capture(predictor):
    session = make_session(predictor)
    start = 1_000 * MS
    capture(session, start, cameras=range(5), received_ns=start)  # CAM_BACK_RIGHT (index 5) is dead
    assert session.expire(start + int(0.5 * SLOP_S * 1e9)) == [] and session.next_set() is None
    assert session.expire(start + int(SLOP_S * 1e9)) == []
    released = session.next_set()
    assert released.stamp_ns == start and [CAMERA_NAMES[i] for i in released.missing] == ["CAM_BACK_RIGHT"]
    assert session.assembler.pending == [] and session.timer.summary()["dropped"] == {}


def test_a_set_with_too_few_cameras_is_dropped_naming_the_cameras(predictor):
    session = make_session(predictor, min_cameras=4)
    capture(session, 0, cameras=(0, 1), received_ns=0)
    (warning,) = session.expire(int(SLOP_S * 1e9))
    assert warning == (
        "dropped a camera set at 0 ns: too_few_cameras (2 of 6 cameras (minimum 4), missing "
        "CAM_FRONT_LEFT, CAM_BACK, CAM_BACK_LEFT, CAM_BACK_RIGHT)"
    )
    summary = session.timer.summary()
    assert summary["dropped"] == {TOO_FEW_CAMERAS: 1}
    assert summary["missing"] == ["CAM_FRONT_LEFT", "CAM_BACK", "CAM_BACK_LEFT", "CAM_BACK_RIGHT"]
    status = diagnostic_array(FACTORY, summary, None, 0).status[0]
    values = {kv.key: kv.value for kv in status.values}
    assert values["missing_cameras"] == "CAM_FRONT_LEFT, CAM_BACK, CAM_BACK_LEFT, CAM_BACK_RIGHT"


def test_a_message_older_than_a_set_given_out_is_late(predictor):
    session = make_session(predictor)
    capture(session, 1_000 * MS)
    (line,) = session.on_sensor(0, image(0, 900 * MS), 1_000 * MS)
    assert line.startswith("dropped a camera set at 900000000 ns: late (CAM_FRONT:")
    assert session.timer.summary()["dropped"] == {LATE: 1}


@pytest.mark.parametrize("mode", [LIVE, REPLAY])
def test_a_set_too_old_when_the_worker_takes_it_is_stale_only_live(predictor, mode):
    session = make_session(predictor, mode, max_frame_age_s=0.5)
    capture(session, 1_000 * MS)
    frame_set = session.next_set()
    result, lines = session.step(frame_set, now_ns=1_600 * MS)
    if mode == LIVE:
        assert result is None and lines == [] and session.timer.summary()["dropped"] == {STALE: 1}
    else:  # offline there is no deadline: the set goes on (and fails here on its empty images)
        assert STALE not in session.timer.summary()["dropped"]


def test_a_set_the_pipeline_rejects_is_counted_and_named(predictor):
    """Images with no bytes: not decodable, so the set is given up and the image named."""
    session = make_session(predictor, REPLAY)
    capture(session, 1_000 * MS)
    result, lines = session.step(session.next_set())
    assert result is None and session.timer.summary()["dropped"] == {ERROR: 1}
    (line,) = lines
    assert line == (
        "skipped the camera set at 1000000000 ns: CompressedImage of 'CAM_FRONT_optical': field 'data' (0 bytes) "
        "is not a decodable png"
    )


def test_a_transform_the_lookup_does_not_have_yet_is_a_line_and_a_masked_camera(predictor):
    asked = []

    def lookup(base_frame, frame):
        asked.append((base_frame, frame))
        raise LookupError(f"{frame} unknown")

    session = make_session(predictor, lookup=lookup)
    capture(session, 1_000 * MS)
    result, lines = session.step(session.next_set(), now_ns=1_000 * MS)
    assert asked == [("base_link", f"{name}_optical") for name in CAMERA_NAMES]
    assert lines[:6] == [f"no transform yet: {name}_optical unknown" for name in CAMERA_NAMES]
    assert result is None and session.timer.summary()["dropped"] == {ERROR: 1}


def test_time_going_back_resets_the_session_counts_it_and_keeps_publishing(predictor):
    """A bag played twice into a running session: the second play's sets reach the worker, one line
    and one TIME_JUMP per jump, the transforms forgotten and on_rewind called each time (the node
    clears its TF buffer); the clock jumping back (rewind) does the same."""
    resets = []
    session = make_session(predictor, time_jump_s=1.0, on_rewind=lambda: resets.append(len(session.transforms)))
    session.on_transform(
        FACTORY.new(
            "geometry_msgs/msg/TransformStamped",
            header=messages.header(FACTORY, 0, "base_link"),
            child_frame_id="CAM_FRONT_optical",
            transform=FACTORY.new(
                "geometry_msgs/msg/Transform", rotation=FACTORY.new("geometry_msgs/msg/Quaternion", w=1.0)
            ),
        )
    )
    assert len(session.transforms) == 1
    taken = []
    for play in range(2):
        for k in range(3):
            lines = capture(session, 10_000 * MS + k * 500 * MS)
            if play == 1 and k == 0:
                (line,) = lines
                assert line.startswith("time went back 1.005 s (a message stamped") and line.endswith("reset")
            else:
                assert lines == []
            taken.append(session.next_set().stamp_ns)
    assert taken == [10_000 * MS + k * 500 * MS for k in range(3)] * 2
    assert session.timer.summary()["events"] == {TIME_JUMP: 1} and resets == [0]
    status = diagnostic_array(FACTORY, session.timer.summary(), None, 0).status[0]
    assert {kv.key: kv.value for kv in status.values}["time_jumps"] == "1"
    assert "time went back 1 time(s): reset" in status.message
    (line,) = session.rewind(30 * 10**9)
    assert line == "time went back 30.000 s (the clock): synchronization and transforms reset"
    assert session.timer.summary()["events"] == {TIME_JUMP: 2} and resets == [0, 0]
    assert capture(session, 10_000 * MS) == [] and session.next_set().stamp_ns == 10_000 * MS


def test_the_drivers_transform_cache_is_the_one_used_even_while_empty(predictor):
    """The node hands over an empty cache for its output frame and conversions: it must be kept."""
    cache = TransformCache("ego", lambda transform: np.eye(4))
    session = make_session(predictor, transforms=cache)
    assert session.transforms is cache and len(cache) == 0
    transform = FACTORY.new(
        "geometry_msgs/msg/TransformStamped",
        header=messages.header(FACTORY, 0, "ego"),
        child_frame_id="CAM_FRONT_optical",
    )
    assert session.on_transform(transform) == [] and cache.get("CAM_FRONT_optical") is not None
