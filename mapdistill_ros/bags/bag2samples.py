"""``mapdistill bag2samples``: recorded drives (rosbag2, no map) as unlabelled Samples to train on.

A drive needs what the teacher reads: the six cameras (``/<CAM>/image_rect/compressed`` or
``/<CAM>/image_rect``), their ``/<CAM>/camera_info``, ``/tf_static`` (base_link -> each camera's
optical frame and -> LIDAR_TOP) and ``/LIDAR_TOP`` (PointCloud2 with x, y, z, intensity); no map.
Its messages are grouped into captures by the node's own FrameAssembler (every camera and the scan
within ``slop_s``), decoded with the replay's ROS-free decoders and written as Samples
(``data/drive_folder.py``: ``<out>/<drive>/<i:06d>.npz``, then the folder's index). The Samples hold
the images at one size (``image_size``, default CAM_FRONT's; each camera's K scaled with it), the
scan in base_link, no ground truth (``labeled`` False) and no pose (training never reads it).

A capture without every camera, its CameraInfo, its transform and the scan is dropped, counted by
reason and logged; so is a message that cannot be read. Nothing else is left out.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rosbags.highlevel import AnyReaderError

from mapdistill_core.data.drive_folder import INDEX_FILE, drive_sample_path, read_drive_index, write_drive_index
from mapdistill_core.data.sample import CAMERA_NAMES, save_sample
from mapdistill_core.errors import BagError, OptionError
from mapdistill_core.results import provenance
from mapdistill_ros import messages, topics
from mapdistill_ros.bags.bag_reader import camera_topics, open_bag, read_messages
from mapdistill_ros.online.frame_sync import FrameAssembler, FrameSet, Rewound
from mapdistill_ros.online.image_decoding import decode
from mapdistill_ros.online.online_pipeline import PLAIN, TransformCache, rig_sample, scan_in_base

log = logging.getLogger("mapdistill.bag2samples")

UNREADABLE = "unreadable_message"
INCOMPLETE = "incomplete"
"""Drop reasons besides FrameAssembler's: a message that cannot be deserialized; a capture whose
camera has no CameraInfo or transform, or that cannot be decoded."""


@dataclass
class Drive:
    """One converted drive: its name in the folder, its bag, how many Samples were written and how
    many captures or messages were dropped, by reason."""

    name: str
    source: str
    samples: int = 0
    dropped: Counter = field(default_factory=Counter)

    def entry(self) -> dict:
        return {"name": self.name, "samples": self.samples, "source": self.source}


def drive_names(bags: list[Path], out: Path, replace: bool) -> list[str]:
    """Each bag's drive name (its folder's name), checked before any work: names are unique and,
    unless ``replace``, not in ``out``'s index yet."""
    names = [bag.name for bag in bags]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise OptionError(f"BAG: two bags are named {', '.join(twice)}; a drive is named after its bag's folder")
    if (out / INDEX_FILE).exists() and not replace:
        present = {d["name"] for d in read_drive_index(out)["drives"]}
        again = [n for n in names if n in present]
        if again:
            raise OptionError(f"--out {out}: already holds the drive(s) {', '.join(again)} (--force replaces them)")
    return names


def bags_to_samples(
    bags: list[str | Path], out: str | Path, image_size: tuple[int, int] | None = None, slop_s: float = 0.1,
    replace: bool = False,
) -> list[Drive]:  # fmt: skip
    """Convert every bag into a drive of ``out`` (created if needed); the index is rewritten after
    each drive, so the drives done stay usable if a later bag fails. ``replace``: a drive already in
    ``out`` is written again."""
    bags, out = [Path(b) for b in bags], Path(out)
    names = drive_names(bags, out, replace)
    out.mkdir(parents=True, exist_ok=True)
    drives = []
    meta = provenance(image_size=image_size, slop_s=slop_s)
    for bag, name in zip(bags, names, strict=True):
        kept = [
            d for d in (read_drive_index(out)["drives"] if (out / INDEX_FILE).exists() else []) if d["name"] != name
        ]
        write_drive_index(out, kept, meta)  # a drive being written again is out of the index until it is whole
        clear_drive(out / name)
        drive = convert_bag(bag, out, name, image_size, slop_s)
        write_drive_index(out, [*kept, drive.entry()], meta)
        drives.append(drive)
    return drives


def clear_drive(folder: Path) -> None:
    """Empty a drive's folder of the sample files an earlier conversion left (and create it); a folder
    holding anything else is refused, never deleted."""
    if folder.exists():
        strangers = [p.name for p in folder.iterdir() if not (p.is_file() and p.suffix == ".npz")]
        if strangers:
            raise OptionError(
                f"--out {folder}: holds files bag2samples did not write ({strangers[0]}); not clearing it"
            )
        for path in folder.iterdir():
            path.unlink()
    folder.mkdir(parents=True, exist_ok=True)


