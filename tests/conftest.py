"""Fixtures shared by several test modules: the seeing tiny student as weights, an untrained one as a predictor."""

from pathlib import Path

import pytest
import torch

from mapdistill_core.checkpoint import read_model_config
from mapdistill_core.inference import MapPredictor
from mapdistill_core.models.model import build_model
from tests.model_fixtures import STUDENT

# A launch_testing file, run by `make launch-test` in a sourced ROS 2 workspace, not by pytest.
collect_ignore = ["test_online_node_launch.py"]


@pytest.fixture(scope="module")
def weights():
    """The tiny student trained briefly on the tests' world (tests/fixtures/seeing_student.yaml): a model
    whose outputs depend on its images, calibration and mask, so comparisons can tell right from wrong."""
    path = Path(__file__).resolve().parent / "fixtures" / "seeing_student.safetensors"
    assert read_model_config(path) == STUDENT  # the architecture the tests' expectations assume
    return path


@pytest.fixture(scope="module")
def predictor():
    """The tiny student (seed 0), run on one thread (a tiny model gains nothing from more, and
    contended cores make torch's thread pool spin for seconds)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield MapPredictor.from_model(build_model(STUDENT), "cpu")
    torch.set_num_threads(threads)
