"""The online node's synchronization policy: FrameAssembler, LatestSlot and the frame age check."""

import re
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapdistill_core.data.sample import CAMERA_NAMES
from mapdistill_ros.online.frame_sync import (
    LATE,
    MISSING_REQUIRED,
    TOO_FEW_CAMERAS,
    Dropped,
    EverySlot,
    FrameAssembler,
    FrameSet,
    LatestSlot,
    Rewound,
    is_stale,
)

MS = 1_000_000


def assembler(**kwargs) -> FrameAssembler:
    return FrameAssembler(**{"camera_names": CAMERA_NAMES, "slop_s": 0.01, "min_cameras": 4, "queue_size": 3, **kwargs})


def feed(sync: FrameAssembler, messages) -> list:
    out = []
    for camera, stamp in messages:
        out += sync.add(camera, stamp, f"{camera}@{stamp}")
    return out


def test_a_set_is_ready_when_every_camera_arrived_within_slop():
    sync = assembler()
    out = feed(sync, [(c, 1000 * MS + c * MS) for c in (3, 0, 5, 1, 2)])
    assert out == [] and len(sync.pending) == 1
    (ready,) = sync.add(4, 1004 * MS, "image 4")
    assert isinstance(ready, FrameSet) and ready.missing == []
    assert ready.stamp_ns == 1000 * MS and ready.latest_ns == 1005 * MS
    assert ready.payloads == [
        f"0@{1000 * MS}",
        f"1@{1001 * MS}",
        f"2@{1002 * MS}",
        f"3@{1003 * MS}",
        "image 4",
        f"5@{1005 * MS}",
    ]
    assert sync.pending == []


def test_a_required_sensor_completes_a_set_and_a_set_without_it_is_dropped_naming_it():
    sync = assembler(required=("LIDAR_TOP",))
    lidar = len(CAMERA_NAMES)
    assert feed(sync, [(c, 1000 * MS) for c in range(6)]) == []  # six cameras: still waiting for the LiDAR
    (ready,) = sync.add(lidar, 1001 * MS, "scan")
    assert isinstance(ready, FrameSet) and ready.payloads[lidar] == "scan" and ready.missing == []
    feed(sync, [(c, 2000 * MS) for c in range(6)])
    (dropped,) = sync.flush()
    assert dropped == Dropped(2000 * MS, MISSING_REQUIRED, "no LIDAR_TOP message", ("LIDAR_TOP",))
    feed(sync, [(lidar, 3000 * MS), (0, 3000 * MS)])  # a LiDAR does not stand in for cameras
    (dropped,) = sync.flush()
    assert dropped.reason == TOO_FEW_CAMERAS and dropped.detail.startswith("1 of 6 cameras (minimum 4)")
    with pytest.raises(ValueError, match="sensor index 7 is not one of 0..6"):
        sync.add(7, 4000 * MS, "?")


def test_stamps_further_apart_than_slop_do_not_share_a_set():
    sync = assembler(min_cameras=1)
    out = feed(sync, [(0, 0), (1, 11 * MS)])
    (first,) = out  # camera 1 began a newer capture: camera 0's set goes out alone
    assert first.stamps == [0, None, None, None, None, None]
    assert [s.stamps[1] for s in sync.pending] == [11 * MS]


def test_camera_dropout_gives_the_set_out_naming_the_missing_cameras():
    sync = assembler()
    assert feed(sync, [(c, 100 * MS) for c in (0, 1, 2, 4, 5)]) == []
    (ready,) = sync.add(0, 200 * MS, "next capture")
    assert isinstance(ready, FrameSet) and ready.missing == [3] and ready.present == 5
    assert ready.payloads[3] is None


def test_a_set_below_min_cameras_is_dropped_with_the_reason():
    sync = assembler(min_cameras=4)
    feed(sync, [(0, 100 * MS), (1, 100 * MS), (2, 101 * MS)])
    (dropped,) = sync.add(0, 200 * MS, None)
    missing = ("CAM_BACK", "CAM_BACK_LEFT", "CAM_BACK_RIGHT")
    assert dropped == Dropped(
        100 * MS, TOO_FEW_CAMERAS, f"3 of 6 cameras (minimum 4), missing {', '.join(missing)}", missing
    )


