"""Where commands write: every output is checked before any work, and a refusal is one line.

``check_output(path, kind, option)`` raises OutputError unless ``path`` can be written as ``kind``:
- "file": a file (its folder may not exist yet; the path must not be a folder; ``suffixes`` if given
  are the name endings the command can write, so a PNG is never saved as ``x.txt``);
- "folder": a folder (existing or not; not a file);
- "bag": a rosbag2 folder to create: it must not exist, unless ``force``, and then only a bag is
  replaced (``remove_bag``).
Writable means that a file can be created in the nearest existing folder on the way: that catches a
read-only file system, a missing permission and a parent that is a file alike, without creating
anything. The message names the option, the path the user gave and the reason.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from mapdistill_core.errors import OutputError

BAG_FILES = (".mcap", ".db3", ".yaml", ".db3-shm", ".db3-wal")
"""What a rosbag2 folder holds: storage files and metadata.yaml."""

PICTURE_FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg", ".jpg": "jpeg", ".jpeg": "jpeg", "": "png"}
"""Picture name endings -> the format written (matplotlib's); no ending: PNG."""


def picture_format(path: str | Path) -> str:
    """The format a picture at ``path`` is written in (its suffix decides; see PICTURE_FORMATS)."""
    return PICTURE_FORMATS[Path(path).suffix.lower()]


def _nearest_existing(path: Path) -> Path:
    for folder in (path, *path.parents):
        if folder.exists() or folder.is_symlink():
            return folder
    return Path(".")


def _writable_folder(path: Path, option: str, shown: str) -> None:
    """Raise unless a file can be created under ``path`` (a folder that may not exist yet)."""
    existing = _nearest_existing(path.absolute())
    if not existing.is_dir():
        raise OutputError(f"{option} {shown}: cannot write there ({existing} is a file, not a folder)")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".mapdistill-probe-")
    except OSError as e:
        raise OutputError(f"{option} {shown}: cannot write there ({e.strerror}: {existing})") from None
    os.close(fd)
    os.unlink(probe)


def is_bag(path: Path) -> bool:
    """Whether ``path`` is a folder holding only rosbag2 files (or nothing)."""
    return path.is_dir() and all(p.is_file() and p.suffix in BAG_FILES for p in path.iterdir())


def remove_bag(path: Path, option: str) -> None:
    """Delete the bag at ``path`` (``--force``); anything that is not a bag is refused, never deleted."""
    if not is_bag(path):
        raise OutputError(f"{option} {path}: exists and is not a rosbag2 folder; not removing it, choose another")
    shutil.rmtree(path)


def check_output(
    path: str | Path, kind: str, option: str = "--out", force: bool = False, suffixes: tuple[str, ...] | None = None
) -> Path:
    """``path`` as a Path once it is known to be writable as ``kind`` (see the module docstring)."""
    shown, path = str(path), Path(path)
    if kind == "file":
        if path.is_dir():
            raise OutputError(f"{option} {shown}: is a folder; give the file to write")
        if suffixes is not None and path.suffix.lower() not in suffixes:
            names = " or ".join(f"*{s}" for s in suffixes if s)
            raise OutputError(f"{option} {shown}: cannot write a '{path.suffix}' file here; name it {names}")
        _writable_folder(path.parent, option, shown)
    elif kind == "folder":
        if path.exists() and not path.is_dir():
            raise OutputError(f"{option} {shown}: is a file, not a folder")
        _writable_folder(path, option, shown)
    elif kind == "bag":
        if path.exists() and not force:
            raise OutputError(f"{option} {shown}: exists already; not overwriting a bag (--force replaces it)")
        if path.exists():
            if not is_bag(path):
                raise OutputError(f"{option} {shown}: exists and is not a rosbag2 folder; not replacing it")
            _writable_folder(path, option, shown)
        else:
            _writable_folder(path.parent, option, shown)
    else:
        raise ValueError(f"unknown output kind '{kind}'")
    return path
