"""The installed ``mapdistill`` command: mapdistill_core's subcommands plus the ones that write or read
ROS types (rosbag2), which live here so that mapdistill_core stays free of ROS."""

from __future__ import annotations

import argparse
import sys

from mapdistill_core.cli import build_parser, run
from mapdistill_core.config import load_config
from mapdistill_core.data.synthetic.config import SyntheticConfig


def cmd_synthetic2bag(args: argparse.Namespace) -> int:
    from mapdistill_ros.synthetic2bag import write_synthetic_bag

    world = load_config(SyntheticConfig, args.config)
    counts = write_synthetic_bag(world, args.split, args.scenes, args.out, args.storage, args.samples)
    print(f"wrote {args.out}: {sum(counts.values())} messages on {len(counts)} topics")
    return 0


def cmd_nuscenes2bag(args: argparse.Namespace) -> int:
    from mapdistill_ros.nuscenes2bag import write_nuscenes_bag

    counts = write_nuscenes_bag(args.dataroot, args.version, args.scene, args.out, args.storage, args.sweeps)
    print(f"wrote {args.out}: {sum(counts.values())} messages on {len(counts)} topics")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register synthetic2bag and nuscenes2bag on the subparsers of mapdistill_core.cli."""
    p = sub.add_parser(
        "synthetic2bag",
        help="render synthetic drives into a rosbag2 (cameras, CameraInfo, LiDAR, TF, ground truth)",
        description="Render scenes of the synthetic world into a rosbag2 (metadata version 8) with the topics a "
        "nuScenes bag has: /<CAM>/image_rect_compressed (JPEG), /<CAM>/camera_info, /LIDAR_TOP, /tf, /tf_static, "
        "/map_gt/elements and /map_gt/markers. The custom message definitions are embedded in the bag.",
    )
    p.add_argument("--config", default="config/synthetic.yaml", help="synthetic world config (default: %(default)s)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="split (default: %(default)s)")
    p.add_argument("--scenes", type=int, default=1, help="scenes to render (default: %(default)s)")
    p.add_argument("--samples", type=int, default=0, help="samples per scene (default: the world's)")
    p.add_argument("--out", required=True, help="bag folder to create (must not exist)")
    p.add_argument("--storage", default="mcap", choices=("mcap", "sqlite3"), help="storage (default: %(default)s)")
    p.set_defaults(func=cmd_synthetic2bag)

    p = sub.add_parser(
        "nuscenes2bag",
        help="convert nuScenes scenes into a rosbag2 (cameras, CameraInfo, LiDAR, TF, ground truth)",
        description="Convert nuScenes scenes (read with nuscenes-devkit; the map expansion v1.3 must be under "
        "DATAROOT/maps/expansion) into one rosbag2, metadata version 8: /<CAM>/image_rect_compressed (the original "
        "JPEG bytes), /<CAM>/camera_info, /LIDAR_TOP (x, y, z, intensity), /tf map->base_link per ego pose, "
        "/tf_static base_link->sensors, and MapTR's ground truth on /map_gt/elements and /map_gt/markers. "
        "Stamps are the sensor times.",
    )
    p.add_argument("--dataroot", required=True, help="nuScenes folder (holding v1.0-*/, samples/, sweeps/, maps/)")
    p.add_argument(
        "--version", default="v1.0-mini", help="v1.0-mini, v1.0-trainval or v1.0-test (default: %(default)s)"
    )
    p.add_argument("--scene", action="append", required=True, help="scene name, e.g. scene-0061; repeat for more")
    p.add_argument("--out", required=True, help="bag folder to create (must not exist)")
    p.add_argument("--storage", default="mcap", choices=("mcap", "sqlite3"), help="storage (default: %(default)s)")
    p.add_argument("--sweeps", action="store_true", help="also write every camera and LiDAR sweep between key frames")
    p.set_defaults(func=cmd_nuscenes2bag)


def main(argv: list[str] | None = None) -> int:
    return run(build_parser(add_commands).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
