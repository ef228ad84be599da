"""YAML configs read into dataclasses, strictly: an unknown or mistyped key names the key and the file.

A field that names a file carries ``metadata=input_file(kind)``: its value is resolved against the
folder of the config file that names it, then the current folder, then the files mapdistill ships
(``resources.resolve``); a file that must exist and is not found is an error naming the config file
and the key. Every numeric field (a number, or a tuple or mapping of numbers) carries
``metadata=number(low, high)``: its allowed range, checked when a file is read, so that a value out
of range is one line naming the file and the key before any work (``tests/test_config_ranges.py``
keeps every numeric field declared).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from mapdistill_core.errors import ConfigError
from mapdistill_core.resources import model_file_kind, resolve

T = TypeVar("T")


def input_file(kind: str, must_exist: bool = True) -> dict:
    """Field metadata of a key that names a file of ``kind`` ("config", "checkpoints"); with
    ``must_exist`` False (weights a run will produce) a missing file is kept as written."""
    return {"input_file": kind, "must_exist": must_exist}


def number(
    low: float | None = None, high: float | None = None, *, low_open: bool = False, high_open: bool = False
) -> dict:
    """Field metadata of a numeric key: the range its number (or each number of its tuple or mapping)
    must lie in; ``low_open`` / ``high_open`` exclude the bound; no bounds: any number."""
    return {"range": (low, high, low_open, high_open)}


def describe_range(bounds: tuple) -> str:
    low, high, low_open, high_open = bounds
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return "any number"


def _check_range(value: Any, bounds: tuple, where: str) -> None:
    low, high, low_open, high_open = bounds
    values = value.values() if isinstance(value, dict) else value if isinstance(value, (tuple, list)) else (value,)
    for v in values:
        too_low = low is not None and (v <= low if low_open else v < low)
        too_high = high is not None and (v >= high if high_open else v > high)
        if too_low or too_high:
            raise ConfigError(f"{where}: must be {describe_range(bounds)}, got {value!r}")


def check_ranges(config: Any, section: str) -> None:
    """Every numeric field of the dataclass ``config`` within its ``number`` range, else a ConfigError
    naming ``section.key``: config classes call it from ``__post_init__``, so that a config made in
    code (``dataclasses.replace``) is held to the ranges a loaded one is checked against."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if "range" in f.metadata and value is not None:
            _check_range(value, f.metadata["range"], f"{section}.{f.name}")


def _convert(value: Any, kind: Any, where: str, base: Path | None) -> Any:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of {kind.__name__} fields, got {value!r}")
        return _build(kind, value, where, base)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(value, inner, where, base)
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
            pairs = enumerate(zip(value, args, strict=True))
            return tuple(_convert(v, a, f"{where}[{i}]", base) for i, (v, a) in pairs)
        item = args[0] if args else Any
        out = [_convert(v, item, f"{where}[{i}]", base) for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        key_kind, value_kind = args or (Any, Any)
        return {
            _convert(k, key_kind, where, base): _convert(v, value_kind, f"{where}.{k}", base) for k, v in value.items()
        }
    if kind is Any:
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind in (int, float) and isinstance(value, bool) or not isinstance(value, kind):
        raise ConfigError(f"{where}: expected {kind.__name__}, got {value!r}")
    return value


def _resolve_file(value: Any, f: dataclasses.Field, where: str, base: Path | None) -> Any:
    if base is None or "input_file" not in f.metadata or not isinstance(value, str) or not value:
        return value
    try:
        return resolve(value, f.metadata["input_file"], base)
    except FileNotFoundError as e:
        if f.metadata["must_exist"]:
            raise ConfigError(f"{where}: {e}") from None
        return value


def _build(cls: type[T], data: dict, where: str, base: Path | None = None) -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields), key=str)
    if unknown:
        raise ConfigError(f"{where}: unknown key '{unknown[0]}' (known keys: {', '.join(fields)})")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            value = _convert(data[name], hints[name], f"{where}.{name}", base)
            if "range" in f.metadata and value is not None:
                _check_range(value, f.metadata["range"], f"{where}.{name}")
            kwargs[name] = _resolve_file(value, f, f"{where}.{name}", base)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: missing key '{name}'")
    try:
        return cls(**kwargs)
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None


def config_from_dict(cls: type[T], data: dict, source: str = "<config>", base: str | Path | None = None) -> T:
    """Build dataclass ``cls`` from a mapping; ``source`` names the origin in error messages; file
    names in it are resolved against ``base`` (the folder of the file it came from; None: kept as
    they are)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    return _build(cls, data, source, None if base is None else Path(base))


def _read_yaml(path: str | Path) -> tuple[Path, Any]:
    """The config file ``path`` names (a shipped one by name, see ``resources.resolve``) and its YAML."""
    kind = model_file_kind(path)
    if kind is not None:
        raise ConfigError(f"{path}: is {kind}, not a config; give a YAML config such as config/synthetic_student.yaml")
    try:
        path = Path(resolve(path, "config"))
        return path, yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ConfigError(str(e)) from None
    except OSError as e:
        raise ConfigError(f"{path}: not readable ({e.strerror})") from None
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None


def load_config(cls: type[T], path: str | Path) -> T:
    """Read a YAML file into dataclass ``cls``; errors name the file and the key path.

    ``path`` that is not there but names a shipped config (``synthetic.yaml``,
    ``config/synthetic.yaml``) reads the shipped one."""
    path, data = _read_yaml(path)
    return config_from_dict(cls, {} if data is None else data, str(path), path.parent)


def load_section(cls: type[T], path: str | Path, key: str) -> T:
    """Section ``key`` of a YAML config file read into dataclass ``cls`` (for example the ``model:``
    of an experiment config, for inference), strictly; the file's other sections are not read."""
    path, data = _read_yaml(path)
    if not isinstance(data, dict) or key not in data:
        raise ConfigError(f"{path}: no '{key}' section")
    return config_from_dict(cls, data[key], f"{path}: {key}", path.parent)


def config_to_dict(config: Any) -> dict:
    """A dataclass config as plain data (tuples become lists), for YAML/JSON/safetensors metadata."""

    def plain(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(config))
