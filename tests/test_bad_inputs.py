"""Bad input of every kind: a clear error naming the input and field, or, in replay, a logged and
counted skip while the good frames around it are still predicted. Nothing is unpickled, nothing hangs."""

from __future__ import annotations

import dataclasses
import json
import logging
import pickle
import shutil
import sqlite3
import struct
import tempfile
import zlib
from contextlib import closing
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from safetensors.torch import save_file

from mapdistill_core.checkpoint import load_model, read_extra, read_safetensors
from mapdistill_core.config import config_to_dict, load_config
from mapdistill_core.data.sample import CAMERA_NAMES
from mapdistill_core.errors import BagError, CheckpointError, ConfigError, MapFileError
from mapdistill_core.inference import MapPredictor
from mapdistill_core.map_elements import MapElement
from mapdistill_core.metrics import load_ground_truth, load_predictions
from mapdistill_core.training.config import ExperimentConfig
from mapdistill_ros import messages, topics
from mapdistill_ros.bags.bag_writer import LATCHED, MapBagWriter
from mapdistill_ros.bags.replay import BagReplay, replay_bag
from mapdistill_ros.bags.synthetic2bag import encode_image, sample_frame
from mapdistill_ros.bags.typestore import MessageFactory
from mapdistill_ros.nodes.node_params import NODE_NAME, validate_parameters
from mapdistill_ros.online.image_decoding import decode, intrinsics
from mapdistill_ros.online.session import BAD_MESSAGE
from tests.model_fixtures import STUDENT, samples

F = MessageFactory()
ROOT = Path(__file__).resolve().parent.parent
FAST = settings(max_examples=25, deadline=None)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
"""Any JSON / YAML value."""


def paths(doc, prefix: tuple = ()):
    """The key path (a key or index per level) of every item of a nested dict / list document."""
    yield prefix
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        yield from paths(value, (*prefix, key))


def replaced(doc, path: tuple, value):
    """``doc`` with the item at ``path`` set to ``value`` (a new key when the last one is new)."""
    if not path:
        return value
    copy = list(doc) if isinstance(doc, list) else dict(doc)
    copy[path[0]] = replaced(doc[path[0]], path[1:], value) if len(path) > 1 else value
    return copy


@st.composite
def mutations(draw, doc):
    """(path, value): one item of ``doc`` replaced by any value, or a new key added to one of its mappings."""
    path = draw(st.sampled_from(list(paths(doc))))
    item = doc
    for key in path:
        item = item[key]
    if isinstance(item, dict) and draw(st.booleans()):
        path = (*path, draw(st.text(min_size=1, max_size=8)))
    return path, draw(VALUES)


# Images and CameraInfo ------------------------------------------------------------------------

RGB = np.random.default_rng(0).integers(0, 256, (24, 40, 3), dtype=np.uint8)
ENCODED = {kind: encode_image(RGB, kind) for kind in ("jpeg", "png")}


def compressed(data: bytes, image_format: str):
    return messages.compressed_image(F, data, image_format, 1, "CAM_FRONT")


@given(st.sampled_from(["jpeg", "png"]), st.floats(0.0, 1.0, exclude_max=True))
@FAST
def test_truncated_jpeg_or_png_is_a_value_error_naming_the_camera_and_field(kind, fraction):
    data = ENCODED[kind]
    with pytest.raises(ValueError, match=f"CompressedImage of 'CAM_FRONT': field 'data' .* not a decodable {kind}"):
        decode(compressed(data[: int(fraction * len(data))], kind))


@given(
    st.sampled_from(["jpeg", "png"]),
    st.lists(st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8),
)
@settings(max_examples=60, deadline=None)
def test_corrupt_jpeg_or_png_decodes_or_is_a_value_error(kind, flips):
    """Real headers with damaged bytes reach the JPEG / PNG decoders (random bytes do not)."""
    data = bytearray(ENCODED[kind])
    for fraction, value in flips:
        data[int(fraction * len(data))] = value
    try:
        out = decode(compressed(bytes(data), kind))
    except ValueError as error:
        assert "CAM_FRONT" in str(error) and "'data'" in str(error)
    else:
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_a_header_claiming_more_pixels_than_opencv_allows_is_a_value_error():
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
    with pytest.raises(ValueError, match=r"CAM_FRONT': field 'data' \(\d+ bytes\) is not a decodable png \(.*pixels"):
        decode(compressed(data + png_chunk(b"IEND", b""), "png"))


