"""Shapes of every module, lift-splat geometry, permutation-equivalent matching, and learning."""

import numpy as np
import pytest
import torch

from mapdistill_core.bev_grid import BEVGrid
from mapdistill_core.data.batch import collate
from mapdistill_core.data.synthetic.sensors import camera_intrinsics, camera_to_ego
from mapdistill_core.metrics import evaluate_vectors
from mapdistill_core.models import view_transforms
from mapdistill_core.models.backbone import FPN, ResNet
from mapdistill_core.models.config import BackboneConfig, LossConfig, LSSConfig
from mapdistill_core.models.criterion import MapCriterion
from mapdistill_core.models.matcher import HungarianMatcher, build_matcher, permutation_l1
from mapdistill_core.models.model import build_model
from mapdistill_core.models.postprocess import decode
from mapdistill_core.models.view_transforms import LiftSplat
from mapdistill_core.polyline import polyline_permutations
from tests.model_fixtures import STUDENT, TEACHER, samples


@pytest.mark.parametrize("static", [False, True], ids=["eager-cpu-path", "static-shape-gpu-path"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
@pytest.mark.parametrize("config", [STUDENT, TEACHER], ids=["student", "teacher"])
def test_reduced_precision_autocast_forwards_are_finite_and_close(monkeypatch, config, dtype, static):
    """The node's ``half`` and training's bf16 autocast: finite outputs near float32's (on the CPU,
    whose autocast lowers the same ops; the static-shape path is the one GPUs run)."""
    monkeypatch.setattr(view_transforms, "static_shapes_wanted", lambda features: static)
    torch.manual_seed(0)
    model = build_model(config).eval()
    batch = collate(samples(), config.image_size, model.grid, 20, False)
    with torch.no_grad():
        reference = model(batch)
        with torch.autocast("cpu", dtype=dtype):
            out = model(batch)
    for key in ("logits", "points"):
        assert torch.isfinite(out[key]).all(), key
    assert (out["logits"].float() - reference["logits"]).abs().max() < 0.1
    assert (out["points"].float() - reference["points"]).abs().max() < 0.02


def test_resnet_and_fpn_shapes():
    for block, expansion in (("basic", 1), ("bottleneck", 4)):
        net = ResNet(BackboneConfig(block=block, depths=(1, 1, 1, 1), width=8))
        outs = net(torch.zeros(2, 3, 64, 176))
        assert [tuple(o.shape[-2:]) for o in outs] == [(8, 22), (4, 11), (2, 6)]
        assert [o.shape[1] for o in outs] == [16 * expansion, 32 * expansion, 64 * expansion]
        assert FPN(net.out_channels, 24, 8)(outs).shape == (2, 24, 8, 22)
        assert FPN(net.out_channels, 24, 16)(outs).shape == (2, 24, 4, 11)


@pytest.mark.parametrize("config", [STUDENT, TEACHER], ids=["student", "teacher"])
def test_model_output_shapes(config):
    torch.manual_seed(0)
    model = build_model(config)
    batch = collate(samples(), config.image_size, model.grid, 20)
    out = model(batch)
    q, layers = config.decoder.num_queries, config.decoder.layers
    assert len(out["aux_outputs"]) == layers - 1  # DETR's form: the final layer at the top level
    for layer in [*out["aux_outputs"], out]:
        assert layer["logits"].shape == (2, q, 3)
        assert layer["points"].shape == (2, q, 20, 2)
        assert layer["hidden"].shape == (2, q, 20, 32)
    assert out["bev"].shape == (2, 32, 40, 20)
    assert [v.shape for v in out["bev_views"]] == [(2, 32, 40, 20)] * 2
    assert out["segmentation"].shape == (2, 3, 40, 20)
    if config.kind == "teacher":
        assert out["bev_views"][1].abs().sum() > 0  # the LiDAR stream sees something


def test_lift_splat_puts_a_feature_at_a_known_depth_into_the_right_cell():
    grid = BEVGrid((60, 30))
    lss = LiftSplat(8, 1, grid, LSSConfig(depth_bins=(2.0, 40.0, 1.0)), stride=8)
    h, w = 8, 22
    k = torch.from_numpy(camera_intrinsics(64, 176, 70.0))[None, None]
    pose = torch.from_numpy(camera_to_ego((1.5, 0.2, 1.5), 30.0))[None, None]
    depth = torch.zeros(1, 1, len(lss.depths), h, w)
    context = torch.zeros(1, 1, 1, h, w)
    row, col, bin_ = 6, 15, 10  # a pixel below the horizon, 12 m along the optical axis
    depth[0, 0, bin_, row, col] = 1.0
    context[0, 0, 0, row, col] = 1.0
    bev = lss.splat(depth, context, k, pose)[0, 0]
    pixel = np.array([(col + 0.5) * 8, (row + 0.5) * 8, 1.0])
    ray = np.linalg.inv(k[0, 0].numpy()) @ pixel
    point = pose[0, 0, :3, :3].numpy() @ (ray * lss.depths[bin_].item()) + pose[0, 0, :3, 3].numpy()
    i, j = int((point[0] + 30) // 1.0), int((point[1] + 15) // 1.0)
    assert bev[i, j] == pytest.approx(1.0)
    assert bev.sum() == pytest.approx(1.0)


def test_lift_splat_has_gradients_for_depth_and_context():
    grid = BEVGrid((20, 10))
    lss = LiftSplat(8, 4, grid, LSSConfig(), stride=8)
    features = torch.randn(1, 2, 8, 8, 22, requires_grad=True)
    k = torch.from_numpy(camera_intrinsics(64, 176, 70.0)).expand(1, 2, 3, 3)
    pose = torch.from_numpy(np.stack([camera_to_ego((1.5, 0, 1.5), 0), camera_to_ego((0, 0, 1.5), 180)]))[None]
    bev, _ = lss(features, k, pose, torch.ones(1, 2, dtype=torch.bool))
    bev.sum().backward()
    assert features.grad.abs().sum() > 0


def test_matcher_gives_zero_cost_to_reversed_and_shifted_ground_truth():
    open_line = np.stack([np.linspace(0.1, 0.9, 20), np.full(20, 0.3)], 1)
    t = np.linspace(0, 2 * np.pi, 20)
    ring = np.stack([0.5 + 0.1 * np.cos(t), 0.6 + 0.1 * np.sin(t)], 1)
    ring[-1] = ring[0]
    perms = torch.zeros(2, 38, 20, 2)
    mask = torch.zeros(2, 38, dtype=torch.bool)
    for g, line in enumerate((open_line, ring)):
        p = polyline_permutations(line)
        perms[g, : len(p)] = torch.from_numpy(p).float()
        mask[g, : len(p)] = True
    shifted = np.roll(ring[:-1][::-1], 7, axis=0)
    predictions = torch.from_numpy(np.stack([open_line[::-1], np.concatenate([shifted, shifted[:1]])])).float()
    dist = permutation_l1(predictions, perms, mask)  # [Q, G, P]
    assert dist[0, 0].min() == 0 and dist[1, 1].min() < 1e-6
    targets = [{"labels": torch.tensor([0, 1]), "permutations": perms, "permutation_mask": mask}]
    logits = torch.tensor([[[4.0, -4, -4], [-4, 4.0, -4]]])
    ((rows, cols, best),) = HungarianMatcher(2.0, 5.0)(logits, predictions[None], targets)
    assert rows.tolist() == [0, 1] and cols.tolist() == [0, 1]
    assert dist[rows, cols, best].max() < 1e-6
    targets[0]["points"] = perms[:, 0]
    outputs = {"logits": logits, "points": predictions[None], "aux_outputs": [], "segmentation": None}
    config = LossConfig(segmentation=0.0)
    _, parts = MapCriterion(config, build_matcher(config))(outputs, {"targets": targets})
    assert parts["pts"] < 1e-6 and parts["dir"] < 1e-5


def test_matcher_oracles_every_closed_ordering_and_never_padding():
    t = np.linspace(0, 2 * np.pi, 20)
    ring = np.stack([0.5 + 0.1 * np.cos(t), 0.6 + 0.1 * np.sin(t)], 1)
    ring[-1] = ring[0]
    open_line = np.stack([np.linspace(0.3, 0.9, 20), np.full(20, 0.3)], 1)
    perms, mask = torch.zeros(2, 38, 20, 2), torch.zeros(2, 38, dtype=torch.bool)
    for g, line in enumerate((ring, open_line)):
        p = polyline_permutations(line)
        perms[g, : len(p)], mask[g, : len(p)] = torch.from_numpy(p).float(), True
    assert mask.sum(1).tolist() == [38, 2]  # 19 start points x 2 directions; an open line: 2
    # every start point in both directions of the ring is an ordering with zero cost
    for start in range(19):
        for loop in (ring[:-1], ring[:-1][::-1]):
            shifted = np.roll(loop, -start, axis=0)
            prediction = torch.from_numpy(np.concatenate([shifted, shifted[:1]]))[None].float()
            assert permutation_l1(prediction, perms[:1], mask[:1]).min() < 1e-6, start
    # a prediction at the map corner (all zeros) must not match the open line's zero padding rows
    corner = torch.zeros(1, 20, 2)
    dist = permutation_l1(corner, perms[1:], mask[1:])[0, 0]
    assert torch.isinf(dist[2:]).all() and dist.min() == pytest.approx(float(np.abs(open_line).mean()), abs=1e-6)


def test_the_criterion_logs_each_decoder_layer_and_sums_them_with_the_config_weights():
    torch.manual_seed(0)
    model = build_model(STUDENT)
    batch = collate(samples(), STUDENT.image_size, model.grid, 20)
    c = STUDENT.loss
    total, parts = MapCriterion(c, build_matcher(c))(model(batch), batch)
    layers = STUDENT.decoder.layers
    for name in ("cls", "pts", "dir"):
        per_layer = [parts[f"{name}_{layer}"] for layer in range(layers)]
        assert f"{name}_{layers}" not in parts and torch.allclose(parts[name], sum(per_layer))
    expected = c.classification * parts["cls"] + c.points * parts["pts"] + c.direction * parts["dir"]
    assert torch.allclose(total, expected + c.segmentation * parts["seg"]) and parts["total"] == total


def test_a_tiny_model_overfits_a_few_samples():
    """Proves the whole chain learns: a small student reaches a high mAP on the samples it fits."""
    torch.manual_seed(0)
    model = build_model(STUDENT)
    data = samples()
    batch = collate(data, STUDENT.image_size, model.grid, 20)
    criterion = MapCriterion(STUDENT.loss, build_matcher(STUDENT.loss))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(160):
        loss, _ = criterion(model(batch), batch)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 35.0)
        optimizer.step()
    model.eval()
    with torch.no_grad():
        out = model(batch)
    predictions = decode(out["logits"], out["points"], model.grid)
    result = evaluate_vectors(
        {s.token: p for s, p in zip(data, predictions, strict=True)}, {s.token: list(s.ground_truth) for s in data}
    )
    assert result.mean_ap > 0.6, result.to_dict()
