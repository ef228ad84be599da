"""Timing a model's forward pass: median wall time (CUDA events on a GPU) after warm-up."""

from __future__ import annotations

import statistics
import time

import torch


def forward_latency_ms(model: torch.nn.Module, batch: dict, device: torch.device, warmup: int, iters: int) -> float:
    """Median forward time in milliseconds over ``iters`` runs after ``warmup`` untimed ones."""
    times = []
    with torch.inference_mode():
        for i in range(warmup + iters):
            if device.type == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                model(batch)
                end.record()
                torch.cuda.synchronize()
                elapsed = start.elapsed_time(end)
            else:
                tick = time.perf_counter()
                model(batch)
                elapsed = 1000 * (time.perf_counter() - tick)
            if i >= warmup:
                times.append(elapsed)
    return statistics.median(times)
