"""Bad options: one line naming the option, exit code 2, before any work; -v after the subcommand;
written files get the usual mode."""

import os
import stat
from pathlib import Path

import pytest

from mapdistill_core.atomic import atomic_output
from mapdistill_ros.cli import main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("generate --split train --out {tmp}/g --scenes -1", "argument --scenes: must be >= 1, got -1"),
        ("generate --split train --out {tmp}/g --scenes 0", "argument --scenes: must be >= 1, got 0"),
        ("generate --split train --out {tmp}/g --workers -2", "argument --workers: must be >= 1, got -2"),
        ("train --config c.yaml --max-steps -5", "argument --max-steps: must be >= 0, got -5"),
        ("evaluate --weights w --limit -3", "argument --limit: must be >= 0, got -3"),
        ("evaluate --weights w --pictures -1", "argument --pictures: must be >= 0, got -1"),
        ("replay bag --weights w --out {tmp}/o --score-threshold 2", "argument --score-threshold: must be in [0, 1]"),
        ("replay bag --weights w --out {tmp}/o --min-cameras 7", "argument --min-cameras: must be in 1..6, got 7"),
        ("replay bag --weights w --out {tmp}/o --device bogus", "argument --device: expected auto, cpu, cuda"),
        ("synthetic2bag --samples -3 --out {tmp}/b", "argument --samples: must be >= 0, got -3"),
        (
            "eval-vectors --pred p --gt g --out {tmp}/r.json --score-threshold 1.5",
            "--score-threshold: must be in [0, 1]",
        ),
        ("export --weights w --out {tmp}/s.onnx --opset 5", "argument --opset: must be >= 16, got 5"),
        ("show-sample --scene -1 --out {tmp}/s.png", "argument --scene: must be >= 0, got -1"),
        ("show-sample --config config/synthetic_train_world.yaml --sample 999 --out {tmp}/s.png", "--sample 999"),
        ("export --weights checkpoints/synthetic_student.safetensors --out {tmp}", "is a folder"),
    ],
)
def test_a_bad_option_is_one_line_naming_it_and_nothing_is_written(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    before = set(tmp_path.iterdir())
    try:
        code = main(args.format(tmp=tmp_path).split())
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert set(tmp_path.iterdir()) == before


def test_cuda_on_a_machine_without_it_is_refused_up_front(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SystemExit) as exit_:
        main(["replay", "bag", "--weights", "w", "--out", "o", "--device", "cuda"])
    assert exit_.value.code == 2
    assert "argument --device: 'cuda': this torch" in capsys.readouterr().err


def test_verbose_works_after_the_subcommand_too(tmp_path, capsys):
    for args in (["-v", "show-sample"], ["show-sample", "-v"]):
        out = tmp_path / f"{len(args[0])}.png"
        assert main([*args, "--config", "config/synthetic_train_world.yaml", "--out", str(out)]) == 0
        assert out.read_bytes()[:4] == b"\x89PNG"


def test_show_sample_writes_exactly_the_path_it_names(tmp_path):
    assert main(["show-sample", "--config", "config/synthetic_train_world.yaml", "--out", str(tmp_path / "foo")]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["foo"]


def test_atomically_written_files_get_the_umask_mode(tmp_path):
    from mapdistill_core.checkpoint import save_model
    from mapdistill_core.models.model import build_model
    from tests.model_fixtures import STUDENT

    old = os.umask(0o027)
    try:
        with atomic_output(tmp_path / "a.json") as tmp:
            tmp.write_text("{}")
        save_model(tmp_path / "w.safetensors", build_model(STUDENT))  # safetensors writes a file of its own
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "w.safetensors").stat().st_mode) == 0o640


def test_train_takes_the_idle_cores_or_what_it_is_told(monkeypatch):
    import os

    import torch

    from mapdistill_core.cli import cpu_threads

    before = torch.get_num_threads()
    try:
        assert cpu_threads(3) == (3, "--threads") and torch.get_num_threads() == 3
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        assert cpu_threads(0) == (2, "OMP_NUM_THREADS")
        monkeypatch.delenv("OMP_NUM_THREADS")
        monkeypatch.setattr(os, "getloadavg", lambda: (1.6, 0.0, 0.0))
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
        assert cpu_threads(0) == (2, "4 cores, load average 1.6")
        monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 0.0, 0.0))
        assert cpu_threads(0)[0] == 1
    finally:
        torch.set_num_threads(before)


def test_readmes_generate_example_makes_the_split_the_training_configs_read():
    """README's `generate` line writes the world and folder of config/synthetic_student.yaml's data."""
    import re
    import shlex

    from mapdistill_core.config import load_config
    from mapdistill_core.data.synthetic.config import SyntheticConfig
    from mapdistill_core.training.config import ExperimentConfig

    root = Path(__file__).resolve().parent.parent
    (line,) = [m for m in re.findall(r"^mapdistill generate .*$", (root / "README.md").read_text(), re.M)]
    words = shlex.split(line)
    option = {words[i]: words[i + 1] for i in range(2, len(words) - 1) if words[i].startswith("--")}
    data = load_config(ExperimentConfig, root / "config/synthetic_student.yaml").data
    assert load_config(SyntheticConfig, root / option["--config"]) == load_config(SyntheticConfig, data.world)
    assert option["--out"] == f"{data.root}/{option['--split']}" and int(option["--scenes"]) == data.train_scenes
