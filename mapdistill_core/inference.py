"""The one inference entry point: weights + config in, map elements in base_link out.

Every consumer of weights (evaluate, the ROS node, bag replay, benchmarks) goes through ``MapPredictor``,
which runs one of two backends on a collated batch: ``TorchBackend`` (the MapModel in PyTorch,
optionally float16 autocast on CUDA) or ``OnnxRuntimeBackend`` (a file written by
``mapdistill export``, see mapdistill_core.export). Both return the last decoder layer's class
logits [B, Q, K] and normalized points [B, Q, Np, 2], decoded to elements by the model's own
``models.postprocess.decode``, which evaluation during training uses on the model's outputs too.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from mapdistill_core.bev_grid import BEVGrid
from mapdistill_core.checkpoint import ONNX_FORMAT, load_model, metadata_model_config
from mapdistill_core.config import load_section
from mapdistill_core.data.batch import blank_cameras, collate
from mapdistill_core.data.sample import CAMERA_NAMES, Sample
from mapdistill_core.errors import CheckpointError
from mapdistill_core.map_elements import MapElement
from mapdistill_core.models.config import ModelConfig
from mapdistill_core.models.model import MapModel
from mapdistill_core.models.postprocess import decode
from mapdistill_core.options import BACKENDS, TORCH_ONLY, torch_only_message

ONNX_INPUTS = ("images", "intrinsics", "cam_to_ego", "camera_mask")
ONNX_OUTPUTS = ("logits", "points")


def resolve_device(device: str) -> torch.device:
    """The torch device for a name: "auto" is cuda when available, else cpu."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def model_inputs(samples: list, config: ModelConfig, grid, camera_mask=None) -> dict:
    """The batch a model with ``config`` takes for ``samples`` (no training targets): collate at the
    model's image size and points per element; ``camera_mask`` bool [B, 6] (default: all present)."""
    return collate(samples, config.image_size, grid, config.decoder.num_points, False, camera_mask)


class CudaGraphs:
    """A model's forward captured as a CUDA graph once per input shape, then replayed.

    The model must run its static-shape path (no host synchronization, fixed tensor shapes), which it
    does on CUDA (see ``models.view_transforms.static_shapes_wanted``). Inputs are copied into the
    graph's own buffers; the returned outputs are those buffers, overwritten by the next replay.
    """

    def __init__(self, forward, amp_dtype: torch.dtype | None):
        self.forward, self.amp_dtype = forward, amp_dtype
        self.graphs: dict[tuple, tuple] = {}

    def run(self, inputs: dict) -> tuple:
        with torch.autocast("cuda", dtype=self.amp_dtype, enabled=self.amp_dtype is not None, cache_enabled=False):
            return self.forward(inputs)

    def capture(self, inputs: dict) -> tuple:
        static = {k: v.clone() for k, v in inputs.items()}
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):  # warm-up outside the graph (cuDNN autotuning, lazy allocations)
                self.run(static)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outputs = self.run(static)
        return graph, static, outputs

    def __call__(self, host_inputs: dict) -> tuple:
        key = tuple((k, tuple(v.shape), v.dtype) for k, v in host_inputs.items())
        if key not in self.graphs:
            device = torch.device("cuda", torch.cuda.current_device())
            self.graphs[key] = self.capture({k: v.to(device) for k, v in host_inputs.items()})
        graph, static, outputs = self.graphs[key]
        for k, v in host_inputs.items():
            static[k].copy_(v, non_blocking=True)
        graph.replay()
        return outputs


