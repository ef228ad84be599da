"""benchmarks/run_all.py: a backend missing on this machine is one row that says so, and the table goes on;
benchmarks/soak.py runs through on a short drive."""

import subprocess
import sys
from pathlib import Path

import torch

from mapdistill_core.data.synthetic.world import SyntheticScene
from tests.model_fixtures import WORLD

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import run_all  # noqa: E402  (a script folder, not a package)


def test_a_missing_backend_is_a_row_saying_why_and_the_table_goes_on(monkeypatch, capsys):
    def no_onnxruntime(*args, **kwargs):
        raise ImportError("No module named 'onnxruntime'")

    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(run_all, "export_onnx", no_onnxruntime)
    sample = SyntheticScene(WORLD, "test", 0).sample(0)
    rows = run_all.backend_rows(sample, torch.device("cpu"), warmup=0, iters=1)
    assert len(rows) == 1
    assert (rows[0].what, rows[0].a) == ("student forward: onnxruntime vs PyTorch", "not available")
    assert rows[0].b == "No module named 'onnxruntime'"
    run_all.print_table([*rows, run_all.Row("next row", "1.0 ms", "2.0 ms", "0.50")])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and "not available" in lines[2] and "next row" in lines[3]


def test_the_onnxruntime_row_names_the_provider_it_used(monkeypatch):
    monkeypatch.chdir(ROOT)
    sample = SyntheticScene(WORLD, "test", 0).sample(0)
    (row,) = run_all.backend_rows(sample, torch.device("cpu"), warmup=0, iters=1)
    assert row.what == "student forward: onnxruntime (CPUExecutionProvider) vs PyTorch (cpu)"
    assert row.a.endswith(" ms") and row.b.endswith(" ms")


def test_the_soak_benchmark_runs_through_a_short_drive(tmp_path):
    bag = tmp_path / "bag"
    args = ["--frames", "6", "--bag", str(bag), "--warmup", "2", "--interval", "0.2"]
    done = subprocess.run(
        [sys.executable, "benchmarks/soak.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # One test scene of 40 samples holds the 6 frames asked for; every one is processed.
    assert "frames processed: 40 of 40, dropped: none" in done.stdout
    assert "growth" in done.stdout and "transform cache: 7 camera transforms" in done.stdout
    assert (tmp_path / "predictions").is_dir()
