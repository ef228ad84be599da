"""ROS message types without ROS: a rosbags typestore with this package's messages, and a factory.

The typestore is ROS 2 Humble's (its sensor_msgs, geometry_msgs, tf2_msgs and visualization_msgs
definitions are identical in Jazzy, so bags written with it play on both) plus
``mapdistill_ros/msg/MapElement`` and ``MapElementArray`` parsed from ``msg/*.msg``.

``MessageFactory.new(msgtype, **fields)`` builds a message with every field not given set to its
ROS default (0, "", False, empty array, nested defaults), which is what rclpy's constructors do;
the builders in this package take such a factory, so they serve rosbags (bags, tests) and rclpy
(the node) alike.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from mapdistill_core.resources import ROS_PACKAGE as PACKAGE
from mapdistill_core.resources import shipped_folders

MESSAGES = ("MapElement", "MapElementArray")


def message_folder() -> Path:
    """The folder of ``MapElement.msg`` and ``MapElementArray.msg``: msg/ of the source tree, of a
    pip install or of the colcon-installed package (mapdistill_core.resources)."""
    folders = shipped_folders("msg")
    for folder in folders:
        if all((folder / f"{name}.msg").is_file() for name in MESSAGES):
            return folder
    raise FileNotFoundError(f"message definitions {MESSAGES} not found in {', '.join(map(str, folders))}")


@lru_cache(maxsize=1)
def build_typestore() -> Typestore:
    """ROS 2 Humble types plus mapdistill_ros/msg/* (cached: one typestore per process)."""
    store = get_typestore(Stores.ROS2_HUMBLE)
    folder = message_folder()
    types = {}
    for name in MESSAGES:
        types.update(get_types_from_msg((folder / f"{name}.msg").read_text(), f"{PACKAGE}/msg/{name}"))
    store.register(types)
    return store


_BASE_DEFAULTS = {"bool": False, "string": ""}
_NUMPY_NAMES = {"byte": "uint8", "char": "uint8"}


class MessageFactory:
    """Builds rosbags message objects by type name, defaulting the fields not given."""

    def __init__(self, typestore: Typestore | None = None):
        self.typestore = typestore or build_typestore()

    def cls(self, msgtype: str):
        """The message class itself, for hot loops that give every field (no defaults filled in)."""
        return self.typestore.types[msgtype]

    def new(self, msgtype: str, **fields):
        _, definition = self.typestore.fielddefs[msgtype]
        names = {name for name, _ in definition}
        unknown = set(fields) - names
        if unknown:
            raise TypeError(f"{msgtype} has no field(s) {sorted(unknown)}")
        for name, (kind, spec) in definition:
            if name not in fields:
                fields[name] = self._default(kind.name, spec)
        return self.typestore.types[msgtype](**fields)

    def _default(self, kind: str, spec):
        if kind == "BASE":
            base = spec[0]
            return _BASE_DEFAULTS.get(base, 0.0 if base.startswith("float") else 0)
        if kind == "NAME":
            return self.new(spec)
        if kind in ("ARRAY", "SEQUENCE"):
            (inner_kind, inner), length = spec
            if inner_kind.name == "BASE" and inner[0] not in _BASE_DEFAULTS:
                dtype = np.dtype(_NUMPY_NAMES.get(inner[0], inner[0]))
                return np.zeros(length if kind == "ARRAY" else 0, dtype=dtype)
            if kind == "ARRAY":
                return [self._default(inner_kind.name, inner) for _ in range(length)]
            return []
        raise TypeError(f"unsupported field kind {kind}")
