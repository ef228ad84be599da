"""A pip install works from any folder: the wheel carries the configs, message definitions and weights.

The wheel is built from this checkout and installed (without dependencies) into a fresh venv whose
only other path is this interpreter's site-packages, for the dependencies; the source tree and the
editable install are not visible to it. The commands then run from an empty temporary folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"OMP_NUM_THREADS": "1"}
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", out, REPO)
    assert build.returncode == 0, build.stderr
    (path,) = out.glob("mapdistill-*.whl")
    return path


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("venv")
    assert run(sys.executable, "-m", "venv", "--without-pip", root).returncode == 0
    python = root / "bin" / "python"
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    (Path(purelib) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", wheel)
    assert install.returncode == 0, install.stderr
    return root


def test_the_wheel_declares_every_runtime_dependency_and_ships_the_data(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        requires = [
            line.split()[1] for line in archive.read(metadata).decode().splitlines() if line.startswith("Requires-Dist")
        ]
    for package in ("torch", "rosbags", "safetensors", "onnx", "onnxscript", "onnxruntime", "nuscenes-devkit"):
        assert any(r.startswith(package) for r in requires), package
    data = {n.split(".data/data/", 1)[1] for n in names if ".data/data/" in n}
    for kind in ("config", "msg", "checkpoints"):
        assert {f"share/mapdistill/{kind}/{p.name}" for p in (REPO / kind).iterdir() if p.is_file()} <= data


def test_synthetic2bag_replay_and_evaluate_run_from_an_empty_folder(venv, tmp_path):
    mapdistill = venv / "bin" / "mapdistill"
    where = run(venv / "bin" / "python", "-c", "import mapdistill_core; print(mapdistill_core.__file__)", cwd=tmp_path)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr
    bag = run(mapdistill, "synthetic2bag", "--scenes", "1", "--samples", "2", "--out", "bag", cwd=tmp_path)
    assert bag.returncode == 0, bag.stderr
    replay = run(mapdistill, "replay", "bag", "--out", "out", "--device", "cpu", "--no-pictures", cwd=tmp_path)
    assert replay.returncode == 0, replay.stderr
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["meta"]["weights"] == "checkpoints/synthetic_student.safetensors"
    assert metrics["meta"]["git_revision"] == "mapdistill 0.1.0"  # no git checkout here: the package version
    assert metrics["metrics"]["paired"] == 2 and (tmp_path / "out" / "ground_truth.json").exists()
    generate = run(
        mapdistill, "generate", "--config", "config/synthetic_train_world.yaml", "--split", "val", "--scenes", "1",
        "--out", "val", cwd=tmp_path,
    )  # fmt: skip
    assert generate.returncode == 0, generate.stderr
    assert json.loads((tmp_path / "val" / "index.json").read_text())["config"]["image_width"] == 256
    (tmp_path / "plan.yaml").write_text("teacher_weights: synthetic_teacher.safetensors\n")
    report = run(mapdistill, "experiment", "--config", "plan.yaml", "--report-only", cwd=tmp_path)
    assert report.returncode == 2 and "the report reads the records committed in a clone" in report.stderr
    missing = run(mapdistill, "replay", "bag", "--weights", "nothere.safetensors", "--out", "o", cwd=tmp_path)
    assert (
        missing.returncode == 2
        and missing.stderr.count("\n") == 1
        and "nothere.safetensors: no such file" in missing.stderr
    )


def test_the_colcon_workspace_gets_the_command_and_the_shipped_files():
    cmake = (REPO / "CMakeLists.txt").read_text()
    assert "install(PROGRAMS scripts/mapdistill DESTINATION bin)" in cmake
    assert "foreach(share_dir launch config checkpoints)" in cmake
    script = REPO / "scripts" / "mapdistill"
    assert script.stat().st_mode & 0o111
    shown = run(sys.executable, script, "replay", "--help")
    assert shown.returncode == 0 and "checkpoints/synthetic_student.safetensors" in shown.stdout
