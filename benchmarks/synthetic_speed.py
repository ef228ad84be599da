"""Speed of the synthetic world on one core: six cameras + LiDAR + ground truth per sample.

Renders the first ``--samples`` samples of each of ``--scenes`` test scenes with the given config
(default: config/synthetic.yaml, 128x352 cameras, 32x720 LiDAR rays) and prints samples per
second, counting scene construction. OpenCV is limited to one thread; numpy's element-wise work
is single-threaded.

    python benchmarks/synthetic_speed.py [--config config/synthetic.yaml] [--scenes 3] [--samples 10]
"""

from __future__ import annotations

import argparse
import time

import cv2

from mapdistill_core.config import load_config
from mapdistill_core.data.synthetic.config import SyntheticConfig
from mapdistill_core.data.synthetic.world import SyntheticScene


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/synthetic.yaml")
    parser.add_argument("--scenes", type=int, default=3)
    parser.add_argument("--samples", type=int, default=10, help="samples per scene")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    config = load_config(SyntheticConfig, args.config)
    start = time.perf_counter()
    conditions = []
    for index in range(args.scenes):
        scene = SyntheticScene(config, "test", index)
        conditions.append(scene.condition)
        for i in range(min(args.samples, len(scene))):
            scene.sample(i)
    seconds = time.perf_counter() - start
    count = args.scenes * min(args.samples, config.samples_per_scene)
    print(
        f"synthetic world: {count} samples ({config.image_height}x{config.image_width} x 6 cameras, "
        f"{config.lidar_beams}x{config.lidar_azimuth_steps} LiDAR rays; scenes: {', '.join(conditions)}) "
        f"in {seconds:.1f} s = {count / seconds:.2f} samples/s on one core (target >= 4)"
    )


if __name__ == "__main__":
    main()
