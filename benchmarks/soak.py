"""Soak test: a long synthetic drive through the node's code path offline, watching memory and speed.

Writes a synthetic test-split bag of --frames camera sets (JPEG; reused when --bag exists), replays
it through BagReplay (the online node's synchronization, decoding, inference and message building)
with the shipped student, writing the predictions bag as `mapdistill replay` does, and samples
the process's resident memory (after glibc's malloc_trim, so freed heap does not count) and the
frames done every --interval seconds from a second thread.
Reports the RSS after warm-up (the first --warmup frames) and at the end (target: growth < 5%),
the throughput per tenth of the run, and the size of every queue and cache on the node path at the
end (each must be bounded by a setting, not by the length of the drive).

The replay keeps every frame's predictions and ground truth for predictions.json and the metric:
that is output, not a leak, so the report also gives the RSS once they are released.

    python benchmarks/soak.py [--frames 2000] [--bag build/soak/bag] [--device auto]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import shutil
import threading
import time
from pathlib import Path

from mapdistill_core.config import load_config
from mapdistill_core.data.synthetic.config import SyntheticConfig
from mapdistill_core.inference import MapPredictor
from mapdistill_ros.bags.bag_reader import open_bag
from mapdistill_ros.bags.bag_writer import MapBagWriter
from mapdistill_ros.bags.replay import BagReplay
from mapdistill_ros.bags.synthetic2bag import write_synthetic_bag
from mapdistill_ros.topics import image_topic

PAGE = os.sysconf("SC_PAGE_SIZE")
LIBC = ctypes.CDLL("libc.so.6")


def rss_mib() -> float:
    """This process's resident set size (from /proc/self/statm), MiB."""
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


class Sampler(threading.Thread):
    """Every ``interval`` seconds: (seconds since start, frames processed, RSS MiB)."""

    def __init__(self, replay: BagReplay, interval: float):
        super().__init__(daemon=True)
        self.replay, self.interval = replay, interval
        self.samples: list[tuple[float, int, float]] = []
        self.stop = threading.Event()
        self.start_time = time.perf_counter()

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            self.record()

    def record(self) -> None:
        frames = self.replay.timer.summary()["frames"]
        LIBC.malloc_trim(0)  # hand freed heap back first, so RSS is what is held, not allocator slack
        self.samples.append((time.perf_counter() - self.start_time, frames, rss_mib()))


def ensure_bag(bag: Path, frames: int) -> int:
    """The bag's camera-set count, writing a synthetic one of ``frames`` sets first if it is missing."""
    world = load_config(SyntheticConfig, "config/synthetic_train_world.yaml")
    if not bag.exists():
        per_scene = world.samples_per_scene
        write_synthetic_bag(world, "test", -(-frames // per_scene), bag)
    with open_bag(bag) as reader:
        front = image_topic("CAM_FRONT", compressed=True)
        return sum(c.msgcount for c in reader.connections if c.topic == front)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000, help="camera sets in the synthetic bag")
    parser.add_argument("--bag", default="build/soak/bag", help="bag to replay (written when missing)")
    parser.add_argument("--weights", default="checkpoints/synthetic_student.safetensors")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--warmup", type=int, default=100, help="frames before the reference RSS")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between samples")
    args = parser.parse_args()
    bag = Path(args.bag)
    total = ensure_bag(bag, args.frames)
    out = bag.parent / "predictions"
    shutil.rmtree(out, ignore_errors=True)
    replay = BagReplay(MapPredictor.from_checkpoint(args.weights, args.device), min_cameras=6)
    sampler = Sampler(replay, args.interval)
    print(f"replaying {total} camera sets from {bag} on {replay.session.pipeline.predictor.device}")
    sampler.start()
    with MapBagWriter(out) as writer:
        result = replay.run(bag, writer)
    sampler.stop.set()
    sampler.join()
    sampler.record()

    samples = sampler.samples
    warm = next((s for s in samples if s[1] >= args.warmup), samples[0])
    end = samples[-1]
    growth = 100 * (end[2] - warm[2]) / warm[2]
    print(f"frames processed: {result.timing['frames']} of {total}, dropped: {result.timing['dropped'] or 'none'}")
    print(
        f"RSS after {warm[1]} frames (warm-up): {warm[2]:.0f} MiB; at the end ({end[1]} frames): {end[2]:.0f} MiB; "
        f"growth {growth:+.1f}% (target < 5%)"
    )
    result.predictions.clear()
    result.ground_truth.clear()
    gc.collect()
    LIBC.malloc_trim(0)
    released = rss_mib()
    print(
        f"RSS at the end without the replay's kept outputs (predictions and ground truth of every frame, "
        f"released): {released:.0f} MiB; growth {100 * (released - warm[2]) / warm[2]:+.1f}%"
    )
    running = [s for s in samples if s[1] < end[1]] + [next(s for s in samples if s[1] == end[1])]
    tenths = [running[round(i * (len(running) - 1) / 10)] for i in range(11)]
    rates = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(tenths, tenths[1:], strict=False) if b[0] > a[0]]
    print("throughput per tenth of the run (camera sets/s): " + "  ".join(f"{r:.2f}" for r in rates))
    print("RSS at each tenth (MiB): " + ", ".join(f"{s[2]:.0f}" for s in tenths))
    print("queues and caches on the node path at the end (bound):")
    stages = result.timing["stages"]
    print(f"  stage timer: {max(s['count'] for s in stages.values())} times per stage (window {replay.timer.window})")
    assembler = replay.session.assembler
    print(f"  frame assembler: {len(assembler.pending)} pending sets (queue_size {assembler.queue_size})")
    print(f"  transform cache: {len(replay.session.transforms)} camera transforms (one per rig frame)")


if __name__ == "__main__":
    main()