def convert_bag(
    bag: Path, out: Path, name: str, image_size: tuple[int, int] | None = None, slop_s: float = 0.1
) -> Drive:
    """Write ``bag``'s captures as ``out/<name>/<i:06d>.npz`` (see the module docstring).

    Raises:
        BagError: the bag is unreadable, lacks a camera's image topic or /LIDAR_TOP, or holds no
            complete capture.
    """
    drive = Drive(name, str(bag.resolve()))
    with open_bag(bag) as reader:
        available = {c.topic for c in reader.connections}
        sensors, missing = camera_topics(available, bag)
        if missing:
            raise BagError(f"{bag}: no image topic for {', '.join(missing)}; a training sample needs all six cameras")
        if topics.LIDAR not in available:
            raise BagError(f"{bag}: no {topics.LIDAR}; the teacher labels a drive from its cameras and its LiDAR")
        sensors[topics.LIDAR] = len(CAMERA_NAMES)
        infos = {topics.camera_info_topic(c): i for i, c in enumerate(CAMERA_NAMES)}
        connections = [c for c in reader.connections if c.topic in {*sensors, *infos, topics.TF_STATIC}]
        assembler = FrameAssembler(CAMERA_NAMES, slop_s, len(CAMERA_NAMES), 5, (topics.LIDAR_FRAME,))
        transforms, camera_infos = TransformCache(), [None] * len(CAMERA_NAMES)
        for connection, t, raw in read_messages(reader, connections, bag, f"bag2samples {name}"):
            try:
                message = reader.deserialize(raw, connection.msgtype)
            except (AnyReaderError, TypeError, ValueError) as e:  # TypeError: sqlite3 data that is no blob
                drive.dropped[UNREADABLE] += 1
                log.warning("%s: skipped the message on %s at %d ns: %s", bag, connection.topic, t, e)
                continue
            if connection.topic == topics.TF_STATIC:
                for transform in message.transforms:
                    _add_transform(transforms, transform, bag, drive)
            elif connection.topic in infos:
                camera_infos[infos[connection.topic]] = message
            else:
                items = assembler.add(sensors[connection.topic], messages.stamp_ns(message.header.stamp), message)
                image_size = _write(items, out, drive, transforms, camera_infos, image_size, bag)
        _write(assembler.flush(), out, drive, transforms, camera_infos, image_size, bag)
    if drive.samples == 0:
        reasons = ", ".join(f"{n} {reason}" for reason, n in drive.dropped.items()) or "no camera message"
        raise BagError(
            f"{bag}: no complete capture (six cameras, their CameraInfo and /tf_static transforms, and a "
            f"{topics.LIDAR} scan within {slop_s} s); dropped: {reasons}"
        )
    return drive


def _add_transform(transforms: TransformCache, transform, bag: Path, drive: Drive) -> None:
    try:
        transforms.add(transform)
    except ValueError as e:
        drive.dropped[UNREADABLE] += 1
        log.warning("%s: skipped a transform on %s: %s", bag, topics.TF_STATIC, e)


def _write(items: list, out: Path, drive: Drive, transforms, infos, image_size, bag: Path) -> tuple[int, int] | None:
    """Write the complete captures among ``items`` and count the rest; returns the image size used
    (fixed by the first capture when none was given)."""
    n = len(CAMERA_NAMES)
    for item in items:
        if isinstance(item, Rewound):
            log.warning("%s: time went back %.3f s; the drive goes on from there", bag, item.back_ns / 1e9)
            continue
        if not isinstance(item, FrameSet):
            drive.dropped[item.reason] += 1
            log.warning("%s: dropped the capture at %d ns: %s (%s)", bag, item.stamp_ns, item.reason, item.detail)
            continue
        images, (cloud,) = item.payloads[:n], item.payloads[n:]
        try:
            rgb = [decode(image) for image in images]
            size = image_size or rgb[0].shape[:2]
            lidar = scan_in_base(cloud, transforms, PLAIN.cloud)
            sample, mask, reasons = rig_sample(CAMERA_NAMES, images, rgb, infos, transforms, size, lidar, item.stamp_ns)
            if not mask.all():
                raise ValueError(", ".join(f"{camera}: {why}" for camera, why in reasons.items()))
        except ValueError as e:
            drive.dropped[INCOMPLETE] += 1
            log.warning("%s: dropped the capture at %d ns: %s", bag, item.stamp_ns, e)
            continue
        image_size = size
        token = f"{drive.name}-{item.stamp_ns}"
        sample = dataclasses.replace(sample, scene=drive.name, token=token, labeled=False)
        save_sample(sample, drive_sample_path(out, drive.name, drive.samples))
        drive.samples += 1
    return image_size