@pytest.mark.parametrize(("data", "image_format"), [(ENCODED["png"], "jpeg"), (ENCODED["jpeg"], "png")])
def test_data_of_another_compression_than_the_format_names_is_refused(data, image_format):
    with pytest.raises(ValueError, match=f"CAM_FRONT': field 'data' .* not a decodable {image_format}"):
        decode(compressed(data, image_format))


def test_other_image_formats_never_reach_a_decoder():
    bmp = cv2.imencode(".bmp", RGB)[1].tobytes()
    pgm = b"P5\n30000 30000\n255\n"  # a header claiming 900 million pixels, within OpenCV's limit
    for data in (bmp, pgm):
        with pytest.raises(ValueError, match="field 'data'"):
            decode(compressed(data, "jpeg"))


@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=9, max_size=9),
    st.integers(-2, 4000),
    st.integers(-2, 4000),
)
@settings(max_examples=80, deadline=None)
def test_any_camera_info_gives_a_usable_k_or_names_the_camera_and_field(k, width, height):
    info = messages.camera_info(F, np.eye(3), max(width, 0), max(height, 0), 1, "CAM_BACK")
    info.k = np.array(k, dtype=np.float64)
    try:
        out = intrinsics(info)
    except ValueError as error:
        assert "CameraInfo of 'CAM_BACK'" in str(error)
        assert any(f"'{field}'" in str(error) for field in ("k", "width", "height")), str(error)
    else:
        assert np.isfinite(out).all() and out[0, 0] > 0 and out[1, 1] > 0 and np.linalg.cond(out) <= 1e12


# Replay: bad frames are skipped, counted and logged ---------------------------------------------

DRIVE = 4


@pytest.fixture(scope="module")
def drive():
    return samples(DRIVE)


@pytest.fixture(scope="module")
def direct(predictor, drive):
    """Stamp -> what the predictor gives on each sample itself."""
    return {s.timestamp_ns: predictor.predict(s, 0.0)[0] for s in drive}


def rig(sample) -> dict[str, np.ndarray]:
    return dict(zip(CAMERA_NAMES, sample.cam_to_ego, strict=True))


def write_drive(path: Path, drive, edit=None, static=True, storage="mcap") -> Path:
    """A bag of ``drive`` with PNG images: /tf_static with the rig (unless ``static`` is False), then
    per sample its frame, first passed through ``edit(index, frame, writer) -> frame`` when given."""
    with MapBagWriter(path, storage) as writer:
        if static:
            writer.write_static(drive[0].timestamp_ns, rig(drive[0]))
        for i, sample in enumerate(drive):
            frame = sample_frame(sample, "png")
            writer.write_frame(edit(i, frame, writer) if edit else frame)
    return path


def with_camera(frame, name: str, **changes):
    """``frame`` with the CameraFrame of camera ``name`` changed."""
    cameras = [dataclasses.replace(c, **changes) if c.name == name else c for c in frame.cameras]
    return dataclasses.replace(frame, cameras=cameras)


def replay(predictor, bag: Path, **kwargs):
    return BagReplay(predictor, score_threshold=0.0, **kwargs).run(bag)


def assert_predicted(result, direct, stamps):
    """Exactly ``stamps`` were predicted, each as the predictor does on the sample itself."""
    assert sorted(result.predictions) == sorted(stamps)
    for stamp in stamps:
        got, want = result.predictions[stamp], direct[stamp]
        assert [e.class_id for e in got] == [e.class_id for e in want]
        np.testing.assert_allclose(np.stack([e.points for e in got]), np.stack([e.points for e in want]), atol=1e-3)


