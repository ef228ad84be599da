"""ONNX export and the onnxruntime backend: same outputs and same decoded map elements as PyTorch."""

from __future__ import annotations

import json
import logging

import numpy as np
import onnx
import pytest
import torch

from mapdistill_core.checkpoint import load_model, save_model
from mapdistill_core.cli import main
from mapdistill_core.errors import CheckpointError
from mapdistill_core.export import ExportedModel, check_export, example_batch, export_onnx
from mapdistill_core.inference import MapPredictor, OnnxRuntimeBackend, TorchBackend
from mapdistill_core.models import view_transforms
from mapdistill_core.models.model import build_model
from mapdistill_ros.nodes.node_params import validate_parameters
from tests.model_fixtures import STUDENT, TEACHER, samples


@pytest.fixture(scope="module")
def exported(weights, tmp_path_factory):
    return export_onnx(weights, tmp_path_factory.mktemp("onnx") / "seeing_student.onnx")


def test_closed_form_inverses_equal_linalg_inv():
    generator = torch.Generator().manual_seed(0)
    k = torch.eye(3).repeat(4, 6, 1, 1)
    k[..., 0, 0], k[..., 1, 1] = 100 + 900 * torch.rand(4, 6, generator=generator), 100 + 900 * torch.rand(4, 6)
    k[..., :2, 2] = 500 * torch.rand(4, 6, 2, generator=generator)
    torch.testing.assert_close(view_transforms.inverse_3x3(k), torch.linalg.inv(k))
    axis = torch.nn.functional.normalize(torch.randn(5, 3, generator=generator), dim=-1)
    skew = torch.zeros(5, 3, 3)
    skew[:, 0, 1], skew[:, 0, 2], skew[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    skew = skew - skew.transpose(1, 2)
    transform = torch.eye(4).repeat(5, 1, 1)
    transform[:, :3, :3] = torch.linalg.matrix_exp(skew * 0.7)
    transform[:, :3, 3] = 10 * torch.randn(5, 3, generator=generator)
    torch.testing.assert_close(view_transforms.rigid_inverse(transform), torch.linalg.inv(transform))


def test_static_shape_attention_equals_the_gathered_one(monkeypatch):
    torch.manual_seed(0)
    model = build_model(STUDENT).eval()
    batch = example_batch(model, samples=samples(2))
    batch["camera_mask"][1, 3] = False
    with torch.inference_mode():
        monkeypatch.setattr(view_transforms, "static_shapes_wanted", lambda features: False)
        gathered = model(batch)
        monkeypatch.setattr(view_transforms, "static_shapes_wanted", lambda features: True)
        dense = model(batch)
    for key in ("bev", "logits", "points"):
        a, b = (out[key][-1] if isinstance(out[key], list) else out[key] for out in (gathered, dense))
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_export_writes_a_checked_model_with_its_config(exported):
    proto = onnx.load(str(exported))
    onnx.checker.check_model(proto)
    metadata = {p.key: p.value for p in proto.metadata_props}
    assert metadata["format"] == "mapdistill.onnx/1"
    assert json.loads(metadata["model_config"])["image_size"] == list(STUDENT.image_size)
    assert [i.name for i in proto.graph.input] == ["images", "intrinsics", "cam_to_ego", "camera_mask"]
    assert [o.name for o in proto.graph.output] == ["logits", "points"]


@pytest.mark.parametrize("batch_size", [1, 3])
def test_onnxruntime_outputs_equal_pytorch_at_any_batch_size(weights, exported, batch_size):
    batch = example_batch(build_model(STUDENT), samples=samples(3)[:batch_size])
    runtime, reference = OnnxRuntimeBackend(exported, "cpu"), MapPredictor.from_checkpoint(weights, "cpu").backend
    for ours, theirs in zip(runtime(batch), reference(batch), strict=True):
        assert ours.shape == theirs.shape and ours.shape[0] == batch_size
        torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_both_backends_decode_the_same_map_elements(weights, exported):
    mask = np.ones((2, 6), dtype=bool)
    mask[0, 4] = False  # a missing camera goes through the same masking in both
    torch_predictor = MapPredictor.from_checkpoint(weights, "cpu")
    onnx_predictor = MapPredictor.from_checkpoint(exported, "cpu", backend="onnxruntime")
    assert onnx_predictor.config == torch_predictor.config
    expected = torch_predictor.predict(samples(2), camera_mask=mask)
    actual = onnx_predictor.predict(samples(2), camera_mask=mask)
    for ours, theirs in zip(actual, expected, strict=True):
        assert len(ours) == len(theirs) == STUDENT.decoder.num_queries  # top-k (query, class) pairs, k = Q
        assert [e.class_id for e in ours] == [e.class_id for e in theirs]
        np.testing.assert_allclose([e.score for e in ours], [e.score for e in theirs], atol=1e-5)
        np.testing.assert_allclose(np.stack([e.points for e in ours]), np.stack([e.points for e in theirs]), atol=1e-3)


def test_float16_export_runs_in_onnxruntime_close_to_float32(weights, exported, tmp_path):
    path = export_onnx(weights, tmp_path / "student16.onnx", fp16=True)
    proto = onnx.load(str(path))
    assert {p.key: p.value for p in proto.metadata_props}["fp16"] == "true"
    assert path.stat().st_size < 0.75 * exported.stat().st_size
    model, _ = load_model(weights)
    check = check_export(model, path, example_batch(model, samples=samples(2)))
    assert check.ran, check.reason
    # measured with the seeing fixture: 0.0068 in a logit and 0.075 m (onnxruntime 1.32): float16 rounding
    errors = (check.max_logit_error, check.max_point_error_m)
    assert errors[0] < 0.02 and errors[1] < 0.2, errors


def test_export_command_checks_the_file_against_pytorch(weights, tmp_path, capsys):
    assert main(["export", "--weights", str(weights), "--out", str(tmp_path / "s.onnx")]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime (CPU) vs PyTorch" in out and (tmp_path / "s.onnx").is_file()


def test_export_refuses_a_teacher_and_a_pickle(tmp_path, capsys):
    save_model(tmp_path / "teacher.safetensors", build_model(TEACHER))
    with pytest.raises(CheckpointError, match="teacher.safetensors: a teacher"):
        export_onnx(tmp_path / "teacher.safetensors", tmp_path / "t.onnx")
    torch.save({"w": torch.zeros(1)}, tmp_path / "pickle.pt")
    assert main(["export", "--weights", str(tmp_path / "pickle.pt"), "--out", str(tmp_path / "p.onnx")]) == 2
    assert "pickle.pt" in capsys.readouterr().err
    assert not (tmp_path / "p.onnx").exists()


def test_onnxruntime_backend_refuses_foreign_files_and_torch_only_options(tmp_path, exported):
    tensor = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "g", [tensor], [tensor])
    graph.output[0].name = "y"
    onnx.save(onnx.helper.make_model(graph), str(tmp_path / "foreign.onnx"))
    with pytest.raises(CheckpointError, match="not an ONNX file written by `mapdistill export`"):
        OnnxRuntimeBackend(tmp_path / "foreign.onnx", "cpu")
    proto = onnx.load(str(exported))
    for prop in proto.metadata_props:
        if prop.key == "model_config":
            prop.value = "{not json"
    onnx.save(proto, str(tmp_path / "bad_metadata.onnx"))
    with pytest.raises(CheckpointError, match="bad_metadata.onnx: bad 'model_config' metadata"):
        OnnxRuntimeBackend(tmp_path / "bad_metadata.onnx", "cpu")
    (tmp_path / "garbage.onnx").write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="garbage.onnx: onnxruntime cannot load it"):
        OnnxRuntimeBackend(tmp_path / "garbage.onnx", "cpu")
    with pytest.raises(CheckpointError, match="missing.onnx: no such ONNX file"):
        OnnxRuntimeBackend(tmp_path / "missing.onnx", "cpu")
    with pytest.raises(ValueError, match="torch backend"):
        MapPredictor.from_checkpoint(exported, "cpu", half=True, backend="onnxruntime")
    with pytest.raises(ValueError, match="torch backend"):
        MapPredictor.from_checkpoint(exported, "cpu", backend="onnxruntime", cuda_graphs=True)
    with pytest.raises(ValueError, match="unknown inference backend"):
        MapPredictor.from_checkpoint(exported, "cpu", backend="tensorrt")


