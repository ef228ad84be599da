"""Image, CompressedImage and CameraInfo messages (rosbags, built by MessageFactory) -> numpy."""

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapdistill_ros import messages
from mapdistill_ros.bags.typestore import MessageFactory
from mapdistill_ros.online.image_decoding import CHANNELS, decode, decode_compressed, decode_image, intrinsics

F = MessageFactory()
RGB = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)


def raw(pixels: np.ndarray, encoding: str, padding: int = 0, **fields):
    """sensor_msgs/Image of ``pixels`` [H, W, C] with ``padding`` extra bytes at the end of each row;
    ``fields`` override what that gives."""
    h, w = pixels.shape[:2]
    rows = pixels.reshape(h, -1)
    data = np.concatenate([rows, np.full((h, padding), 255, np.uint8)], axis=1).reshape(-1)
    values = dict(height=h, width=w, encoding=encoding, step=rows.shape[1] + padding, data=data)
    values.update(fields)
    return F.new("sensor_msgs/msg/Image", header=messages.header(F, 1, "CAM_FRONT"), **values)


def in_encoding(rgb: np.ndarray, encoding: str) -> np.ndarray:
    alpha = np.full(rgb.shape[:2] + (1,), 7, np.uint8)
    return {
        "rgb8": rgb,
        "bgr8": rgb[:, :, ::-1],
        "mono8": rgb[:, :, :1],
        "rgba8": np.concatenate([rgb, alpha], axis=2),
        "bgra8": np.concatenate([rgb[:, :, ::-1], alpha], axis=2),
    }[encoding]


@pytest.mark.parametrize("padding", [0, 3])
@pytest.mark.parametrize("encoding", list(CHANNELS))
def test_raw_encodings_with_and_without_row_padding(encoding, padding):
    expected = np.repeat(RGB[:, :, :1], 3, axis=2) if encoding == "mono8" else RGB
    out = decode_image(raw(np.ascontiguousarray(in_encoding(RGB, encoding)), encoding, padding))
    assert out.dtype == np.uint8 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, expected)


def test_raw_accepts_bytes_data_as_rclpy_gives():
    message = raw(RGB, "rgb8", 2)
    message.data = message.data.tobytes()
    np.testing.assert_array_equal(decode(message), RGB)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        (dict(encoding="yuv422"), ["encoding", "yuv422", "CAM_FRONT"]),
        (dict(encoding="RGB8"), ["encoding", "RGB8"]),
        (dict(step=20), ["step", "20", "CAM_FRONT"]),
        (dict(height=6), ["data", "105 bytes", "126", "CAM_FRONT"]),
        (dict(width=8, step=24), ["data", "CAM_FRONT"]),
        (dict(height=0), ["height", "CAM_FRONT"]),
        (dict(width=0, step=0, data=np.zeros(0, np.uint8)), ["width", "CAM_FRONT"]),
    ],
)
def test_raw_errors_name_the_field_and_frame(fields, words):
    with pytest.raises(ValueError) as error:
        decode_image(raw(RGB, **{"encoding": "rgb8", **fields}))
    assert all(word in str(error.value) for word in words), str(error.value)


def compressed(data: bytes, image_format: str):
    return messages.compressed_image(F, data, image_format, 1, "CAM_BACK")


@pytest.mark.parametrize("image_format", ["png", "bgr8; png compressed bgr8"])
def test_png_is_lossless(image_format):
    _, data = cv2.imencode(".png", cv2.cvtColor(RGB, cv2.COLOR_RGB2BGR))
    np.testing.assert_array_equal(decode(compressed(data.tobytes(), image_format)), RGB)


@pytest.mark.parametrize("image_format", ["jpeg", "jpg", "rgb8; jpeg compressed bgr8"])
def test_jpeg(image_format):
    smooth = np.zeros((32, 48, 3), np.uint8)
    smooth[..., 0], smooth[..., 1], smooth[..., 2] = 200, np.arange(48, dtype=np.uint8)[None] * 4, 30
    _, data = cv2.imencode(".jpg", cv2.cvtColor(smooth, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    out = decode_compressed(compressed(data.tobytes(), image_format))
    assert out.shape == (32, 48, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - smooth).max() <= 8


@pytest.mark.parametrize(
    ("data", "image_format", "words"),
    [
        (b"", "jpeg", ["data", "0 bytes", "CAM_BACK"]),
        (b"\xff\xd8\xff not really a jpeg", "jpeg", ["data", "jpeg", "CAM_BACK"]),
        (b"\x89PNG", "tiff", ["format", "tiff", "CAM_BACK"]),
        (b"\x89PNG", "16UC1; compressedDepth png", ["format", "compressedDepth"]),
        (b"\x89PNG", "", ["format", "CAM_BACK"]),
    ],
)
def test_compressed_errors_name_the_field_and_frame(data, image_format, words):
    with pytest.raises(ValueError) as error:
        decode(compressed(data, image_format))
    assert all(word in str(error.value) for word in words), str(error.value)


@given(st.binary(max_size=600), st.sampled_from(["jpeg", "png"]))
@settings(max_examples=60, deadline=None)
def test_random_bytes_decode_or_raise_value_error(data, image_format):
    try:
        out = decode(compressed(data, image_format))
    except ValueError as error:
        assert "CAM_BACK" in str(error)
    else:
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3


@given(
    st.integers(0, 6),
    st.integers(0, 6),
    st.integers(0, 30),
    st.sampled_from(list(CHANNELS) + ["16UC1"]),
    st.binary(max_size=200),
)
@settings(max_examples=100, deadline=None)
def test_random_raw_fields_decode_or_raise_value_error(height, width, step, encoding, data):
    message = F.new(
        "sensor_msgs/msg/Image",
        height=height,
        width=width,
        step=step,
        encoding=encoding,
        data=np.frombuffer(data, np.uint8),
    )
    try:
        out = decode_image(message)
    except ValueError:
        return
    assert out.shape == (height, width, 3)


K = np.array([[500.0, 0, 320], [0, 510, 240], [0, 0, 1]])


def test_camera_info_k():
    info = messages.camera_info(F, K, 640, 480, 1, "CAM_FRONT")
    k = intrinsics(info)
    assert k.dtype == np.float64 and k.shape == (3, 3)
    np.testing.assert_array_equal(k, K)


@pytest.mark.parametrize(
    ("k", "size", "words"),
    [
        (np.where(np.eye(3, dtype=bool), np.nan, K), (640, 480), ["'k'", "non-finite"]),
        (np.zeros((3, 3)), (640, 480), ["'k'", "fx = 0.0"]),
        (np.diag([500.0, -500.0, 1.0]), (640, 480), ["'k'", "fy = -500.0"]),
        (np.array([[500.0, 0, 320], [500.0, 1e-20, 240], [0, 0, 1]]), (640, 480), ["'k'", "singular"]),
        (K, (0, 480), ["'width'", "0 x 480"]),
        (K, (640, 0), ["'height'"]),
    ],
)
def test_camera_info_errors_name_the_camera_and_field(k, size, words):
    info = messages.camera_info(F, K, *size, 1, "CAM_BACK_LEFT")
    info.k = np.asarray(k, dtype=np.float64).reshape(9)
    with pytest.raises(ValueError) as error:
        intrinsics(info)
    assert all(word in str(error.value) for word in [*words, "CAM_BACK_LEFT"]), str(error.value)