def test_bad_frames_are_logged_counted_and_skipped_while_the_rest_is_predicted(
    predictor, drive, direct, tmp_path, caplog
):
    stamps = [s.timestamp_ns for s in drive]

    def edit(i, frame, writer):
        if i == 1:
            return with_camera(frame, "CAM_FRONT", data=b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
        if i == 2:
            return with_camera(frame, "CAM_FRONT_LEFT", intrinsics=np.full((3, 3), np.nan))
        if i == 3:  # an undeserializable CameraInfo between two captures
            info = topics.camera_info_topic("CAM_BACK")
            writer.writer.write(writer.connections[info], stamps[2] + 1_000, b"\x00\x01\x00\x00" + b"\xff" * 8)
        return frame

    with caplog.at_level(logging.WARNING, "mapdistill.replay"):
        result = replay(predictor, write_drive(tmp_path / "bag", drive, edit))
    assert_predicted(result, direct, [stamps[0], stamps[3]])
    assert result.timing["dropped"] == {"error": 2, BAD_MESSAGE: 1}
    assert result.timing["frames"] == 2
    lines = caplog.text.splitlines()
    assert any(str(stamps[1]) in s and "CAM_FRONT'" in s and "'data'" in s for s in lines), caplog.text
    assert any(str(stamps[2]) in s and "CAM_FRONT_LEFT'" in s and "'k'" in s for s in lines), caplog.text
    assert any(str(stamps[2] + 1_000) in s and "/CAM_BACK/camera_info" in s for s in lines), caplog.text


def test_a_camera_changing_resolution_mid_stream(predictor, drive, direct, tmp_path, caplog):
    """Frame 1: CAM_FRONT at twice the size with a matching CameraInfo (K scaled per frame);
    frame 2: twice the size but the old CameraInfo (skipped); frame 3: back to the first size."""
    stamps = [s.timestamp_ns for s in drive]
    height, width = drive[0].images.shape[1:3]

    def edit(i, frame, writer):
        if i not in (1, 2):
            return frame
        big = np.repeat(np.repeat(drive[i].images[0], 2, axis=0), 2, axis=1)
        k = np.diag([2.0, 2.0, 1.0]) @ drive[i].intrinsics[0] if i == 1 else drive[i].intrinsics[0]
        size = (2 * width, 2 * height) if i == 1 else (width, height)
        return with_camera(
            frame, "CAM_FRONT", data=encode_image(big, "png"), intrinsics=k, width=size[0], height=size[1]
        )

    with caplog.at_level(logging.WARNING, "mapdistill.replay"):
        result = replay(predictor, write_drive(tmp_path / "bag", drive, edit))
    assert_predicted(result, direct, [stamps[0], stamps[1], stamps[3]])
    assert result.timing["dropped"] == {"error": 1}
    message = f"image of 'CAM_FRONT' is {2 * width} x {2 * height}, its CameraInfo says {width} x {height}"
    assert any(str(stamps[2]) in s and message in s for s in caplog.text.splitlines()), caplog.text


def test_tf_jumping_back_in_time_and_a_late_tf_static_leave_the_rig_alone(predictor, drive, direct, tmp_path):
    """/tf (map -> base_link) is not read: predictions are in base_link. The rig is the first
    /tf_static transform per camera; a later one, stamped earlier and with another rig, changes nothing."""

    def edit(i, frame, writer):
        stamp = drive[i].timestamp_ns
        pose = messages.transform(F, drive[i].ego_to_world, topics.MAP_FRAME, topics.BASE_FRAME, stamp - i * 10**10)
        writer.write(topics.TF, stamp, messages.tf_message(F, [pose]))
        if i == 2:
            old = drive[0].timestamp_ns - 10**9
            wrong = [messages.transform(F, np.eye(4), topics.BASE_FRAME, name, old) for name in CAMERA_NAMES]
            writer.write(topics.TF_STATIC, stamp, messages.tf_message(F, wrong), LATCHED)
        return dataclasses.replace(frame, poses=[])

    result = replay(predictor, write_drive(tmp_path / "bag", drive, edit))
    assert_predicted(result, direct, list(direct))
    assert result.timing["dropped"] == {}


def test_without_tf_static_every_set_is_skipped_naming_the_transform(predictor, drive, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, "mapdistill.replay"):
        result = replay(predictor, write_drive(tmp_path / "bag", drive[:2], static=False))
    assert result.predictions == {} and result.timing["dropped"] == {"error": 2}
    assert caplog.text.count("0 usable cameras") == 2 and "no transform base_link -> CAM_FRONT" in caplog.text


def test_a_non_finite_rig_transform_is_skipped_and_its_camera_masked(predictor, drive, tmp_path, caplog):
    def edit(i, frame, writer):
        if i == 0:
            broken = rig(drive[0])
            broken["CAM_BACK"] = np.array(broken["CAM_BACK"], dtype=np.float64)
            broken["CAM_BACK"][0, 3] = np.nan
            writer.write_static(drive[0].timestamp_ns, broken)
        return frame

    with caplog.at_level(logging.WARNING, "mapdistill.replay"):
        result = replay(predictor, write_drive(tmp_path / "bag", drive[:2], edit, static=False))
    assert len(result.predictions) == 2
    assert result.timing["dropped"] == {BAD_MESSAGE: 1} and result.timing["missing"] == ["CAM_BACK"]
    assert "/tf_static" in caplog.text and "base_link -> CAM_BACK is not finite" in caplog.text


def test_ground_truth_the_metric_cannot_score_is_skipped(predictor, drive, tmp_path, caplog):
    def edit(i, frame, writer):
        if i == 1:
            return dataclasses.replace(frame, ground_truth=[MapElement(0, np.zeros((1, 2)))])
        return frame

    with caplog.at_level(logging.WARNING, "mapdistill.replay"):
        result = replay(predictor, write_drive(tmp_path / "bag", drive[:2], edit))
    assert list(result.ground_truth) == [drive[0].timestamp_ns] and len(result.predictions) == 2
    assert result.metrics["ground_truth"] == 1
    assert result.timing["dropped"] == {BAD_MESSAGE: 1}
    assert "/map_gt/elements" in caplog.text and "'elements[0].points' has 1 points" in caplog.text


# Bags ------------------------------------------------------------------------------------------


def test_a_missing_bag_or_a_file_that_is_no_bag_is_a_bag_error(predictor, tmp_path):
    (tmp_path / "notes.txt").write_text("not a bag")
    for path in (tmp_path / "missing", tmp_path / "notes.txt"):
        with pytest.raises(BagError, match=f"{path}: not a readable rosbag2"):
            replay(predictor, path)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_an_empty_bag_is_a_clear_error(predictor, tmp_path, storage):
    with MapBagWriter(tmp_path / "empty", storage):
        pass
    with pytest.raises(BagError, match="empty: no camera image topic .* the bag has: no topics"):
        replay(predictor, tmp_path / "empty")


def test_camera_topics_without_messages_replay_to_nothing(predictor, tmp_path):
    writer = Writer(tmp_path / "silent", version=8, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    for name in CAMERA_NAMES:
        writer.add_connection(topics.image_topic(name), "sensor_msgs/msg/CompressedImage", typestore=F.typestore)
    writer.close()
    result = replay(predictor, tmp_path / "silent")
    assert result.predictions == {} and result.timing["frames"] == 0 and result.timing["dropped"] == {}


def test_an_unknown_message_type_on_another_topic_is_ignored(predictor, drive, direct, tmp_path):
    store = get_typestore(Stores.ROS2_HUMBLE)
    store.register(get_types_from_msg("int32 level\nstring note", "vendor_msgs/msg/Status"))
    status = store.types["vendor_msgs/msg/Status"]

    def edit(i, frame, writer):
        if i == 0:
            writer.connections["/vendor/status"] = writer.writer.add_connection(
                "/vendor/status", "vendor_msgs/msg/Status", typestore=store
            )
        data = store.serialize_cdr(status(level=i, note="ok"), "vendor_msgs/msg/Status")
        writer.writer.write(writer.connections["/vendor/status"], drive[i].timestamp_ns, data)
        return frame

    result = replay(predictor, write_drive(tmp_path / "bag", drive, edit))
    assert_predicted(result, direct, list(direct))
    assert result.timing["dropped"] == {}


def test_a_type_whose_definition_the_bag_lacks_is_a_bag_error_naming_it(predictor, tmp_path):
    """rosbags reads every definition of a bag when opening it, including those of topics the replay ignores."""
    writer = Writer(tmp_path / "bag", version=8, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    writer.add_connection(
        "/vendor/status", "vendor_msgs/msg/Status", msgdef="vendor_msgs/Missing part", rihs01="RIHS01_" + "0" * 64
    )
    writer.close()
    with pytest.raises(BagError, match="bag: not a readable rosbag2 .*vendor_msgs/msg/Missing"):
        replay(predictor, tmp_path / "bag")


@pytest.mark.parametrize(
    ("topic", "message"),
    [
        (topics.image_topic("CAM_FRONT"), F.new("sensor_msgs/msg/Image")),
        (topics.image_topic("CAM_BACK", compressed=False), F.new("sensor_msgs/msg/CompressedImage")),
        (topics.camera_info_topic("CAM_FRONT"), F.new("std_msgs/msg/String", data="K")),
        (topics.TF_STATIC, F.new("geometry_msgs/msg/TransformStamped")),
        (topics.GT_ELEMENTS, F.new("visualization_msgs/msg/MarkerArray")),
    ],
)
def test_a_topic_of_the_wrong_type_is_a_bag_error_naming_topic_and_types(drive, tmp_path, topic, message):
    def edit(i, frame, writer):
        if i == 0:
            writer.write(topic, drive[0].timestamp_ns - 1, message)
        return frame

    bag = write_drive(tmp_path / "bag", drive[:1], edit, static=topic != topics.TF_STATIC)
    with pytest.raises(BagError, match=f"bag: topic {topic} carries {message.__msgtype__}, expected .*msg/"):
        replay_bag(bag, tmp_path / "never_loaded.safetensors", tmp_path / "out", device="cpu")
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module", params=["mcap", "sqlite3"])
def small_bag(request, tmp_path_factory, drive):
    """A two-sample bag and the name of its storage file."""
    path = write_drive(tmp_path_factory.mktemp(request.param) / "bag", drive[:2], storage=request.param)
    (data,) = [p for p in path.iterdir() if p.name != "metadata.yaml"]
    return path, data.name


def damaged_copy(bag: tuple[Path, str], folder: Path, change) -> Path:
    """A copy of ``bag`` whose storage file is ``change(bytes)``."""
    path, name = bag
    copy = folder / "bag"
    copy.mkdir()
    shutil.copy(path / "metadata.yaml", copy / "metadata.yaml")
    (copy / name).write_bytes(change((path / name).read_bytes()))
    return copy


def replay_or_bag_error(predictor, bag: Path) -> None:
    """Replay a damaged bag: it completes (what survived is predicted or counted) or raises a BagError naming it."""
    try:
        result = replay(predictor, bag)
    except BagError as error:
        assert str(error).startswith(f"{bag}: "), str(error)
    else:
        assert result.timing["frames"] == len(result.predictions) <= 2


@given(st.floats(0.0, 1.0, exclude_max=True))
@settings(max_examples=20, deadline=None)
def test_a_truncated_bag_replays_what_it_holds_or_is_a_bag_error(predictor, small_bag, fraction):
    with tempfile.TemporaryDirectory() as folder:
        replay_or_bag_error(predictor, damaged_copy(small_bag, Path(folder), lambda b: b[: int(fraction * len(b))]))


@given(st.lists(st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=4))
@settings(max_examples=20, deadline=None)
def test_a_corrupt_bag_replays_what_it_can_or_is_a_bag_error(predictor, small_bag, flips):
    def change(data: bytes) -> bytes:
        data = bytearray(data)
        for fraction, value in flips:
            data[int(fraction * len(data))] = value
        return bytes(data)

    with tempfile.TemporaryDirectory() as folder:
        replay_or_bag_error(predictor, damaged_copy(small_bag, Path(folder), change))


def test_a_sqlite3_bag_damaged_inside_a_message_is_a_bag_error_naming_where(predictor, drive, tmp_path):
    """A zeroed page inside an image's blob: the database opens, and reading stops at that message."""
    path = write_drive(tmp_path / "full", drive[:2], storage="sqlite3")
    png = encode_image(drive[1].images[3], "png")

    def change(data: bytes) -> bytes:
        page_size, blob = int.from_bytes(data[16:18], "big"), data.find(png[:64])
        assert blob > 0 and len(png) > 3 * page_size
        start = (blob + 2 * page_size) // page_size * page_size  # a page of the blob's overflow chain
        return data[:start] + bytes(page_size) + data[start + page_size :]

    damaged = damaged_copy((path, "full.db3"), tmp_path, change)
    with pytest.raises(BagError, match=rf"{damaged}: unreadable after \d+ ns \(CorruptError: "):
        replay(predictor, damaged)


def test_a_sqlite3_message_whose_data_is_no_blob_is_skipped_and_counted(predictor, drive, tmp_path, caplog):
    path = write_drive(tmp_path / "bag", drive[:2], storage="sqlite3")
    with closing(sqlite3.connect(path / "bag.db3")) as db, db:
        db.execute(
            "UPDATE messages SET data = 12345 WHERE id = (SELECT min(m.id) FROM messages m JOIN topics t "
            "ON m.topic_id = t.id WHERE t.name = ?)",
            (topics.GT_MARKERS,),
        )
    with caplog.at_level(logging.WARNING, "mapdistill.replay"):
        result = replay(predictor, path)
    assert len(result.predictions) == 2 and result.timing["dropped"] == {BAD_MESSAGE: 1}
    assert f"skipped the message on {topics.GT_MARKERS}" in caplog.text


# Checkpoints -----------------------------------------------------------------------------------


@given(st.one_of(st.floats(0.0, 1.0, exclude_max=True), st.binary(max_size=256)))
@FAST
def test_a_truncated_or_random_safetensors_file_is_a_checkpoint_error_naming_it(weights, cut_or_content):
    """A fraction: the checkpoint cut there; bytes: the whole file."""
    data = weights.read_bytes()
    content = data[: int(cut_or_content * len(data))] if isinstance(cut_or_content, float) else cut_or_content
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "broken.safetensors"
        path.write_bytes(content)
        with pytest.raises(CheckpointError, match=f"{path}: not a readable safetensors file"):
            load_model(path)


@pytest.mark.parametrize("key", ["class_names", "extra"])
def test_metadata_that_is_not_json_is_a_checkpoint_error_naming_file_and_key(weights, tmp_path, key):
    tensors, metadata = read_safetensors(weights)
    path = tmp_path / "bad.safetensors"
    save_file(tensors, str(path), metadata={**metadata, key: "{not json"})
    with pytest.raises(CheckpointError, match=f"bad.safetensors: metadata '{key}' is not JSON"):
        load_model(path)
    if key == "extra":
        with pytest.raises(CheckpointError, match="bad.safetensors: metadata 'extra' is not JSON"):
            read_extra(path)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"neck_channels": -3}, "model_config.neck_channels: must be >= 1, got -3"),
        ({"bev_size": [0, 0]}, r"model_config.bev_size: must be >= 1, got \(0, 0\)"),
        ({"decoder": {"num_points": 1}}, "decoder.num_points: must be >= 2, got 1"),
        ({"bev_channels": 30}, "must be divisible by decoder.heads"),
        ({"lss": {"depth_bins": [5.0, 1.0, 0.5]}}, "lss.depth_bins"),
        ({"attention": {"kernel_size": 2}}, "odd kernel_size"),
    ],
)
def test_a_stored_model_config_out_of_range_is_a_checkpoint_error(weights, tmp_path, change, words):
    tensors, metadata = read_safetensors(weights)
    stored = json.loads(metadata["model_config"])
    for key, value in change.items():
        stored[key] = {**stored[key], **value} if isinstance(value, dict) else value
    path = tmp_path / "bad.safetensors"
    save_file(tensors, str(path), metadata={**metadata, "model_config": json.dumps(stored)})
    with pytest.raises(CheckpointError, match=f"bad.safetensors: bad 'model_config' metadata .*{words}"):
        load_model(path)