class TorchBackend:
    """A MapModel on a torch device: batch -> (logits [B, Q, K], points [B, Q, Np, 2]).

    Args:
        half: float16 autocast (CUDA only; ignored on CPU, which has no fast float16 kernels).
        amp_dtype: the autocast dtype instead (torch.float16 or torch.bfloat16; CUDA only).
        cuda_graphs: capture the forward as a CUDA graph per input shape and replay it (CUDA only;
            on a CPU the backend runs eagerly and logs that once).

    On CUDA the input tensors are pinned and copied asynchronously, and only the last layer's
    logits and points come back to the host, in one copy each.
    """

    def __init__(
        self,
        model: MapModel,
        device: str | torch.device = "cpu",
        half: bool = False,
        cuda_graphs: bool = False,
        amp_dtype: torch.dtype | None = None,
    ):
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.model = model.to(self.device).eval()
        self.config: ModelConfig = model.config
        cuda = self.device.type == "cuda"
        self.amp_dtype = (amp_dtype or (torch.float16 if half else None)) if cuda else None
        self.half = self.amp_dtype == torch.float16
        self.graphs = None
        if cuda_graphs and not cuda:
            logging.getLogger(__name__).info("cuda_graphs: %s is not a CUDA device, running the model eagerly", device)
        elif cuda_graphs:
            self.graphs = CudaGraphs(self.last_layer, self.amp_dtype)

    def last_layer(self, inputs: dict) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = self.model(inputs)
        return outputs["logits"].float(), outputs["points"].float()

    @torch.inference_mode()
    def __call__(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        cuda = self.device.type == "cuda"
        keys = ONNX_INPUTS + (("lidar",) if self.config.kind == "teacher" else ())
        host = {k: batch[k].pin_memory() if cuda else batch[k] for k in keys}
        if self.graphs is not None:
            logits, points = self.graphs(host)
        else:
            inputs = {k: v.to(self.device, non_blocking=True) for k, v in host.items()}
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
                logits, points = self.last_layer(inputs)
        if not cuda:
            return logits, points
        # one device-to-host copy for both outputs
        host = torch.cat([logits.flatten(1), points.flatten(1)], 1).cpu()
        return host[:, : logits[0].numel()].view(logits.shape), host[:, logits[0].numel() :].view(points.shape)


class OnnxRuntimeBackend:
    """A model exported by ``mapdistill export``, run by onnxruntime: batch -> (logits, points).

    The model config comes from the file's metadata. Device "auto" takes the CUDA execution
    provider when onnxruntime has one, else the CPU one; the precision is the file's (``--fp16``).
    A missing, unreadable or foreign file is a CheckpointError naming it.
    """

    def __init__(self, path: str | Path, device: str = "auto"):
        import onnxruntime

        path = Path(path)
        if path.suffix.lower() == ".safetensors":
            raise CheckpointError(
                f"{path}: is a safetensors weights file; the onnxruntime backend runs an exported ONNX model: "
                f"mapdistill export --weights {path} --out {path.with_suffix('.onnx').name}, then give that file"
            )
        if not path.is_file():
            raise CheckpointError(f"{path}: no such ONNX file")
        available = onnxruntime.get_available_providers()
        if device == "cpu":
            providers = ["CPUExecutionProvider"]
        elif device.startswith("cuda"):
            if "CUDAExecutionProvider" not in available:
                raise ValueError(f"device {device}: onnxruntime has no CUDAExecutionProvider (has {available})")
            index = int(device.partition(":")[2] or 0)
            providers = [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
        else:
            providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        try:
            self.session = onnxruntime.InferenceSession(str(path), providers=providers)
        except Exception as e:  # onnxruntime raises its own exception types for unreadable models
            raise CheckpointError(f"{path}: onnxruntime cannot load it ({e})") from None
        metadata = self.session.get_modelmeta().custom_metadata_map
        self.config = metadata_model_config(metadata, path, ONNX_FORMAT)
        self.device = torch.device("cuda" if self.session.get_providers()[0] == "CUDAExecutionProvider" else "cpu")
        self.half = metadata.get("fp16") == "true"

    def __call__(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        feed = {k: batch[k].numpy() for k in ONNX_INPUTS}
        logits, points = self.session.run(list(ONNX_OUTPUTS), feed)
        return torch.from_numpy(logits), torch.from_numpy(points)


class MapPredictor:
    """A loaded model that turns Samples into map elements.

    Args:
        backend: a TorchBackend or an OnnxRuntimeBackend.
    """

    def __init__(self, backend: TorchBackend | OnnxRuntimeBackend):
        self.backend = backend
        self.config: ModelConfig = backend.config
        self.grid = BEVGrid(tuple(self.config.bev_size))

    @property
    def device(self) -> torch.device:
        return self.backend.device

    @property
    def half(self) -> bool:
        return self.backend.half

    @property
    def cuda_graphs(self) -> bool:
        return getattr(self.backend, "graphs", None) is not None

    @classmethod
    def from_model(
        cls, model: MapModel, device: str | torch.device = "cpu", half: bool = False, cuda_graphs: bool = False
    ) -> MapPredictor:
        return cls(TorchBackend(model, device, half, cuda_graphs))

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        device: str = "auto",
        half: bool = False,
        model_config: str | Path | None = None,
        backend: str = "torch",
        cuda_graphs: bool = False,
    ) -> MapPredictor:
        """Load a model.

        Args:
            path: safetensors weights (backend torch) or an exported ONNX file (backend onnxruntime).
            model_config: torch only: take the model from the ``model:`` section of this experiment
                config instead of the weights' metadata (misfitting weights are a CheckpointError).
            half: torch only (an ONNX file has its precision from export).
            cuda_graphs: torch only: replay the forward as a CUDA graph (see TorchBackend).
        """
        if backend == "onnxruntime":
            wrong = torch_only_message(
                backend, {k: k for k in TORCH_ONLY}, model_config=model_config, half=half, cuda_graphs=cuda_graphs
            )
            if wrong:
                raise ValueError(wrong)
            return cls(OnnxRuntimeBackend(path, device))
        if backend != "torch":
            raise ValueError(f"unknown inference backend {backend!r}; choose one of {BACKENDS}")
        target = resolve_device(device)
        config = load_section(ModelConfig, model_config, "model") if model_config else None
        model, _ = load_model(path, target, config)
        return cls(TorchBackend(model, target, half, cuda_graphs))

    def warm_up(self, iterations: int = 2) -> None:
        """Run the model on a blank set of cameras (allocations, kernel autotuning and, with
        cuda_graphs, the capture happen here) so that the first real frame is not the slow one."""
        blank = Sample(*blank_cameras(len(CAMERA_NAMES), self.config.image_size))
        batch = model_inputs([blank], self.config, self.grid)
        for _ in range(iterations):
            self.backend(batch)

    def predict(
        self, samples: Sample | list[Sample], score_threshold: float = 0.0, camera_mask: np.ndarray | None = None
    ) -> list[list[MapElement]]:
        """Per sample, elements (class, score, 20 points in base_link) scoring at least the threshold.

        Args:
            samples: one Sample or a list.
            camera_mask: bool [B, N] cameras present (default: all).
        """
        samples = [samples] if isinstance(samples, Sample) else samples
        batch = model_inputs(samples, self.config, self.grid, camera_mask)
        logits, points = self.backend(batch)
        decoded = decode(logits, points, self.grid)
        return [[e for e in elements if e.score >= score_threshold] for elements in decoded]
