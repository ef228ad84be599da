"""With a model that sees its input (tests/fixtures/seeing_student.safetensors: the tests' tiny student
trained briefly on their world, see seeing_student.yaml), the online pipeline keeps every camera in its
slot, the mask reaches the model, replay scores far from 0, and ONNX keeps each sample's images: the
bugs an untrained model cannot reveal, because it barely looks at its input."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from mapdistill_core.data.sample import CAMERA_NAMES
from mapdistill_core.data.synthetic.world import SyntheticScene
from mapdistill_core.inference import MapPredictor, model_inputs
from mapdistill_core.metrics import evaluate_vectors
from mapdistill_ros import messages
from mapdistill_ros.bags.replay import replay_bag
from mapdistill_ros.bags.synthetic2bag import bag_samples, encode_image, write_synthetic_bag
from mapdistill_ros.online.online_pipeline import TransformCache
from tests.model_fixtures import WORLD
from tests.test_online_pipeline import STAMP, F, pipeline

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "seeing_student.safetensors"
SWAP = [1, 0, 2, 3, 4, 5]  # CAM_FRONT and CAM_FRONT_RIGHT exchanged


@pytest.fixture(scope="module")
def seeing():
    return MapPredictor.from_checkpoint(FIXTURE, "cpu")


@pytest.fixture(scope="module")
def sample():
    return SyntheticScene(WORLD, "test", 0).sample(1)


def raw_points_m(predictor, samples, mask=None) -> np.ndarray:
    """The last layer's points [B, Q, 20, 2] in metres (normalized x 60 m / 30 m), before decoding."""
    _, points = predictor.backend(model_inputs(samples, predictor.config, predictor.grid, mask))
    return points.numpy() * np.array([60.0, 30.0])


def test_the_fixture_looks_at_its_cameras_their_order_and_the_mask(seeing, sample):
    base = raw_points_m(seeing, [sample])
    swapped = raw_points_m(seeing, [dataclasses.replace(sample, images=sample.images[SWAP])])
    mask = np.ones((1, 6), dtype=bool)
    mask[0, 0] = False
    masked = raw_points_m(seeing, [sample], mask)
    assert np.abs(swapped - base).max() > 1.0 and np.abs(masked - base).max() > 1.0  # metres


def lossless_rig(sample):
    """The sample's cameras as PNG CompressedImages with their CameraInfo and transforms: what the
    pipeline decodes is exactly the sample's pixels."""
    images, infos, cache = [], [], TransformCache()
    for name, image, k, pose in zip(CAMERA_NAMES, sample.images, sample.intrinsics, sample.cam_to_ego, strict=True):
        images.append(messages.compressed_image(F, encode_image(image, "png"), "png", STAMP, name))
        infos.append(messages.camera_info(F, k, image.shape[1], image.shape[0], STAMP, name))
        cache.add(messages.transform(F, pose, "base_link", name, STAMP))
    return images, infos, cache


def points_of(elements) -> np.ndarray:
    return np.stack([e.points for e in elements])


def test_the_pipeline_keeps_every_camera_in_its_slot(seeing, sample):
    """Lossless input: the pipeline's elements are the sample's own prediction to float precision,
    while two exchanged cameras move them by metres."""
    direct = points_of(seeing.predict(sample, 0.0)[0])
    got = points_of(pipeline(seeing).process(*lossless_rig(sample), STAMP).map_elements)
    swapped = points_of(seeing.predict(dataclasses.replace(sample, images=sample.images[SWAP]), 0.0)[0])
    assert np.abs(got - direct).max() < 1e-3 and np.abs(swapped - direct).max() > 1.0


def test_replay_scores_far_from_zero_and_like_the_samples(seeing, tmp_path):
    samples = [s for drive in bag_samples(WORLD, "test", 2, 4) for s in drive]
    write_synthetic_bag(WORLD, "test", 2, tmp_path / "bag", samples=4, image_format="png")
    result = replay_bag(tmp_path / "bag", FIXTURE, tmp_path / "out", device="cpu", min_cameras=6, pictures=False)
    direct = {str(s.timestamp_ns): seeing.predict(s, 0.0)[0] for s in samples}
    truth = {str(s.timestamp_ns): list(s.ground_truth) for s in samples}
    expected = evaluate_vectors(direct, truth).mean_ap
    assert expected > 0.1 and result.metrics["mAP"] == pytest.approx(expected, abs=1e-6)


def test_a_missing_camera_reaches_the_model_as_masked(seeing, sample):
    images, infos, cache = lossless_rig(sample)
    images[3] = None  # CAM_BACK missing
    got = points_of(pipeline(seeing, min_cameras=4).process(images, infos, cache, STAMP).map_elements)
    mask = np.ones((1, 6), dtype=bool)
    mask[0, 3] = False
    masked = points_of(seeing.predict([sample], 0.0, mask)[0])
    blank = dataclasses.replace(sample, images=sample.images.copy())
    blank.images[3] = 0
    unmasked = points_of(seeing.predict(blank, 0.0)[0])  # what the model makes of a black image, unmasked
    assert np.abs(got - masked).max() < 1e-3 and np.abs(unmasked - masked).max() > 1.0
