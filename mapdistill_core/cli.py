"""The ``mapdistill`` command line: one subcommand per task, each with its own --help."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from mapdistill_core.config import config_from_dict, load_config
from mapdistill_core.errors import CheckpointError, MapdistillError, MapFileError, OptionError, RunError
from mapdistill_core.options import Parser, device, fraction, int_range
from mapdistill_core.output_paths import PICTURE_FORMATS, check_output

# Each command imports what it needs (torch, matplotlib, shapely ...) when it runs, so that --help
# and the light commands start fast.

log = logging.getLogger("mapdistill")


def _load_pair(pred_path: str, gt_path: str):
    from mapdistill_core.metrics import load_ground_truth, load_predictions

    predictions = load_predictions(pred_path)
    if predictions.skipped_short:
        log.warning(
            "%s: skipped %d predicted element(s) with fewer than 2 points (as MapTR does)",
            pred_path,
            predictions.skipped_short,
        )
    return predictions, load_ground_truth(gt_path)


def cmd_eval_vectors(args: argparse.Namespace) -> int:
    from mapdistill_core.metrics import evaluate_vectors, format_table
    from mapdistill_core.results import provenance, write_json

    predictions, ground_truth = _load_pair(args.pred, args.gt)
    try:
        result = evaluate_vectors(predictions.samples, ground_truth.samples, min_score=args.score_threshold)
    except MapFileError as e:
        raise MapFileError(f"{args.pred}: {e}") from None
    print(format_table(result))
    if args.out:
        document = result.to_dict()
        document["meta"] = provenance(
            pred=str(args.pred),
            gt=str(args.gt),
            samples=len(ground_truth.samples),
            skipped_short_predictions=predictions.skipped_short,
        )
        write_json(args.out, document)
        print(f"wrote {args.out}")
    return 0


def add_eval_vectors(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval-vectors",
        help="Chamfer AP of predictions against ground truth (MapTR protocol)",
        description="Score vector-map predictions with the MapTR protocol: Chamfer-distance AP at "
        "0.5 / 1.0 / 1.5 m per class (divider, ped_crossing, boundary) and mAP. Reads MapTR's own "
        "JSON files; samples are paired by sample_token. Prints a table; --out also writes JSON. "
        "With --score-threshold, also the precision, recall and F1, per class and Chamfer threshold, of "
        "only the predictions scoring at least that, and the F1 averaged over the classes: what a consumer "
        "keeping them gets (the node at its score_threshold parameter; close to the distiller's pseudo "
        "labels at its pseudo_threshold, which keep each query's best class only). Run it at a few "
        "thresholds on val to choose one.",
    )
    p.add_argument("--pred", required=True, help='predictions JSON: {"results": [{"sample_token", "vectors"}]}')
    p.add_argument("--gt", required=True, help='ground-truth JSON: {"GTs": [{"sample_token", "vectors"}]}')
    p.add_argument("--out", help="write the result JSON here (mAP, AP per class/threshold, counts, provenance)")
    p.add_argument(
        "--score-threshold",
        type=fraction,
        help="also report precision / recall / F1 of the predictions with confidence at least this, in [0, 1]",
    )
    p.set_defaults(func=cmd_eval_vectors, outputs={"out": "file"})


def cmd_plot_vectors(args: argparse.Namespace) -> int:
    from mapdistill_core.plotting import save_bev_png

    predictions, ground_truth = _load_pair(args.pred, args.gt)
    if args.token not in ground_truth.samples:
        examples = ", ".join(list(ground_truth.samples)[:5])
        raise MapFileError(f"{args.gt}: no sample with token '{args.token}' (first tokens: {examples})")
    save_bev_png(
        args.out,
        predictions.samples.get(args.token, []),
        ground_truth.samples[args.token],
        score_threshold=args.score_threshold,
        title=f"{args.token} (score >= {args.score_threshold:g})",
    )
    print(f"wrote {args.out}")
    return 0


def add_plot_vectors(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plot-vectors",
        help="BEV picture of one sample's predictions over its ground truth",
        description="Draw one sample in bird's-eye view (ego at the centre, x forward pointing up): "
        "ground truth as wide pale lines, predictions as thin lines with points, coloured by class "
        "(divider orange, ped_crossing blue, boundary green).",
    )
    p.add_argument("--pred", required=True, help="predictions JSON (MapTR format)")
    p.add_argument("--gt", required=True, help="ground-truth JSON (MapTR format)")
    p.add_argument("--token", required=True, help="sample_token of the sample to draw")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument(
        "--score-threshold",
        type=float,
        default=0.3,
        help="draw predictions with confidence at least this (default: 0.3)",
    )
    p.set_defaults(func=cmd_plot_vectors, outputs={"out": ("file", tuple(PICTURE_FORMATS))})


def cmd_generate(args: argparse.Namespace) -> int:
    from mapdistill_core.data.synthetic.config import SyntheticConfig
    from mapdistill_core.data.synthetic.generate import generate_split

    config = load_config(SyntheticConfig, args.config)
    scenes = args.scenes if args.scenes is not None else config.scenes.get(args.split, 0)
    labels = True if args.with_map else None
    out = generate_split(config, args.split, args.out, scenes, args.workers, labels)
    print(f"wrote {scenes * config.samples_per_scene} samples of {scenes} scenes to {out}")
    return 0


def add_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="render a split of the synthetic world to disk",
        description="Render scenes of the synthetic world (six cameras, LiDAR, vector ground truth) and "
        "write one compressed .npz per sample plus index.json. Deterministic: the same config and split "
        "give the same bytes. Samples already in OUT are kept, so an interrupted run can be re-run. "
        "The 'unlabeled' split's drives are written without their map (the teacher labels them).",
    )
    p.add_argument(
        "--config",
        default="config/synthetic.yaml",
        help="world config, a file or a shipped name (default: %(default)s)",
    )
    p.add_argument(
        "--split", required=True, choices=["train", "val", "test", "unlabeled"], help="which split's seeds to use"
    )
    p.add_argument(
        "--with-map",
        action="store_true",
        help="write the 'unlabeled' split with its map too (the upper bound of an unlabelled-data study)",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--scenes", type=int_range(1), help="number of scenes, >= 1 (default: the config's count for the split)"
    )
    p.add_argument(
        "--workers", type=int_range(1), default=1, help="processes rendering scenes in parallel (default: 1)"
    )
    p.set_defaults(func=cmd_generate, outputs={"out": "folder"})


def cmd_show_sample(args: argparse.Namespace) -> int:
    from mapdistill_core.data.sample import load_sample
    from mapdistill_core.data.synthetic.config import SyntheticConfig
    from mapdistill_core.plotting import save_sample_png

    if args.file:
        sample = load_sample(args.file)
    else:
        from mapdistill_core.data.synthetic.world import SyntheticScene

        config = load_config(SyntheticConfig, args.config)
        if args.sample >= config.samples_per_scene:
            raise OptionError(
                f"--sample {args.sample}: a scene of {args.config} has samples 0..{config.samples_per_scene - 1}"
            )
        sample = SyntheticScene(config, args.split, args.scene).sample(args.sample)
    save_sample_png(args.out, sample, title=f"{sample.token}  ({len(sample.ground_truth)} ground-truth elements)")
    print(f"wrote {args.out}")
    return 0


def add_show_sample(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "show-sample",
        help="picture of one sample: six cameras, LiDAR BEV and ground truth",
        description="Write one PNG of a sample: the six cameras in rig layout and a bird's-eye view of the "
        "LiDAR coloured by intensity under the ground-truth vectors. The sample is rendered from the "
        "synthetic world (--config/--split/--scene/--sample) or read from a file (--file).",
    )
    p.add_argument(
        "--config",
        default="config/synthetic.yaml",
        help="world config, a file or a shipped name (default: %(default)s)",
    )
    p.add_argument("--split", default="val", choices=["train", "val", "test"], help="split (default: val)")
    p.add_argument("--scene", type=int_range(0), default=0, help="scene index in the split, >= 0 (default: 0)")
    p.add_argument(
        "--sample", type=int_range(0), default=0, help="sample index in the scene, below the world's samples_per_scene"
    )
    p.add_argument("--file", help="read this .npz sample instead of rendering one")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.set_defaults(func=cmd_show_sample, outputs={"out": ("file", tuple(PICTURE_FORMATS))})


def cpu_threads(requested: int) -> tuple[int, str]:
    """Set PyTorch's CPU thread count: ``requested``, else OMP_NUM_THREADS, else the cores this process
    may use minus the load average (at least 1); returns it and where it came from."""
    import os

    import torch

    if requested:
        threads, why = requested, "--threads"
    elif os.environ.get("OMP_NUM_THREADS", "").isdigit():
        threads, why = int(os.environ["OMP_NUM_THREADS"]), "OMP_NUM_THREADS"
    else:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        threads, why = cores - round(os.getloadavg()[0]), f"{cores} cores, load average {os.getloadavg()[0]:.1f}"
    threads = max(1, threads)
    torch.set_num_threads(threads)
    return threads, why


def cmd_train(args: argparse.Namespace) -> int:
    from mapdistill_core.training.config import ExperimentConfig
    from mapdistill_core.training.trainer import Trainer

    config = load_config(ExperimentConfig, args.config)
    out = Path(args.out) if args.out else check_output(Path("runs") / Path(args.config).stem, "folder")
    threads, why = cpu_threads(args.threads)
    print(f"training with {threads} CPU thread(s) ({why}; --threads N sets it)", flush=True)
    trainer = Trainer(config, out, args.device, max_steps=args.max_steps)
    trainer.run(resume=args.resume)
    if trainer.main:
        print(f"wrote {out}")
    return 0


def add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a teacher or a student",
        description="Train the model of an experiment config (sections model, data, train). Missing synthetic "
        "data is generated first. Writes config.yaml, log.jsonl, state.safetensors (resumable), best.safetensors "
        "and last.safetensors into --out. Runs on several GPUs or processes under torchrun "
        "(e.g. torchrun --nproc_per_node 2 -m mapdistill_core.cli train ...).",
    )
    p.add_argument("--config", required=True, help="experiment config, e.g. config/synthetic_student.yaml")
    p.add_argument("--out", help="output folder (default: runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue from --out's state.safetensors")
    p.add_argument("--device", type=device, default="auto", help="auto (cuda if present), cpu, cuda, cuda:1 ...")
    p.add_argument(
        "--max-steps", type=int_range(0), default=0, help="stop after this many steps in total (0: all epochs)"
    )
    p.add_argument(
        "--threads",
        type=int_range(0),
        default=0,
        help="CPU threads for PyTorch (default 0: OMP_NUM_THREADS if set, else the cores not busy when training "
        "starts, from the load average); threads beyond the idle cores slow every process down",
    )
    p.set_defaults(func=cmd_train, outputs={"out": "folder"})


def cmd_experiment(args: argparse.Namespace) -> int:
    from mapdistill_core.experiment.plan import ExperimentPlan
    from mapdistill_core.experiment.report import table_groups
    from mapdistill_core.experiment.runner import Experiment

    if args.parallel is not None and args.parallel < 1:
        raise OptionError(f"--parallel must be >= 1, got {args.parallel}")
    plan = load_config(ExperimentPlan, args.config)
    for key, kind in (("out", "folder"), ("records", "folder"), ("results", "file"), ("table", "file")):
        check_output(getattr(plan, key), kind, f"{args.config}: {key}")
    check_output(plan.checkpoints, "folder", f"{args.config}: checkpoints")
    experiment = Experiment(plan, args.config)
    if not args.report_only:
        experiment.run(args.parallel)
    document = experiment.report()
    summary = document["summary"]
    for group in table_groups(summary):
        row = summary[group]
        spread = f" ± {100 * row['mAP_std']:.1f}" if row["mAP_std"] is not None else ""
        seeds = len(row["per_seed"])
        print(f"{group:<12} test mAP {100 * row['mAP_mean']:.1f}{spread} ({seeds} seed{'s' * (seeds > 1)})")
    for key in (k for k in summary if k.endswith("_vs_student")):
        c = summary[key]
        gap = f", gap recovered {100 * c['gap_recovered']:.0f} %" if c.get("gap_recovered") is not None else ""
        share = c.get("label_share")
        if share and share["recovered"] is not None:
            on = ", ".join(str(s) for s in share["seeds"])
            plural = "s" * (len(share["seeds"]) > 1)
            gap += f", {100 * share['recovered']:.0f} % of {share['upper']}'s gain (seed{plural} {on})"
        print(
            f"{key.removesuffix('_vs_student')} - {c['student']}: {100 * c['mean_difference']:+.1f} mAP{gap}, "
            f"beyond seed noise: {c['beyond_seed_noise']}"
        )
    if document["pending"]:
        print(f"not finished: {', '.join(document['pending'])}")
    print(f"wrote {plan.results} and {plan.table}")
    return 0


def add_experiment(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "experiment",
        help="the knowledge-distillation benchmark: teacher, students, distilled students, grid, ablations",
        description="Run a plan (config/experiment_synthetic.yaml): the teacher (or the plan's existing teacher "
        "weights), the student and the distilled student for every seed, the val-only grid of distillation "
        "settings, and each distillation loss alone. Each run keeps its best checkpoint on val and is evaluated "
        "once on test; its record goes to the plan's records folder (commit it: a plan started again skips "
        "recorded runs, also on a fresh clone). An interrupted run resumes from its training state. Then the "
        "report: results JSON, markdown with the val curves PNG, and README's table.",
    )
    p.add_argument(
        "--config", default="config/experiment_synthetic.yaml", help="experiment plan (default: %(default)s)"
    )
    p.add_argument(
        "--parallel",
        type=int,
        help="training processes side by side (default: the plan's 'parallel'); on a CPU each gets cores / N threads",
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: write the report from the records of the runs that have finished",
    )
    p.set_defaults(func=cmd_experiment)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from mapdistill_core.checkpoint import load_model
    from mapdistill_core.data.synthetic.config import SyntheticConfig
    from mapdistill_core.inference import resolve_device
    from mapdistill_core.metrics import evaluate_vectors, format_table
    from mapdistill_core.metrics.maptr_json import write_maptr_files
    from mapdistill_core.plotting import save_bev_png
    from mapdistill_core.results import provenance, write_json
    from mapdistill_core.training.config import DataConfig, ExperimentConfig
    from mapdistill_core.training.datasets import build_dataset
    from mapdistill_core.training.evaluation import predict_dataset

    device = resolve_device(args.device)
    model, extra = load_model(args.weights, device)
    run_config = Path(args.weights).parent / "config.yaml"
    world = None
    if args.config:
        data = load_config(ExperimentConfig, args.config).data
    elif run_config.exists() or "world" in extra:
        data = load_config(ExperimentConfig, run_config).data if run_config.exists() else DataConfig()
        if "world" in extra:
            world = config_from_dict(SyntheticConfig, extra["world"], f"{args.weights}: metadata extra.world")
    else:
        raise CheckpointError(
            f"{args.weights}: records no world config (written before checkpoints did); pass --config with "
            "the experiment config it was trained with, e.g. config/synthetic_student.yaml"
        )
    dataset = build_dataset(data, args.split, world, max_samples=args.limit)
    predictions, ground_truth = predict_dataset(model, dataset, device, limit=args.limit)
    result = evaluate_vectors(predictions, ground_truth)
    print(format_table(result))
    out = Path(args.out)
    document = result.to_dict()
    document["meta"] = provenance(weights=str(args.weights), split=args.split, samples=len(ground_truth))
    write_json(out / "metrics.json", document)
    write_maptr_files(out, predictions, ground_truth, document["meta"])
    tokens = list(ground_truth)
    for token in tokens[:: max(1, len(tokens) // max(1, args.pictures))][: args.pictures]:
        save_bev_png(out / f"{token}.png", predictions[token], ground_truth[token], args.score_threshold, token)
    print(
        f"wrote {out / 'metrics.json'}, predictions.json and ground_truth.json (MapTR formats) and "
        f"{min(args.pictures, len(tokens))} BEV pictures"
    )
    return 0


def add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="Chamfer AP of trained weights on a split, with BEV pictures",
        description="Run weights over the val or test split and score them (MapTR protocol). Writes "
        "OUT/metrics.json, OUT/predictions.json and OUT/ground_truth.json (MapTR's formats, for eval-vectors) "
        "and a few BEV pictures of predictions over ground truth.",
    )
    p.add_argument("--weights", required=True, help="a .safetensors checkpoint written by train")
    p.add_argument("--split", default="val", choices=["val", "test"], help="split (default: val)")
    p.add_argument(
        "--config",
        help="experiment config whose data section to use (default: the world recorded in the weights, else "
        "the config.yaml train wrote next to them)",
    )
    p.add_argument("--out", default="runs/evaluate", help="output folder (default: %(default)s)")
    p.add_argument("--device", type=device, default="auto", help="auto (cuda if present), cpu, cuda ...")
    p.add_argument(
        "--limit",
        type=int_range(0),
        default=0,
        help="evaluate the first N samples only, generating only the scenes that hold them (0: all)",
    )
    p.add_argument("--pictures", type=int_range(0), default=4, help="BEV pictures to write (default: 4)")
    p.add_argument("--score-threshold", type=fraction, default=0.3, help="pictures: draw scores >= this, in [0, 1]")
    p.set_defaults(func=cmd_evaluate, outputs={"out": "folder"})


def cmd_export(args: argparse.Namespace) -> int:
    import onnx

    from mapdistill_core.checkpoint import load_model
    from mapdistill_core.export import check_export, example_batch, export_onnx

    if args.opset > onnx.defs.onnx_opset_version():
        raise OptionError(
            f"--opset {args.opset}: onnx {onnx.__version__} knows opsets up to {onnx.defs.onnx_opset_version()}"
        )
    print(f"exporting {args.weights} (about half a minute on a CPU) ...", flush=True)
    out = export_onnx(args.weights, args.out, args.opset, args.fp16)
    written = next(
        o.version for o in onnx.load(str(out), load_external_data=False).opset_import if o.domain in ("", "ai.onnx")
    )
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, opset {written}, {'float16' if args.fp16 else 'float32'})")
    model, _ = load_model(args.weights)
    check = check_export(model, out, example_batch(model, batch_size=2))
    if check.ran:
        print(
            f"onnxruntime (CPU) vs PyTorch on a random batch of 2: max |logit difference| {check.max_logit_error:.2e}, "
            f"max point difference {check.max_point_error_m:.2e} m"
        )
    else:
        print(f"not checked against PyTorch: {check.reason}")
    return 0


def add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a student to ONNX for onnxruntime / TensorRT",
        description="Export camera-only student weights to an ONNX file (dynamic batch size) with the model "
        "config in its metadata, check it with onnx.checker and compare onnxruntime's output with PyTorch's "
        "on a random batch. Inputs: images [B, 6, 3, H, W] normalized, intrinsics [B, 6, 3, 3], cam_to_ego "
        "[B, 6, 4, 4], camera_mask [B, 6]; outputs: logits [B, Q, 3], points [B, Q, 20, 2] normalized. "
        "The node and `mapdistill replay` run it with backend onnxruntime.",
    )
    p.add_argument(
        "--weights", required=True, help="student .safetensors (e.g. checkpoints/synthetic_student.safetensors)"
    )
    p.add_argument("--out", required=True, help="ONNX file to write, e.g. student.onnx")
    p.add_argument(
        "--opset", type=int_range(16), default=18, help="ONNX opset, >= 16 for GridSample (default: %(default)s)"
    )
    p.add_argument(
        "--fp16",
        action="store_true",
        help="float16 weights and activations (for GPUs; camera geometry, inputs and outputs stay float32)",
    )
    p.set_defaults(func=cmd_export, outputs={"out": ("file", (".onnx",))})


def build_parser(extra: Callable[[argparse._SubParsersAction], None] | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand here; ``extra(subparsers)`` may add more (the ROS-type commands of
    mapdistill_ros.cli, which this ROS-free module cannot import)."""
    parser = Parser(
        prog="mapdistill",
        description="MapDistill: camera+LiDAR teacher to camera-only student distillation for "
        "vectorized HD maps. Each subcommand has its own --help.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        add_eval_vectors,
        add_plot_vectors,
        add_generate,
        add_show_sample,
        add_train,
        add_experiment,
        add_evaluate,
        add_export,
    ):
        add(sub)
    if extra is not None:
        extra(sub)
    for command in sub.choices.values():  # -v also after the subcommand
        command.add_argument(
            "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log debug messages"
        )
    return parser