def test_a_complete_newer_set_gives_out_the_older_incomplete_ones():
    sync = assembler(slop_s=0.05)
    feed(sync, [(c, 100 * MS) for c in range(4)] + [(0, 120 * MS)])  # within slop: both pending
    assert len(sync.pending) == 2
    out = feed(sync, [(c, 121 * MS) for c in range(1, 6)])
    assert [(type(o), o.stamp_ns) for o in out] == [(FrameSet, 100 * MS), (FrameSet, 120 * MS)]
    assert out[0].missing == [4, 5] and out[1].missing == []


def test_messages_for_a_capture_already_given_out_are_late():
    sync = assembler()
    feed(sync, [(c, 100 * MS) for c in (0, 1, 2, 4, 5)])
    sync.add(0, 200 * MS, None)
    (late,) = sync.add(3, 100 * MS, None)
    assert late.reason == LATE and late.stamp_ns == 100 * MS


def test_the_watermark_is_the_newest_stamp_given_out_so_no_capture_goes_out_twice():
    sync = assembler(slop_s=0.01, min_cameras=1)
    (complete,) = feed(sync, [(c, 100 * MS + c * MS) for c in range(6)])  # stamps 100..105 ms
    assert complete.latest_ns == 105 * MS and sync.watermark_ns == 105 * MS
    (late,) = sync.add(2, 103 * MS, "a repeat from inside the capture given out")
    assert late.reason == LATE and sync.pending == []
    assert sync.add(2, 106 * MS, "next") == [] and len(sync.pending) == 1


def test_sets_go_out_oldest_first():
    sync = assembler(slop_s=0.005, min_cameras=1, queue_size=5)
    out = feed(sync, [(0, 110 * MS), (1, 100 * MS), (2, 120 * MS), (3, 200 * MS)]) + sync.flush()
    assert [o.stamp_ns for o in out] == [100 * MS, 110 * MS, 120 * MS, 200 * MS]


def test_pending_sets_are_bounded_by_queue_size():
    sync = assembler(slop_s=1.0, queue_size=3, min_cameras=1)
    out = feed(sync, [(0, i * MS) for i in range(10)])  # one camera faster than the slop: a set each
    assert len(sync.pending) == 3
    assert [o.stamp_ns for o in out] == [i * MS for i in range(7)]


@pytest.mark.parametrize(
    "kwargs, named",
    [
        (dict(min_cameras=0), "min_cameras=0,"),
        (dict(min_cameras=7), "min_cameras=7,"),
        (dict(queue_size=0), "queue_size=0,"),
        (dict(slop_s=-1.0), "slop_s=-1.0"),
    ],
)
def test_bad_settings_name_the_value_at_fault(kwargs, named):
    with pytest.raises(ValueError, match=re.escape(named)):
        assembler(**kwargs)


def test_unknown_camera_index():
    with pytest.raises(ValueError, match="sensor index 6"):
        assembler().add(6, 0, None)


@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 400)), max_size=60),
    st.integers(0, 30),
    st.integers(1, 6),
    st.integers(1, 4),
)
@settings(max_examples=150, deadline=None)
def test_every_message_is_accounted_for_once_and_sets_respect_the_policy(stream, slop_ms, min_cameras, queue_size):
    sync = assembler(slop_s=slop_ms / 1000, min_cameras=min_cameras, queue_size=queue_size)
    sent = [(c, t * MS, i) for i, (c, t) in enumerate(stream)]
    seen, dropped_sets, late = [], 0, 0
    for camera, stamp, i in sent:
        for out in sync.add(camera, stamp, i):
            if isinstance(out, FrameSet):
                assert out.present >= min_cameras
                assert out.latest_ns - out.stamp_ns <= slop_ms * MS
                assert all((p is None) == (s is None) for p, s in zip(out.payloads, out.stamps, strict=True))
                seen += [p for p in out.payloads if p is not None]
            elif out.reason == LATE:
                late += 1
            else:
                dropped_sets += 1
        assert len(sync.pending) <= queue_size
    pending = [p for s in sync.pending for p in s.payloads if p is not None]
    assert len(set(seen)) == len(seen)
    in_dropped_sets = len(sent) - len(seen) - len(pending) - late
    assert dropped_sets <= in_dropped_sets <= dropped_sets * (min_cameras - 1)


def test_frame_age():
    assert not is_stale(1_000 * MS, 1_400 * MS, 0.5)
    assert is_stale(1_000 * MS, 1_501 * MS, 0.5)
    assert not is_stale(1_000 * MS, 900 * MS, 0.5)  # stamped ahead of this clock: not old


