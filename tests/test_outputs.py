"""Every output a command writes is checked before any work: a parent that is a file and a
read-only place give one line naming the option and the path as the user gave it (exit 2); re-runs
need --force and replace only what the command wrote; an OS error while writing names the user's file."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from mapdistill_core.atomic import atomic_output
from mapdistill_core.cli import build_parser
from mapdistill_core.output_paths import check_output, picture_format
from mapdistill_ros.cli import add_commands, main
from tests.model_fixtures import WORLD_YAML

ROOT = Path(__file__).resolve().parent.parent
READ_ONLY = Path("/sys/mapdistill-test")  # sysfs: nobody, root included, creates files there


def read_only_place() -> Path:
    try:
        check_output(READ_ONLY / "x", "folder")
    except Exception:  # noqa: BLE001 - not writable, as wanted
        return READ_ONLY
    pytest.skip(f"{READ_ONLY.parent} is writable on this machine")


def commands(out: str, tmp: Path) -> dict[str, list[str]]:
    """Every subcommand that writes, with arguments that parse; its output is ``out``."""
    plan = tmp / "plan.yaml"
    plan.write_text(f"teacher_weights: {ROOT / 'checkpoints/synthetic_teacher.safetensors'}\nout: {out}\n")
    return {
        "eval-vectors": ["eval-vectors", "--pred", "p.json", "--gt", "g.json", "--out", f"{out}/r.json"],
        "plot-vectors": ["plot-vectors", "--pred", "p.json", "--gt", "g.json", "--token", "t", "--out", f"{out}/a.png"],
        "generate": ["generate", "--split", "val", "--scenes", "1", "--out", out],
        "show-sample": ["show-sample", "--out", f"{out}/s.png"],
        "train": ["train", "--config", "config/synthetic_student.yaml", "--out", out],
        "experiment": ["experiment", "--config", str(plan)],
        "evaluate": ["evaluate", "--weights", "w.safetensors", "--out", out],
        "export": ["export", "--weights", "w.safetensors", "--out", f"{out}/m.onnx"],
        "synthetic2bag": ["synthetic2bag", "--out", f"{out}/bag"],
        "nuscenes2bag": ["nuscenes2bag", "--dataroot", "d", "--scene", "scene-0061", "--out", f"{out}/bag"],
        "replay": ["replay", "bag", "--out", out],
        "bag2samples": ["bag2samples", "bag", "--out", out],
    }


def test_the_table_covers_every_subcommand(tmp_path):
    parser = build_parser(add_commands)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(commands("o", tmp_path)) == set(sub.choices)
    for name, command in sub.choices.items():
        declared = command.get_default("outputs")
        writes_out = any("--out" in a.option_strings for a in command._actions)
        assert declared or not writes_out or name == "experiment", f"{name} declares no outputs"


@pytest.mark.parametrize("place", ["parent is a file", "read-only"])
@pytest.mark.parametrize("command", sorted(commands("o", Path("/tmp"))))
def test_an_unwritable_output_is_one_line_before_any_work(command, place, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    if place == "parent is a file":
        (tmp_path / "blocker").write_text("a file, not a folder")
        out = str(tmp_path / "blocker" / "sub")
    else:
        out = str(read_only_place() / "sub")
    argv = commands(out, tmp_path)[command]
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mapdistill {command}: error: "), captured.err
    assert out in lines[0] and "cannot write there" in lines[0], lines[0]
    assert captured.out == "" and "Traceback" not in captured.err


def test_a_picture_is_written_in_the_format_its_name_says_and_other_names_are_refused(tmp_path, capsys):
    assert picture_format("a.PNG") == "png" and picture_format("a.pdf") == "pdf" and picture_format("noext") == "png"
    config = str(ROOT / "config/synthetic_train_world.yaml")
    assert main(["show-sample", "--config", config, "--out", str(tmp_path / "x.txt")]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "x.txt: cannot write a '.txt' file here; name it *.png or *.pdf" in err
    assert not (tmp_path / "x.txt").exists()
    assert main(["show-sample", "--config", config, "--out", str(tmp_path / "x.pdf")]) == 0
    assert (tmp_path / "x.pdf").read_bytes()[:4] == b"%PDF"


def test_an_os_error_while_writing_names_the_users_file_not_a_temporary_one(tmp_path):
    (tmp_path / "file").write_text("x")
    target = tmp_path / "file" / "result.json"
    with pytest.raises(OSError) as caught, atomic_output(target) as tmp:
        tmp.write_text("never")
    assert caught.value.filename == str(target)


def test_a_bag_is_replaced_only_with_force_and_only_if_it_is_a_bag(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    bag = tmp_path / "bag"
    (tmp_path / "world.yaml").write_text(WORLD_YAML)
    argv = ["synthetic2bag", "--config", str(tmp_path / "world.yaml"), "--samples", "1", "--out", str(bag)]
    assert main(argv) == 0
    first = sorted(p.name for p in bag.iterdir())
    assert main(argv) == 2
    assert f"--out {bag}: exists already; not overwriting a bag (--force replaces it)" in capsys.readouterr().err
    assert main([*argv, "--force"]) == 0 and sorted(p.name for p in bag.iterdir()) == first
    (bag / "notes.txt").write_text("mine")
    assert main([*argv, "--force"]) == 2
    assert "exists and is not a rosbag2 folder" in capsys.readouterr().err and (bag / "notes.txt").exists()
    os.remove(bag / "notes.txt")


def test_replay_into_the_same_folder_again_needs_force_and_then_replaces_its_own_files(tmp_path, capsys):
    (tmp_path / "world.yaml").write_text(WORLD_YAML)
    bag = tmp_path / "bag"
    assert main(["synthetic2bag", "--config", str(tmp_path / "world.yaml"), "--samples", "2", "--out", str(bag)]) == 0
    argv = ["replay", str(bag), "--out", str(tmp_path / "r"), "--device", "cpu"]
    assert main(argv) == 0
    pictures = sorted(p.name for p in (tmp_path / "r" / "bev").iterdir())
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"mapdistill replay: error: --out {tmp_path / 'r' / 'predictions'}: exists already; not overwriting a bag "
        "(--force replaces it)"
    )
    (tmp_path / "r" / "bev" / "stale.png").write_bytes(b"")
    assert main([*argv, "--force"]) == 0
    assert sorted(p.name for p in (tmp_path / "r" / "bev").iterdir()) == pictures
