"""``mapdistill replay``: a recorded drive through exactly the node's code path, offline, without ROS.

The bag's messages go, in time order, through the node's pieces: /tf_static into the
TransformCache, CameraInfo into the per-camera cache, images (and, for a teacher, the /LIDAR_TOP
scans) into the FrameAssembler, and every set it gives out through OnlinePipeline (decode,
preprocess, MapPredictor, message building).
Offline there is no deadline, so every set is processed (the node's latest-frame-wins drop only
applies when inference is slower than the input). Predictions are paired with /map_gt/elements by
stamp and scored with the MapTR protocol (mapdistill_ros.bags.scoring, shared with the live evaluator).

Outputs in ``out``: ``predictions/`` (rosbag2 with the node's topics and the ground truth),
``predictions.json`` (MapTR submission format), ``ground_truth.json`` (MapTR's ground-truth format,
each frame under the token of the prediction paired with it, so ``mapdistill eval-vectors`` on the
two files gives metrics.json's mAP), ``metrics.json`` and ``bev/`` (a PNG per frame, a
GIF per scene; a scene starts at each /tf_static message, which the bag writers emit per scene).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rosbags.highlevel import AnyReader, AnyReaderError
from tqdm import tqdm

from mapdistill_core.data.sample import CAMERA_NAMES
from mapdistill_core.errors import BagError
from mapdistill_core.inference import MapPredictor
from mapdistill_core.interrupts import sigint_deferred
from mapdistill_core.map_elements import MapElement
from mapdistill_core.metrics.maptr_json import write_maptr_files
from mapdistill_core.results import provenance, write_json
from mapdistill_ros import messages, topics
from mapdistill_ros.bags.bag_reader import camera_topics, open_bag
from mapdistill_ros.bags.bag_writer import MapBagWriter
from mapdistill_ros.bags.drive_pictures import write_drive_pictures
from mapdistill_ros.bags.scoring import ground_truth_for_predictions, metrics_document, score
from mapdistill_ros.bags.typestore import MessageFactory
from mapdistill_ros.online.frame_sync import FrameAssembler, FrameSet
from mapdistill_ros.online.online_pipeline import OnlinePipeline, TransformCache
from mapdistill_ros.online.stage_timer import StageTimer

log = logging.getLogger("mapdistill.replay")

NODE_ELEMENTS, NODE_MARKERS = topics.NODE_ELEMENTS, topics.NODE_MARKERS
PICTURE_THRESHOLD = 0.3
"""The pictures draw predictions scoring at least this (or the replay's threshold, if higher)."""
BAD_MESSAGE = "bad_message"
"""Drop reason of a message the replay cannot use: not deserializable, a non-finite /tf_static
transform, ground truth the metric cannot score. Camera sets the pipeline rejects count as "error",
as in the node."""


@dataclass
class ReplayResult:
    """What a replay produced.

    Attributes:
        predictions: set stamp (ns) -> predicted elements in base_link.
        ground_truth: stamp (ns) -> ground-truth elements, from /map_gt/elements.
        scenes: per scene, the set stamps in order.
        missing_topics: the rig's cameras the bag has no image topic for.
        timing: StageTimer.summary() (stage latencies, frames, drops).
        metrics: the Chamfer AP (``scoring.score``; None without ground truth).
        document: metrics.json as written (``scoring.metrics_document``).
        interrupted: Ctrl-C stopped the replay; the rest covers the camera sets done before it.
    """

    predictions: dict[int, list[MapElement]] = field(default_factory=dict)
    ground_truth: dict[int, list[MapElement]] = field(default_factory=dict)
    scenes: list[list[int]] = field(default_factory=list)
    missing_topics: list[str] = field(default_factory=list)
    timing: dict = field(default_factory=dict)
    metrics: dict | None = None
    document: dict | None = None
    interrupted: bool = False


class BagReplay:
    """Runs one bag through the node's pipeline.

    Args:
        predictor: the loaded model.
        score_threshold, min_cameras, slop_s, queue_size: as the node's parameters.
    """

    def __init__(
        self,
        predictor: MapPredictor,
        score_threshold: float = 0.3,
        min_cameras: int = 4,
        slop_s: float = 0.1,
        queue_size: int = 5,
    ):
        self.factory = MessageFactory()
        self.timer = StageTimer()
        self.pipeline = OnlinePipeline(predictor, self.factory, self.timer, score_threshold, min_cameras=min_cameras)
        self.assembler = FrameAssembler(CAMERA_NAMES, slop_s, min_cameras, queue_size, self.pipeline.required)
        self.transforms = TransformCache()
        self.infos = [None] * len(CAMERA_NAMES)

    def run(self, bag: str | Path, writer: MapBagWriter | None = None) -> ReplayResult:
        """Replay ``bag``; the node's output messages go to ``writer`` when given.

        A message that cannot be deserialized or used, and a camera set the pipeline rejects, are
        logged and counted in ``timing["dropped"]`` (BAD_MESSAGE, "error") and the replay goes on;
        a bag that stops being readable part-way is a BagError naming the bag and the last time read.
        Ctrl-C stops it between frames: the result (and ``writer``) holds every camera set done.
        """
        bag = Path(bag)
        with open_bag(bag) as reader:
            return self.run_reader(reader, bag, writer)

    def run_reader(self, reader: AnyReader, bag: Path, writer: MapBagWriter | None = None) -> ReplayResult:
        """``run`` on a bag already opened by ``open_bag`` (``bag`` names it in messages)."""
        result = ReplayResult()
        available = {c.topic for c in reader.connections}
        sensors, result.missing_topics = camera_topics(available, bag)
        if result.missing_topics:
            log.warning("%s: no image topic for %s; predicting without them", bag, ", ".join(result.missing_topics))
        if self.pipeline.required:  # a teacher: the LiDAR is the set's last sensor
            if topics.LIDAR not in available:
                raise BagError(f"{bag}: the weights are a teacher (cameras + LiDAR) and the bag has no {topics.LIDAR}")
            sensors = {**sensors, topics.LIDAR: len(CAMERA_NAMES)}
        infos = {topics.camera_info_topic(c): i for i, c in enumerate(CAMERA_NAMES)}
        wanted = {*sensors, *infos, topics.TF_STATIC, topics.GT_ELEMENTS, topics.GT_MARKERS}
        connections = [c for c in reader.connections if c.topic in wanted]
        total = sum(c.msgcount for c in connections)
        self.pipeline.predictor.warm_up()  # the first frame's latency is then the model's, not its start-up
        stream = iter(tqdm(reader.messages(connections), total=total, desc="replay", unit="msg"))
        try:
            self._replay(bag, reader, stream, sensors, infos, result, writer)
        except KeyboardInterrupt:
            result.interrupted = True
            log.warning("%s: interrupted; the outputs cover the %d camera sets done", bag, len(result.predictions))
        else:
            self._process(self.assembler.flush(), result, writer)
        result.timing = self.timer.summary()
        if result.ground_truth:
            result.metrics = score(result.predictions, result.ground_truth)
        return result

    def _replay(
        self, bag: Path, reader: AnyReader, stream: Iterator, sensors: dict, infos: dict, result, writer
    ) -> None:
        """Every message of ``stream`` (connection, time, raw) through the pipeline; see ``run``."""
        t = None
        while True:
            try:
                connection, t, raw = next(stream)
            except StopIteration:
                break
            except Exception as e:  # noqa: BLE001 - the storage's own error, whatever its kind
                where = "at its start" if t is None else f"after {t} ns"
                raise BagError(f"{bag}: unreadable {where} ({type(e).__name__}: {e})") from None
            topic = connection.topic
            try:
                message = reader.deserialize(raw, connection.msgtype)
                if topic == topics.GT_ELEMENTS:
                    result.ground_truth[messages.stamp_ns(message.header.stamp)] = messages.ground_truth_from_message(
                        message
                    )
            except (AnyReaderError, TypeError, ValueError) as e:  # TypeError: sqlite3 data that is no blob
                self.timer.drop(BAD_MESSAGE)
                log.warning("%s: skipped the message on %s at %d ns: %s", bag, topic, t, e)
                continue
            if topic == topics.TF_STATIC:
                result.scenes.append([])
                for transform in message.transforms:
                    try:
                        self.transforms.add(transform)
                    except ValueError as e:
                        self.timer.drop(BAD_MESSAGE)
                        log.warning("%s: skipped a transform on %s at %d ns: %s", bag, topic, t, e)
            elif topic in infos:
                self.infos[infos[topic]] = message
            elif topic in sensors:
                stamp = messages.stamp_ns(message.header.stamp)
                self._process(self.assembler.add(sensors[topic], stamp, message), result, writer)
            if writer is not None and topic in (topics.GT_ELEMENTS, topics.GT_MARKERS):
                writer.write(topic, t, message)

    def _process(self, ready: list, result: ReplayResult, writer: MapBagWriter | None) -> None:
        for item in ready:
            if not isinstance(item, FrameSet):
                self.timer.drop(item.reason, item.missing)
                log.warning("dropped a camera set at %d ns: %s (%s)", item.stamp_ns, item.reason, item.detail)
                continue
            try:
                out = self.pipeline.process(item.payloads, self.infos, self.transforms, item.stamp_ns)
            except ValueError as e:
                self.timer.drop("error")
                log.warning("skipped the camera set at %d ns: %s", item.stamp_ns, e)
                continue
            with sigint_deferred():  # a frame's outputs are recorded whole or not at all
                result.predictions[item.stamp_ns] = out.map_elements
                if not result.scenes:
                    result.scenes.append([])
                result.scenes[-1].append(item.stamp_ns)
                if writer is not None:
                    with self.timer.stage("publish"):
                        writer.write(NODE_ELEMENTS, item.stamp_ns, out.elements)
                        writer.write(NODE_MARKERS, item.stamp_ns, out.markers)


def replay_bag(
    bag: str | Path,
    weights: str | Path,
    out: str | Path,
    model_config: str | None = None,
    device: str = "auto",
    score_threshold: float = 0.0,
    min_cameras: int = 4,
    pictures: bool = True,
    backend: str = "torch",
    half: bool = False,
    cuda_graphs: bool = False,
) -> ReplayResult:
    """The ``mapdistill replay`` command: replay, then write the predictions bag, the MapTR JSON,
    metrics.json and the pictures into ``out`` (which must not hold a predictions bag yet). After
    Ctrl-C the bag and JSON files cover the camera sets done (meta.interrupted), without pictures.
    ``backend`` is torch (safetensors weights) or onnxruntime (an exported .onnx); ``half`` and
    ``cuda_graphs`` are the torch backend's (see TorchBackend)."""
    out = Path(out)
    bag = Path(bag)
    with open_bag(bag) as reader:  # an unreadable bag fails before the weights load or anything is written
        predictor = MapPredictor.from_checkpoint(weights, device, half, model_config, backend, cuda_graphs)
        replay = BagReplay(predictor, score_threshold, min_cameras)
        out.mkdir(parents=True, exist_ok=True)
        with MapBagWriter(out / "predictions") as writer:
            result = replay.run_reader(reader, bag, writer)
    meta = provenance(
        bag=str(bag),
        weights=str(weights),
        backend=backend,
        half=predictor.half,
        cuda_graphs=predictor.cuda_graphs,
        score_threshold=score_threshold,
        interrupted=result.interrupted,
    )
    tokens = {str(stamp): elements for stamp, elements in result.predictions.items()}
    keyed, unscored = ground_truth_for_predictions(result.predictions, result.ground_truth)
    write_maptr_files(out, tokens, keyed if result.ground_truth else {}, meta)
    metrics = metrics_document(
        meta,
        result.metrics,
        f"{bag} has no {topics.GT_ELEMENTS}",
        predictions=len(result.predictions),
        ground_truth=len(result.ground_truth),
        processed=result.timing["frames"],
        dropped=result.timing["dropped"],
        missing_camera_topics=result.missing_topics,
        unscored_predictions=unscored if result.ground_truth else None,
        latency_ms={name: {"p50": s["p50_ms"], "p95": s["p95_ms"]} for name, s in result.timing["stages"].items()},
    )
    result.document = metrics
    write_json(out / "metrics.json", metrics)
    if pictures and not result.interrupted:
        threshold = max(score_threshold, PICTURE_THRESHOLD)
        write_drive_pictures(result.predictions, result.ground_truth, result.scenes, out / "bev", threshold)
    return result
