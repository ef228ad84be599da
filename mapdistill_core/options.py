"""Command-line option types: a bad value is refused by argparse, naming the option, before any work.

Each factory returns a ``type=`` callable for ``argparse.add_argument``; the error text completes
argparse's "argument --name: ..." line.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable

BACKENDS = ("torch", "onnxruntime")  # inference backends: PyTorch weights, or an exported ONNX file
BAG_STORAGES = ("mcap", "sqlite3")  # rosbag2 storage plugins the bag writers offer
TORCH_ONLY = ("model_config", "half", "cuda_graphs")  # an exported ONNX file carries its own config and precision


def torch_only_message(backend: str, spelled: dict[str, str], **settings: object) -> str | None:
    """The one place of the rule that ``TORCH_ONLY`` settings apply to the torch backend alone: None
    when ``settings`` keep it, else the message, each setting spelled as the caller's user knows it
    (``spelled``: "half" -> "--half", "parameter 'half'", ...). For the node's parameters, replay's
    options and MapPredictor."""
    wrong = [spelled[name] for name in TORCH_ONLY if settings.get(name)] if backend != "torch" else []
    if not wrong:
        return None
    verb = "apply" if len(wrong) > 1 else "applies"
    return f"{' and '.join(wrong)} {verb} to the torch backend only; an ONNX file has its own config and precision"


DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


class Parser(argparse.ArgumentParser):
    """argparse's parser with a one-line error (no usage block): "prog: error: ... (see prog --help)"."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def int_range(low: int, high: int | None = None) -> Callable[[str], int]:
    """An integer in [low, high] (no upper bound when ``high`` is None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got '{text}'") from None
        if value < low or (high is not None and value > high):
            bounds = f">= {low}" if high is None else f"in {low}..{high}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
        return value

    return parse


def fraction(text: str) -> float:
    """A float in [0, 1] (a score threshold)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got '{text}'") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {value:g}")
    return value


def device(text: str) -> str:
    """auto, cpu, cuda or cuda:N, and a CUDA device only where this torch has one."""
    if DEVICE.fullmatch(text) is None:
        raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N, got '{text}'")
    if text.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"'{text}': this torch ({torch.__version__}) sees no CUDA device")
        index = int(text.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"'{text}': there are {torch.cuda.device_count()} CUDA devices")
    return text