def check_outputs(args: argparse.Namespace) -> None:
    """Before any work: every output a subcommand declared (``outputs``: attribute -> kind, or (kind,
    suffix)) can be written there (``output_paths.check_output``)."""
    for attr, spec in getattr(args, "outputs", {}).items():
        value = getattr(args, attr, None)
        if value is not None:
            kind, suffixes = (spec, None) if isinstance(spec, str) else spec
            check_output(value, kind, "--" + attr.replace("_", "-"), getattr(args, "force", False), suffixes)


def run(args: argparse.Namespace) -> int:
    """Run a parsed subcommand once its outputs are known to be writable; an input error is one line
    naming the file and field, exit code 2, and so is an OS error on a file (named as the user gave
    it); an experiment run that cannot go on (RunError) is one line, exit code 1; Ctrl-C exits with
    130 after the open writers have closed (bags stay readable, training state and results are only
    ever replaced whole)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    for package in ("mapdistill_core", "mapdistill_ros"):  # -v: our debug messages, not every library's
        logging.getLogger(package).setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        check_outputs(args)
        return args.func(args)
    except (MapdistillError, FileExistsError, FileNotFoundError) as e:
        print(f"mapdistill {args.command}: error: {e}", file=sys.stderr)
        return 2
    except RunError as e:
        print(f"mapdistill {args.command}: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        print(f"mapdistill {args.command}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        what = str(e) or "interrupted (files written so far are complete)"
        print(f"mapdistill {args.command}: {what}", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    """The ROS-free subcommands (the installed ``mapdistill`` command is mapdistill_ros.cli.main)."""
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
