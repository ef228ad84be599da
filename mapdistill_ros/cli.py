"""The installed ``mapdistill`` command: mapdistill_core's subcommands plus the ones that write or read
ROS types (rosbag2), which live here so that mapdistill_core stays free of ROS."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from mapdistill_core.cli import build_parser, run
from mapdistill_core.config import load_config
from mapdistill_core.data.synthetic.config import SyntheticConfig
from mapdistill_core.errors import OptionError
from mapdistill_core.options import BACKENDS, BAG_STORAGES, device, fraction, int_range, torch_only_message
from mapdistill_core.output_paths import check_output, remove_bag

PICTURE_FILES = (".png", ".gif")


def cmd_synthetic2bag(args: argparse.Namespace) -> int:
    from mapdistill_ros.bags.synthetic2bag import write_synthetic_bag

    world = load_config(SyntheticConfig, args.config)
    replace_bag(args)
    counts = write_synthetic_bag(
        world, args.split, args.scenes, args.out, args.storage, args.samples, args.image_format
    )
    print(f"wrote {args.out}: {sum(counts.values())} messages on {len(counts)} topics")
    return 0


def add_synthetic2bag(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synthetic2bag",
        help="render synthetic drives into a rosbag2 (cameras, CameraInfo, LiDAR, TF, ground truth)",
        description="Render scenes of the synthetic world into a rosbag2 (metadata version 8) with the topics a "
        "nuScenes bag has: /<CAM>/image_rect/compressed (JPEG), /<CAM>/camera_info, /LIDAR_TOP, /tf, /tf_static, "
        "/map_gt/elements and /map_gt/markers. The custom message definitions are embedded in the bag.",
    )
    p.add_argument("--config", default="config/synthetic.yaml", help="synthetic world config (default: %(default)s)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="split (default: %(default)s)")
    p.add_argument("--scenes", type=int_range(1), default=1, help="scenes to render (default: %(default)s)")
    p.add_argument("--samples", type=int_range(0), default=0, help="samples per scene (default 0: the world's)")
    add_bag_output(p)
    p.add_argument(
        "--image-format", default="jpeg", choices=("jpeg", "png"), help="image encoding (default: %(default)s)"
    )
    p.set_defaults(func=cmd_synthetic2bag, outputs={"out": "bag"})


def cmd_nuscenes2bag(args: argparse.Namespace) -> int:
    from mapdistill_ros.bags.nuscenes2bag import write_nuscenes_bag

    replace_bag(args)
    counts = write_nuscenes_bag(args.dataroot, args.version, args.scene, args.out, args.storage, args.sweeps)
    print(f"wrote {args.out}: {sum(counts.values())} messages on {len(counts)} topics")
    return 0


def add_nuscenes2bag(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "nuscenes2bag",
        help="convert nuScenes scenes into a rosbag2 (cameras, CameraInfo, LiDAR, TF, ground truth)",
        description="Convert nuScenes scenes (read with nuscenes-devkit; the map expansion v1.3 must be under "
        "DATAROOT/maps/expansion) into one rosbag2, metadata version 8: /<CAM>/image_rect/compressed (the original "
        "JPEG bytes), /<CAM>/camera_info, /LIDAR_TOP (x, y, z, intensity), /tf map->base_link per ego pose, "
        "/tf_static base_link->sensors, and MapTR's ground truth on /map_gt/elements and /map_gt/markers. "
        "Stamps are the sensor times.",
    )
    p.add_argument("--dataroot", required=True, help="nuScenes folder (holding v1.0-*/, samples/, sweeps/, maps/)")
    p.add_argument(
        "--version", default="v1.0-mini", help="v1.0-mini, v1.0-trainval or v1.0-test (default: %(default)s)"
    )
    p.add_argument("--scene", action="append", required=True, help="scene name, e.g. scene-0061; repeat for more")
    add_bag_output(p)
    p.add_argument("--sweeps", action="store_true", help="also write every camera and LiDAR sweep between key frames")
    p.set_defaults(func=cmd_nuscenes2bag, outputs={"out": "bag"})


def cmd_replay(args: argparse.Namespace) -> int:
    from mapdistill_ros.bags.replay import replay_bag
    from mapdistill_ros.bags.scoring import metrics_text

    flags = {"model_config": "--config", "half": "--half", "cuda_graphs": "--cuda-graphs"}
    wrong = torch_only_message(
        args.backend, flags, model_config=args.config, half=args.half, cuda_graphs=args.cuda_graphs
    )
    if wrong:
        raise OptionError(wrong)

    out = Path(args.out)
    check_output(out / "predictions", "bag", "--out", args.force)  # an earlier replay's bag
    if args.force:
        replace_replay(out)
    result = replay_bag(
        args.bag,
        args.weights,
        args.out,
        args.config,
        args.device,
        args.score_threshold,
        args.min_cameras,
        not args.no_pictures,
        args.backend,
        args.half,
        args.cuda_graphs,
    )
    timing = result.timing
    print(metrics_text(result.document))
    if result.interrupted:
        done = f"for the {timing['frames']} camera sets done"
        print(
            f"mapdistill replay: interrupted; wrote {args.out}/predictions, predictions.json, ground_truth.json, "
            f"metrics.json {done}"
        )
        return 130
    print(
        f"wrote {args.out}/predictions (bag), predictions.json"
        + (", ground_truth.json" if result.metrics is not None else "")
        + ", metrics.json"
        + ("" if args.no_pictures else ", bev/")
    )
    return 0


def replace_replay(out: Path) -> None:
    """--force: remove what an earlier replay wrote into ``out`` and a new one may not overwrite: its
    predictions bag and its pictures (the JSON files are replaced whole anyway)."""
    if (out / "predictions").exists():
        remove_bag(out / "predictions", "--out")
    pictures = out / "bev"
    if pictures.is_dir():
        if not all(p.is_file() and p.suffix in PICTURE_FILES for p in pictures.iterdir()):
            raise OptionError(f"--out {out}: {pictures} holds files replay did not write; not removing it")
        shutil.rmtree(pictures)


def add_replay(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay",
        help="replay a bag through the online node's code path offline: predictions, metrics, pictures",
        description="Run a rosbag2 (e.g. from synthetic2bag or nuscenes2bag) through exactly the online node's "
        "code path (synchronization, decoding, inference, message building) without ROS. Writes OUT/predictions "
        "(a bag with the node's topics and the ground truth, for ros2 bag play + RViz), OUT/predictions.json (MapTR "
        "submission format), OUT/ground_truth.json (the bag's ground truth in MapTR's format, keyed like the "
        "predictions: eval-vectors on the two gives the same AP), OUT/metrics.json (Chamfer AP against "
        "/map_gt/elements, latency p50/p95 per stage, frames processed and dropped) and OUT/bev/ (a PNG per "
        "frame, a GIF per scene).",
    )
    p.add_argument("bag", help="rosbag2 folder")
    p.add_argument(
        "--weights",
        default="checkpoints/synthetic_student.safetensors",
        help="student weights: .safetensors (a file, or the name of shipped weights), or .onnx with --backend "
        "onnxruntime (default: the shipped student, %(default)s); teacher weights read /LIDAR_TOP too",
    )
    p.add_argument(
        "--backend",
        default="torch",
        choices=BACKENDS,
        help="run the weights with PyTorch or an exported ONNX file with onnxruntime (default: %(default)s)",
    )
    p.add_argument("--config", help="torch backend: model config YAML (default: the config stored in the weights)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--device", type=device, default="auto", help="auto (cuda if present), cpu, cuda ... (default: %(default)s)"
    )
    p.add_argument(
        "--score-threshold",
        type=fraction,
        default=0.0,
        help="keep elements scoring at least this (default: %(default)s: every prediction, as MapTR scores them; "
        "the pictures show those above 0.3)",
    )
    p.add_argument(
        "--min-cameras",
        type=int_range(1, 6),
        default=4,
        help="fewest cameras a set may have, 1..6 (default: %(default)s)",
    )
    p.add_argument("--no-pictures", action="store_true", help="skip the BEV PNGs and GIFs")
    p.add_argument("--half", action="store_true", help="torch backend: float16 autocast (GPU only)")
    p.add_argument(
        "--cuda-graphs",
        action="store_true",
        help="torch backend: replay the model as a CUDA graph per input shape (GPU only; a CPU runs eagerly)",
    )
    p.add_argument(
        "--force", action="store_true", help="replace what an earlier replay wrote into --out (its bag and pictures)"
    )
    p.set_defaults(func=cmd_replay, outputs={"out": "folder"})


def cmd_bag2samples(args: argparse.Namespace) -> int:
    from mapdistill_ros.bags.bag2samples import bags_to_samples

    drives = bags_to_samples(args.bags, args.out, args.image_size and tuple(args.image_size), args.slop, args.force)
    for drive in drives:
        dropped = ", ".join(f"{n} {reason}" for reason, n in sorted(drive.dropped.items())) or "none"
        print(f"{drive.name}: {drive.samples} samples (dropped: {dropped})")
    print(f"wrote {args.out}: {len(drives)} drive(s); train on it with data.unlabeled_dir: {args.out}")
    return 0


def add_bag2samples(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bag2samples",
        help="turn recorded drives (cameras + LiDAR, no map) into unlabelled training samples",
        description="Convert rosbag2 recordings of drives nobody annotated into a drive folder the teacher labels "
        "during distillation (set data.unlabeled_dir to it in a config with a distill section). A bag needs the six "
        "cameras (/<CAM>/image_rect/compressed or /<CAM>/image_rect), /<CAM>/camera_info, /tf_static (base_link -> "
        "each camera's optical frame and -> LIDAR_TOP) and /LIDAR_TOP (PointCloud2: x, y, z, intensity). Each bag "
        "becomes one drive, named after its folder: OUT/<drive>/<i>.npz, listed in OUT/index.json. Captures without "
        "every camera, calibration, transform and scan are dropped and counted.",
    )
    p.add_argument("bags", nargs="+", metavar="BAG", help="rosbag2 folder(s), one drive each")
    p.add_argument("--out", required=True, help="drive folder to write into (created if needed)")
    p.add_argument(
        "--image-size",
        nargs=2,
        type=int_range(16, 4096),
        metavar=("H", "W"),
        help="store the images at H x W, intrinsics scaled to match (default: CAM_FRONT's own size); training "
        "resizes to the model's size anyway, so the model's size saves disk",
    )
    p.add_argument(
        "--slop",
        type=fraction,
        default=0.1,
        help="largest spread of the stamps of one capture, seconds, 0..1 (default: %(default)s)",
    )
    p.add_argument("--force", action="store_true", help="write a drive again when --out holds it already")
    p.set_defaults(func=cmd_bag2samples, outputs={"out": "folder"})


def add_bag_output(p: argparse.ArgumentParser) -> None:
    """--out, --force and --storage of the commands that write a bag."""
    p.add_argument("--out", required=True, help="bag folder to create (must not exist, unless --force)")
    p.add_argument("--force", action="store_true", help="replace the bag at --out if there is one")
    p.add_argument("--storage", default="mcap", choices=BAG_STORAGES, help="storage (default: %(default)s)")


def replace_bag(args: argparse.Namespace) -> None:
    """With --force, remove the bag --out names (only a bag is ever removed), right before writing."""
    if args.force and Path(args.out).exists():
        remove_bag(Path(args.out), "--out")


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register synthetic2bag, nuscenes2bag, replay and bag2samples on the subparsers of mapdistill_core.cli."""
    for add in (add_synthetic2bag, add_nuscenes2bag, add_replay, add_bag2samples):
        add(sub)


def main(argv: list[str] | None = None) -> int:
    return run(build_parser(add_commands).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