def test_latest_slot_replaces_a_waiting_item_and_counts_the_drop():
    slot = LatestSlot()
    assert slot.put("a") is False
    assert slot.put("b") is True  # "a" was never taken: superseded
    assert slot.dropped == 1
    assert slot.get(timeout=0) == "b"
    assert slot.get(timeout=0.01) is None
    assert slot.put("c") is False and slot.dropped == 1


def test_latest_slot_wakes_a_waiting_consumer():
    slot, got = LatestSlot(), []
    consumer = threading.Thread(target=lambda: got.append(slot.get(timeout=60)))
    consumer.start()
    slot.put("frame")
    consumer.join(timeout=20)  # woken by put, not by its 60 s timeout
    assert got == ["frame"] and not consumer.is_alive()


def test_every_slot_hands_over_every_item_in_order_and_wakes_a_waiting_consumer():
    slot, got = EverySlot(), []
    assert [slot.put(item) for item in ("a", "b", "c")] == [False, False, False]  # nothing replaced
    assert [slot.get(timeout=0) for _ in range(3)] == ["a", "b", "c"] and slot.get(timeout=0.01) is None
    consumer = threading.Thread(target=lambda: got.append(slot.get(timeout=60)))
    consumer.start()
    slot.put("frame")
    consumer.join(timeout=20)  # woken by put, not by its 60 s timeout
    assert got == ["frame"] and not consumer.is_alive()


def complete(sync: FrameAssembler, stamp: int) -> list:
    return feed(sync, [(camera, stamp + camera * MS // 10) for camera in range(6)])


def test_stamps_that_go_back_beyond_rewind_start_over_and_every_loop_gives_its_sets_out():
    """A bag of three captures 1 s apart played three times: each loop's sets go out; each jump back
    (to 2 s before the newest set given out) is one Rewound; what was pending at the jump (an
    incomplete capture) is given out, not lost."""
    sync = assembler(rewind_s=1.0)
    out = []
    for _ in range(3):
        for k in range(3):
            out += complete(sync, 1_000 * MS * k + 50_000 * MS)
        out += feed(sync, [(0, 4_000 * MS + 50_000 * MS)])  # an incomplete capture at the loop's end
    sets = [o for o in out if isinstance(o, FrameSet)]
    rewinds = [o for o in out if isinstance(o, Rewound)]
    dropped = [o for o in out if isinstance(o, Dropped)]
    assert [s.stamp_ns - 50_000 * MS for s in sets] == [0, 1_000 * MS, 2_000 * MS] * 3
    assert [(r.stamp_ns, r.back_ns) for r in rewinds] == [(50_000 * MS, 2_000 * MS + 5 * MS // 10)] * 2
    assert [d.reason for d in dropped] == [TOO_FEW_CAMERAS] * 2  # the loops' incomplete captures, at the jumps
    assert [type(o).__name__ for o in out[out.index(dropped[0]) : out.index(dropped[0]) + 2]] == ["Dropped", "Rewound"]


def test_small_reorderings_stay_late_with_rewind_and_every_step_back_is_late_without_it():
    sync = assembler(rewind_s=1.0)
    complete(sync, 5_000 * MS)
    late = feed(sync, [(2, 5_000 * MS - 900 * MS)])  # 0.9 s back: within rewind_s, a late message
    assert [o.reason for o in late] == [LATE] and sync.watermark_ns is not None
    (jump, *_) = feed(sync, [(2, 5_000 * MS - 1_100 * MS)])  # 1.1 s back: time went back
    assert isinstance(jump, Rewound) and jump.back_ns == 1_100 * MS + 5 * MS // 10
    never = assembler()
    complete(never, 5_000 * MS)
    assert [o.reason for o in feed(never, [(2, 1 * MS)])] == [LATE]


def test_reset_gives_out_what_is_pending_and_forgets_the_stamps():
    sync = assembler()
    complete(sync, 1_000 * MS)
    feed(sync, [(0, 2_000 * MS), (1, 2_000 * MS)])
    (given,) = sync.reset()
    assert isinstance(given, Dropped) and given.reason == TOO_FEW_CAMERAS
    assert sync.pending == [] and sync.watermark_ns is None
    assert isinstance(complete(sync, 10 * MS)[-1], FrameSet)