def test_node_parameters_name_the_backend_and_reject_torch_only_options():
    assert validate_parameters({"backend": "onnxruntime", "weights": "s.onnx"})["backend"] == "onnxruntime"
    with pytest.raises(ValueError, match="'backend'"):
        validate_parameters({"backend": "tensorrt"})
    with pytest.raises(ValueError, match="'half'"):
        validate_parameters({"backend": "onnxruntime", "half": True})
    with pytest.raises(ValueError, match="'cuda_graphs'") as caught:
        validate_parameters({"backend": "onnxruntime", "cuda_graphs": True})
    assert "parameter 'cuda_graphs' applies to the torch backend only" in str(caught.value)
    assert "out of range" not in str(caught.value)


def test_cuda_graphs_fall_back_to_eager_on_a_cpu_with_one_log_line(weights, caplog):
    batch = example_batch(build_model(STUDENT), samples=samples(2))
    eager = MapPredictor.from_checkpoint(weights, "cpu")
    with caplog.at_level(logging.INFO, logger="mapdistill_core.inference"):
        graphs = MapPredictor.from_checkpoint(weights, "cpu", cuda_graphs=True)
    assert [r.getMessage() for r in caplog.records] == [
        "cuda_graphs: cpu is not a CUDA device, running the model eagerly"
    ]
    assert not graphs.cuda_graphs and not eager.cuda_graphs
    for a, b in zip(graphs.backend(batch), eager.backend(batch), strict=True):
        assert torch.equal(a, b)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
@pytest.mark.parametrize("half", [False, True], ids=["float32", "float16"])
def test_cuda_graph_replays_equal_the_eager_forward(weights, half):
    batch = example_batch(build_model(STUDENT), samples=samples(2))
    batch["camera_mask"][1, 2] = False
    eager = MapPredictor.from_checkpoint(weights, "cuda", half=half)
    graphs = MapPredictor.from_checkpoint(weights, "cuda", half=half, cuda_graphs=True)
    assert graphs.cuda_graphs
    expected = eager.backend(batch)
    for _ in range(3):  # the first call captures, the next ones replay
        got = graphs.backend(batch)
        for a, b, tolerance in zip(got, expected, (5e-3 if half else 1e-4, 2e-3 if half else 1e-5), strict=True):
            assert (a - b).abs().max() < tolerance


def test_exported_wrapper_keeps_float32_outputs_for_a_half_model():
    model = build_model(STUDENT).half().eval()
    batch = example_batch(model)
    wrapper = ExportedModel(model, torch.float16)
    with torch.inference_mode():
        logits, points = wrapper(*(batch[k] for k in ("images", "intrinsics", "cam_to_ego", "camera_mask")))
    assert logits.dtype == points.dtype == torch.float32
    assert torch.isfinite(logits).all() and torch.isfinite(points).all()
    assert TorchBackend(build_model(STUDENT), "cpu", half=True).half is False  # autocast is CUDA-only
