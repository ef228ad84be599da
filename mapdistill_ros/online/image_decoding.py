"""Camera messages -> numpy: sensor_msgs/Image and CompressedImage to RGB, CameraInfo to K.

Messages are read by field name, so rclpy and rosbags messages both work. Every error is a
ValueError that names the camera (the header's frame_id) and the offending field. Images keep
their size here; the online pipeline resizes them to the model's input.
"""

from __future__ import annotations

import re

import cv2
import numpy as np

CHANNELS: dict[str, int] = {"rgb8": 3, "bgr8": 3, "mono8": 1, "rgba8": 4, "bgra8": 4}
"""Raw encodings understood, with their channels per pixel (8 bits each)."""

COMPRESSIONS = ("jpeg", "png")
SIGNATURES = {"jpeg": b"\xff\xd8\xff", "png": b"\x89PNG\r\n\x1a\n"}
"""The first bytes of each compression's data: nothing else reaches OpenCV's decoders."""


def message_bytes(data) -> np.ndarray:
    """A message's uint8[] field (numpy array, array.array, bytes or list) as a flat uint8 array."""
    if isinstance(data, np.ndarray):
        return data.reshape(-1).astype(np.uint8, copy=False)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except TypeError:
        return np.asarray(data, dtype=np.uint8).reshape(-1)


def decode_image(message) -> np.ndarray:
    """sensor_msgs/Image (rgb8, bgr8, mono8, rgba8, bgra8; rows ``step`` bytes apart) -> uint8 RGB [H, W, 3]."""
    frame = message.header.frame_id
    encoding = message.encoding
    if encoding not in CHANNELS:
        raise ValueError(f"Image of '{frame}': field 'encoding' is '{encoding}', expected one of {list(CHANNELS)}")
    height, width, step = int(message.height), int(message.width), int(message.step)
    channels = CHANNELS[encoding]
    if height <= 0 or width <= 0:
        raise ValueError(f"Image of '{frame}': fields 'height' and 'width' must be > 0, got {height} x {width}")
    if step < width * channels:
        raise ValueError(f"Image of '{frame}': field 'step' is {step}, less than width * channels = {width * channels}")
    data = message_bytes(message.data)
    if len(data) < step * height:
        raise ValueError(f"Image of '{frame}': field 'data' has {len(data)} bytes, step * height = {step * height}")
    pixels = data[: step * height].reshape(height, step)[:, : width * channels].reshape(height, width, channels)
    if encoding == "mono8":
        pixels = np.repeat(pixels, 3, axis=2)
    elif encoding.startswith("bgr"):
        pixels = pixels[:, :, 2::-1]
    return np.array(pixels[:, :, :3], dtype=np.uint8, order="C")


def compression(image_format: str, frame: str = "") -> str:
    """The compression a CompressedImage format names ("jpeg", "png", "rgb8; jpeg compressed bgr8", ...)."""
    words = {{"jpg": "jpeg"}.get(w, w) for w in re.findall(r"[a-z0-9]+", image_format.lower())}
    found = words & {*COMPRESSIONS, "compresseddepth"}
    if len(found) != 1 or "compresseddepth" in found:
        raise ValueError(
            f"CompressedImage of '{frame}': field 'format' is '{image_format}', expected one naming "
            f"{' or '.join(COMPRESSIONS)}"
        )
    return found.pop()


def decode_compressed(message) -> np.ndarray:
    """sensor_msgs/CompressedImage (JPEG or PNG, any colour order the format names) -> uint8 RGB [H, W, 3].

    The data must start with the signature of the compression the format names; data that is
    truncated, corrupt or larger than OpenCV's pixel limit is a ValueError like any other.
    """
    frame = message.header.frame_id
    kind = compression(message.format, frame)
    data = message_bytes(message.data)
    image, detail = None, ""
    if data[: len(SIGNATURES[kind])].tobytes() == SIGNATURES[kind]:
        try:
            image = cv2.imdecode(data, cv2.IMREAD_COLOR)
        except cv2.error as e:  # e.g. a header claiming more pixels than OpenCV allows
            detail = f" ({e.err})"
    if image is None:
        raise ValueError(
            f"CompressedImage of '{frame}': field 'data' ({len(data)} bytes) is not a decodable {kind}{detail}"
        )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def decode(message) -> np.ndarray:
    """uint8 RGB [H, W, 3] of an Image or a CompressedImage (told apart by the ``format`` field)."""
    return decode_compressed(message) if hasattr(message, "format") else decode_image(message)


def intrinsics(info) -> np.ndarray:
    """K float64 [3, 3] of a sensor_msgs/CameraInfo, checked to be a usable pinhole matrix.

    K holds for an image of ``info.width`` x ``info.height`` pixels.
    """
    frame = info.header.frame_id
    width, height = int(info.width), int(info.height)
    if width <= 0 or height <= 0:
        raise ValueError(f"CameraInfo of '{frame}': fields 'width' and 'height' must be > 0, got {width} x {height}")
    k = np.asarray(info.k, dtype=np.float64)
    if k.size != 9:
        raise ValueError(f"CameraInfo of '{frame}': field 'k' has {k.size} values, expected 9")
    k = k.reshape(3, 3)
    if not np.isfinite(k).all():
        raise ValueError(f"CameraInfo of '{frame}': field 'k' has non-finite values {k.reshape(-1).tolist()}")
    if k[0, 0] <= 0 or k[1, 1] <= 0:
        raise ValueError(f"CameraInfo of '{frame}': field 'k' has fx = {k[0, 0]}, fy = {k[1, 1]}; both must be > 0")
    if np.linalg.cond(k) > 1e12:
        raise ValueError(f"CameraInfo of '{frame}': field 'k' is singular: {k.reshape(-1).tolist()}")
    return k
