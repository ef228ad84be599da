"""Timing: median wall time after warm-up (CUDA events for a model's forward on a GPU)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def median_ms(fn: Callable[[], object], warmup: int, iters: int, cuda_events: bool = False) -> float:
    """Median time of ``fn()`` in milliseconds over ``iters`` calls after ``warmup`` untimed ones.

    Wall time by default (``fn`` must finish its work before returning, e.g. by copying results to
    the host); with ``cuda_events`` the GPU time between events recorded around each call.
    """
    times = []
    for i in range(warmup + iters):
        if cuda_events:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            elapsed = start.elapsed_time(end)
        else:
            tick = time.perf_counter()
            fn()
            elapsed = 1000 * (time.perf_counter() - tick)
        if i >= warmup:
            times.append(elapsed)
    return statistics.median(times)


def forward_latency_ms(model: torch.nn.Module, batch: dict, device: torch.device, warmup: int, iters: int) -> float:
    """Median forward time of ``model`` on ``batch`` in milliseconds, in inference mode."""
    with torch.inference_mode():
        return median_ms(lambda: model(batch), warmup, iters, cuda_events=device.type == "cuda")
