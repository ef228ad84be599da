"""Result files: JSON documents that say which command, inputs and code revision produced them."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from mapdistill_core.atomic import atomic_output

_REPO_ROOT = Path(__file__).resolve().parent.parent


def package_version() -> str | None:
    """The installed mapdistill's version (None when it is not installed, only on the path)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mapdistill")
    except PackageNotFoundError:
        return None


def git_revision() -> str | None:
    """The git commit of the source tree (with '-dirty' when it has changes); outside a git checkout
    (a pip install) the package version, "mapdistill <version>"; None if neither is known."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=_REPO_ROOT, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()

    try:
        revision = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        installed = package_version()
        return None if installed is None else f"mapdistill {installed}"
    return revision + ("-dirty" if dirty else "")


def provenance(**fields: object) -> dict:
    """What produced a result: the command line, git revision, UTC time, plus ``fields``."""
    return {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "git_revision": git_revision(),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **fields,
    }


def write_json(path: str | Path, document: dict) -> None:
    """Write JSON atomically (see mapdistill_core.atomic)."""
    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(document, f, indent=2)
        f.write("\n")