def test_weights_that_do_not_fit_the_config_name_the_file_and_tensor(weights, tmp_path):
    wider = dataclasses.replace(STUDENT, neck_channels=48)
    with pytest.raises(
        CheckpointError, match=r"student.safetensors: weights do not fit .*: file \[32.* vs config \[48"
    ):
        load_model(weights, config=wider)
    config = tmp_path / "wider.yaml"
    config.write_text(yaml.safe_dump({"model": config_to_dict(wider)}))
    with pytest.raises(CheckpointError, match="student.safetensors: weights do not fit the model config"):
        MapPredictor.from_checkpoint(weights, "cpu", model_config=config)


class Touch:
    """Unpickling this creates ``path``: the proof that a loader unpickled."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return Path.touch, (self.path,)


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_a_pickled_checkpoint_is_refused_without_unpickling_it(tmp_path, writer):
    marker = tmp_path / "unpickled"
    path = tmp_path / "model.safetensors"
    if writer == "pickle":
        path.write_bytes(pickle.dumps({"state_dict": Touch(marker)}))
    else:
        torch.save({"state_dict": Touch(marker)}, path)
    for load in (load_model, lambda p: MapPredictor.from_checkpoint(p, "cpu"), read_extra):
        with pytest.raises(CheckpointError, match="model.safetensors: not a readable safetensors file"):
            load(path)
    assert not marker.exists()


# Config files ----------------------------------------------------------------------------------

EXPERIMENT = ROOT / "config/synthetic_student.yaml"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"model: {backbone: {widht: 3}}\n", r"bad.yaml.model.backbone: unknown key 'widht'"),
        (b"train: {epochs: many}\n", r"bad.yaml.train.epochs: expected int, got 'many'"),
        (b"model: {image_size: [64]}\n", r"bad.yaml.model.image_size: expected 2 items"),
        (b"1: 2\nmodle: {}\n", r"bad.yaml: unknown key '1'"),
        (b"[]\n", "bad.yaml: expected a mapping at the top level"),
        (b"0\n", "bad.yaml: expected a mapping at the top level"),
        (b"model: \xff\xfe\n", "bad.yaml: not valid YAML .*utf-8"),
        (b"[" * 5000 + b"]" * 5000, "bad.yaml: not valid YAML .*recursion"),
    ],
)
def test_experiment_config_errors_name_the_file_and_key(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        load_config(ExperimentConfig, path)


def test_a_folder_as_config_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=f"{tmp_path}: not readable"):
        load_config(ExperimentConfig, tmp_path)


@given(mutations(yaml.safe_load(EXPERIMENT.read_text())))
@settings(max_examples=80, deadline=None)
def test_any_changed_experiment_field_loads_or_names_the_file_and_key(change):
    path, value = change
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "experiment.yaml"
        file.write_text(yaml.safe_dump(replaced(yaml.safe_load(EXPERIMENT.read_text()), path, value)))
        try:
            load_config(ExperimentConfig, file)
        except ConfigError as error:
            assert str(error).startswith(str(file)), str(error)
            assert not path or any(str(key) in str(error) for key in path if isinstance(key, str)), str(error)


NODE_YAML = ROOT / "config/online_map.yaml"
NODE_VALUES = yaml.safe_load(NODE_YAML.read_text())[NODE_NAME]["ros__parameters"]


@given(st.sampled_from([*NODE_VALUES, "unknown_parameter"]), VALUES)
@settings(max_examples=80, deadline=None)
def test_any_changed_node_parameter_validates_or_names_the_file_and_parameter(name, value):
    try:
        validate_parameters({**NODE_VALUES, name: value}, str(NODE_YAML))
    except ValueError as error:
        assert f"{NODE_YAML}: " in str(error) and f"'{name}'" in str(error), str(error)


# Metric JSON -----------------------------------------------------------------------------------

GOOD = {
    "meta": {},
    "results": [
        {
            "sample_token": "tok",
            "vectors": [
                {"pts": [[0, 0], [1, 0]], "pts_num": 2, "cls_name": "divider", "type": 0, "confidence_level": 0.5}
            ],
        }
    ],
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cls_name": ["divider"]}, r"vectors\[0\]\.cls_name: unknown class \['divider'\]"),
        ({"cls_name": {"a": 1}}, r"vectors\[0\]\.cls_name: unknown class"),
        ({"pts": [[10**400, 0], [1, 0]]}, r"vectors\[0\]\.pts: expected a list of \[x, y\] numbers"),
        ({"confidence_level": 10**400}, r"vectors\[0\]\.confidence_level: expected a finite number"),
    ],
)
def test_bad_fields_raise_map_file_errors_naming_them(tmp_path, change, message):
    path = tmp_path / "pred.json"
    document = replaced(GOOD, ("results", 0, "vectors", 0), {**GOOD["results"][0]["vectors"][0], **change})
    path.write_text(json.dumps(document))
    with pytest.raises(MapFileError, match=f"pred.json: sample 'tok': {message}"):
        load_predictions(path)


def test_unreadable_metric_files_raise_map_file_errors(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(MapFileError, match="deep.json: not valid JSON .*recursion"):
        load_predictions(path)
    with pytest.raises(MapFileError, match=f"{tmp_path}: not readable"):
        load_ground_truth(tmp_path)


@given(st.one_of(VALUES, mutations(GOOD)), st.booleans())
@settings(max_examples=150, deadline=None)
def test_any_json_loads_or_is_a_map_file_error_naming_the_file(document, ground_truth):
    """Any document, or the good one with one field changed: never a KeyError, TypeError, ..."""
    if isinstance(document, tuple):
        document = replaced(GOOD, *document)
    if ground_truth and isinstance(document, dict):
        document = {"GTs" if key == "results" else key: value for key, value in document.items()}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "vectors.json"
        path.write_text(json.dumps(document))
        try:
            (load_ground_truth if ground_truth else load_predictions)(path)
        except MapFileError as error:
            assert str(error).startswith(f"{path}: "), str(error)


def test_the_wrong_kind_of_model_file_is_named_with_what_to_do(tmp_path):
    """Weights where a config belongs, safetensors for the onnxruntime backend, an ONNX model for the
    torch backend: each one line saying what the file is and which option or command fits it."""
    from mapdistill_core.checkpoint import load_model
    from mapdistill_core.config import load_config
    from mapdistill_core.inference import MapPredictor
    from mapdistill_core.training.config import ExperimentConfig

    shipped = ROOT / "checkpoints/synthetic_student.safetensors"
    with pytest.raises(ConfigError, match=r"student.safetensors: is a safetensors weights file, not a config"):
        load_config(ExperimentConfig, shipped)
    with pytest.raises(CheckpointError) as caught:
        MapPredictor.from_checkpoint(shipped, "cpu", backend="onnxruntime")
    assert "is a safetensors weights file; the onnxruntime backend runs an exported ONNX model: mapdistill " in str(
        caught.value
    ) and "--out synthetic_student.onnx" in str(caught.value)
    onnx_file = tmp_path / "student.onnx"
    onnx_file.write_bytes(b"\x08\x07")
    with pytest.raises(CheckpointError, match="student.onnx: is an ONNX model; run it with the onnxruntime backend"):
        load_model(onnx_file)
