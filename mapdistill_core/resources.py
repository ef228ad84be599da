"""The files mapdistill ships beside its code, found wherever the code was installed from.

Three kinds, each a folder of the repository: ``config`` (YAML configs and the RViz layout), ``msg``
(the ROS message definitions) and ``checkpoints`` (the shipped weights). They are looked up in

1. the source checkout (``<repository>/<kind>/``; also what an editable install sees);
2. a pip install (setup.py installs the folders as data files, ``<prefix>/share/mapdistill/<kind>/``);
3. a colcon workspace (``share/mapdistill_ros/<kind>/``, found through ament_index).

``resolve(value, kind)`` is how every option and config key that names such a file is read: the
user's own file wins (relative to the file that names it, then to the current folder), and a name
that is not there but is shipped (``synthetic_student.yaml`` or ``config/synthetic_student.yaml``)
is the shipped file. So README's commands work from any folder and from a pip install.
"""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path, PurePosixPath

KINDS = ("config", "msg", "checkpoints")
DISTRIBUTION = "mapdistill"
ROS_PACKAGE = "mapdistill_ros"


def _pip_folder(kind: str) -> Path | None:
    try:
        files = metadata.distribution(DISTRIBUTION).files or ()
    except metadata.PackageNotFoundError:
        return None
    for entry in files:
        parts = PurePosixPath(str(entry)).parts
        if len(parts) >= 4 and parts[-4:-1] == ("share", DISTRIBUTION, kind):
            return Path(entry.locate()).resolve().parent
    return None


def _ament_folder(kind: str) -> Path | None:
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(ROS_PACKAGE)) / kind
    except (ImportError, LookupError):
        return None


def shipped_folders(kind: str) -> list[Path]:
    """The folders that may hold shipped files of ``kind``, in the order they are searched."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    folders = [Path(__file__).resolve().parents[1] / kind, _pip_folder(kind), _ament_folder(kind)]
    return [f for f in folders if f is not None]


def shipped(kind: str, name: str) -> Path:
    """The shipped file ``name`` of ``kind`` (e.g. ``shipped("config", "synthetic.yaml")``)."""
    folders = shipped_folders(kind)
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{name}: not shipped with mapdistill (looked in {', '.join(map(str, folders))})")


def _shipped_name(value: str, kind: str) -> str | None:
    """``name`` when ``value`` is spelled ``name`` or ``<kind>/name`` (the repository's spelling)."""
    parts = PurePosixPath(value.replace(os.sep, "/")).parts
    if len(parts) == 1 or (len(parts) == 2 and parts[0] == kind):
        return parts[-1]
    return None


def _display(path: Path) -> str:
    """``path`` relative to the current folder when it lies below it, else absolute."""
    path = path.absolute()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def resolve(value: str | Path, kind: str, base: str | Path | None = None) -> str:
    """The file a user's ``value`` names: ``base/value`` (``base``: the folder of the config file
    that names it), else ``value`` from the current folder, else the shipped file of that name.

    Returns the path relative to the current folder when it lies below it, else absolute (so configs
    written by one run read the same when run from the repository root). Raises FileNotFoundError
    naming every place looked in.
    """
    value = str(value)
    path = Path(value).expanduser()
    candidates = [path] if path.is_absolute() else [*([Path(base) / path] if base is not None else []), path]
    for candidate in candidates:
        if candidate.exists():
            return _display(candidate)
    name = None if path.is_absolute() else _shipped_name(value, kind)
    if name is not None:
        try:
            return _display(shipped(kind, name))
        except FileNotFoundError:
            pass
    looked = [str(c) for c in candidates] + ([f"the shipped {kind} files"] if name is not None else [])
    raise FileNotFoundError(f"{value}: no such file (looked for {', '.join(looked)})")


MODEL_FILES = {
    ".safetensors": "a safetensors weights file",
    ".onnx": "an ONNX model",
    ".pt": "a PyTorch pickle",
    ".pth": "a PyTorch pickle",
    ".ckpt": "a PyTorch pickle",
}
"""Name endings of model files, and what to call them in a message about the wrong kind of file."""


def model_file_kind(path: str | Path) -> str | None:
    """What kind of model file ``path`` names by its ending ("an ONNX model", ...), None for others."""
    return MODEL_FILES.get(Path(path).suffix.lower())
