"""The online node's per-frame logic with rosbags messages, a tiny untrained student and (where outputs
are compared) the seeing fixture, tests/fixtures/seeing_student.safetensors."""

import numpy as np
import pytest

from mapdistill_core.data.sample import CAMERA_NAMES
from mapdistill_core.inference import MapPredictor
from mapdistill_ros import messages
from mapdistill_ros.bags.synthetic2bag import encode_image
from mapdistill_ros.bags.typestore import MessageFactory
from mapdistill_ros.online.online_pipeline import OnlinePipeline, TransformCache
from mapdistill_ros.online.stage_timer import StageTimer
from tests.model_fixtures import STUDENT, samples

F = MessageFactory()
STAMP = 1_700_000_000_123_456_789


@pytest.fixture(scope="module")
def sample():
    return samples(1)[0]


def rig(sample, scale: int = 1, image_format: str = "jpeg"):
    """(CompressedImage per camera, CameraInfo per camera, TransformCache) of ``sample``, its images
    ``scale`` times larger (each pixel repeated: area resampling gives the sample's image back)."""
    h, w = sample.images.shape[1:3]
    images, infos, cache = [], [], TransformCache()
    for name, image, k, pose in zip(CAMERA_NAMES, sample.images, sample.intrinsics, sample.cam_to_ego, strict=True):
        big = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
        data = encode_image(big, image_format, 95)
        images.append(messages.compressed_image(F, data, image_format, STAMP, name))
        infos.append(messages.camera_info(F, np.diag([scale, scale, 1.0]) @ k, w * scale, h * scale, STAMP, name))
        cache.add(messages.transform(F, pose, "base_link", name, STAMP))
    return images, infos, cache


def pipeline(predictor, **kwargs):
    return OnlinePipeline(predictor, F, StageTimer(), **{"score_threshold": 0.0, **kwargs})


def test_end_to_end_messages(predictor, sample):
    run = pipeline(predictor, output_frame="ego", marker_width=0.5)
    result = run.process(*rig(sample), STAMP)
    assert result.missing == {}
    assert len(result.map_elements) == STUDENT.decoder.num_queries  # threshold 0: the top-k all pass
    markers = result.markers.markers
    assert markers[0].action == messages.MARKER_DELETEALL
    assert [m.type for m in markers[1:]] == [messages.MARKER_LINE_STRIP] * len(result.map_elements)
    assert all(m.scale.x == 0.5 for m in markers[1:])
    elements = result.elements.elements
    assert len(elements) == len(result.map_elements)
    for message in (result.elements, *markers):
        assert message.header.frame_id == "ego" and messages.stamp_ns(message.header.stamp) == STAMP
    assert all(len(e.points) == STUDENT.decoder.num_points for e in elements)
    stages = run.timer.summary()["stages"]
    assert [stages[s]["count"] for s in ("decode", "preprocess", "inference", "postprocess", "publish")] == [
        1,
        1,
        1,
        1,
        0,
    ]
    assert run.timer.summary()["frames"] == 1


def test_same_elements_as_predicting_on_the_sample(weights, sample):
    """2x PNG input goes back to the model's size with K scaled: the prediction of the sample itself, to
    float32 precision; the seeing model moves by far more when two cameras' images trade places."""
    seeing = MapPredictor.from_checkpoint(weights, "cpu")
    images, infos, cache = rig(sample, scale=2, image_format="png")
    result = pipeline(seeing).process(images, infos, cache, STAMP)
    direct = seeing.predict(sample, 0.0)[0]
    assert [e.class_id for e in result.map_elements] == [e.class_id for e in direct]
    got, want = np.stack([e.points for e in result.map_elements]), np.stack([e.points for e in direct])
    np.testing.assert_allclose(got, want, atol=1e-4)
    images[0], images[1] = (  # two cameras' pixels trade places, each header (frame, so pose) stays
        messages.compressed_image(F, theirs.data.tobytes(), "png", STAMP, mine.header.frame_id)
        for mine, theirs in ((images[0], images[1]), (images[1], images[0]))
    )
    swapped = np.stack([e.points for e in pipeline(seeing).process(images, infos, cache, STAMP).map_elements])
    assert np.abs(swapped - want).max() > 0.1


def test_a_missing_camera_is_masked_and_named(predictor, sample):
    images, infos, cache = rig(sample)
    images[3] = None
    result = pipeline(predictor, min_cameras=4).process(images, infos, cache, STAMP)
    assert result.missing == {"CAM_BACK": "no image"}
    assert result.markers.markers[0].action == messages.MARKER_DELETEALL
    assert len(result.markers.markers) == 1 + len(result.map_elements) > 1


def test_cameras_without_calibration_are_masked_with_the_reason(predictor, sample):
    images, infos, _ = rig(sample)
    infos[1] = None
    cache = TransformCache()
    for name, pose in zip(CAMERA_NAMES[:5], sample.cam_to_ego, strict=False):
        cache.add(messages.transform(F, pose, "base_link", name, STAMP))
    result = pipeline(predictor).process(images, infos, cache, STAMP)
    assert result.missing == {
        "CAM_FRONT_RIGHT": "no CameraInfo",
        "CAM_BACK_RIGHT": "no transform base_link -> CAM_BACK_RIGHT",
    }


def test_too_few_cameras_raise_naming_them(predictor, sample):
    images, infos, cache = rig(sample)
    images[0] = images[2] = None
    run = pipeline(predictor, min_cameras=5)
    with pytest.raises(
        ValueError, match="4 usable cameras, fewer than min_cameras = 5 .CAM_FRONT: no image, CAM_FRONT_LEFT"
    ):
        run.process(images, infos, cache, STAMP)
    assert run.timer.summary()["frames"] == 0


def test_bad_input_raises(predictor, sample):
    images, infos, cache = rig(sample)
    infos[2] = messages.camera_info(F, sample.intrinsics[2], 100, 50, STAMP, "CAM_FRONT_LEFT")
    with pytest.raises(ValueError, match="image of 'CAM_FRONT_LEFT' is 176 x 64, its CameraInfo says 100 x 50"):
        pipeline(predictor).process(images, infos, cache, STAMP)
    images, infos, cache = rig(sample)
    images[5] = messages.compressed_image(F, b"garbage", "jpeg", STAMP, "CAM_BACK_RIGHT")
    with pytest.raises(ValueError, match="CAM_BACK_RIGHT"):
        pipeline(predictor).process(images, infos, cache, STAMP)
    with pytest.raises(ValueError, match="expected 6 images"):
        pipeline(predictor).process(images[:5], infos, cache, STAMP)


def test_transform_cache():
    matrix = np.eye(4)
    matrix[:3, 3] = (1.5, -0.5, 1.6)
    cache = TransformCache("base_link")
    assert cache.missing(["CAM_FRONT", "CAM_BACK"]) == ["CAM_FRONT", "CAM_BACK"]
    assert not cache.add(messages.transform(F, matrix, "map", "CAM_FRONT", 0))  # not from base_link
    assert cache.add(messages.transform(F, matrix, "/base_link", "CAM_FRONT", 0))
    assert not cache.add(messages.transform(F, np.eye(4), "base_link", "CAM_FRONT", 1))  # first one found is kept
    np.testing.assert_allclose(cache.get("CAM_FRONT"), matrix)
    assert cache.missing(["CAM_FRONT", "CAM_BACK"]) == ["CAM_BACK"]
    bad = messages.transform(F, matrix, "base_link", "CAM_BACK", 0)
    bad.transform.translation.x = float("nan")
    with pytest.raises(ValueError, match="base_link -> CAM_BACK is not finite"):
        cache.add(bad)
