"""Fixtures shared by several test modules: an untrained tiny student as weights and as a predictor."""

import pytest
import torch

from mapdistill_core.checkpoint import save_model
from mapdistill_core.inference import MapPredictor
from mapdistill_core.models.model import build_model
from tests.model_fixtures import STUDENT

# A launch_testing file, run by `make launch-test` in a sourced ROS 2 workspace, not by pytest.
collect_ignore = ["test_online_node_launch.py"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """The tiny student (seed 0) saved as safetensors."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "student.safetensors"
    save_model(path, build_model(STUDENT))
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
