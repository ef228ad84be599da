"""``mapdistill replay``: a recorded drive through the node's online map session, offline, without ROS.

The bag's messages go, in time order, into an OnlineMapSession (mapdistill_ros.online.session), the
object the node drives too: /tf_static transforms, CameraInfo, images (and, for a teacher, the
/LIDAR_TOP scans); every set it gives out goes through its step (decode, preprocess, MapPredictor,
message building). The session runs in REPLAY mode: offline there is no deadline, so every set is
processed (the node's LIVE mode drops a set the worker did not take in time). Predictions are paired
with /map_gt/elements by stamp and scored with the MapTR protocol (mapdistill_ros.bags.scoring,
shared with the live evaluator).

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

from mapdistill_core.data.sample import CAMERA_NAMES
from mapdistill_core.errors import BagError
from mapdistill_core.inference import MapPredictor
from mapdistill_core.interrupts import sigint_deferred
from mapdistill_core.map_elements import MapElement
from mapdistill_core.metrics.maptr_json import write_maptr_files
from mapdistill_core.results import provenance, write_json
from mapdistill_ros import messages, topics
from mapdistill_ros.bags.bag_reader import camera_topics, open_bag, read_messages
from mapdistill_ros.bags.bag_writer import MapBagWriter
from mapdistill_ros.bags.drive_pictures import write_drive_pictures
from mapdistill_ros.bags.scoring import ground_truth_for_predictions, metrics_document, score
from mapdistill_ros.bags.typestore import MessageFactory
from mapdistill_ros.online.online_pipeline import OnlinePipeline
from mapdistill_ros.online.session import BAD_MESSAGE, REPLAY, OnlineMapSession
from mapdistill_ros.online.stage_timer import StageTimer

log = logging.getLogger("mapdistill.replay")

NODE_ELEMENTS, NODE_MARKERS = topics.NODE_ELEMENTS, topics.NODE_MARKERS
PICTURE_THRESHOLD = 0.3
"""The pictures draw predictions scoring at least this (or the replay's threshold, if higher)."""


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
        pipeline = OnlinePipeline(predictor, MessageFactory(), StageTimer(), score_threshold, min_cameras=min_cameras)
        self.session = OnlineMapSession(pipeline, CAMERA_NAMES, REPLAY, slop_s, queue_size)
        self.timer = self.session.timer

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
        if self.session.pipeline.required:  # a teacher: the LiDAR is the set's last sensor
            if topics.LIDAR not in available:
                raise BagError(f"{bag}: the weights are a teacher (cameras + LiDAR) and the bag has no {topics.LIDAR}")
            sensors = {**sensors, topics.LIDAR: len(CAMERA_NAMES)}
        infos = {topics.camera_info_topic(c): i for i, c in enumerate(CAMERA_NAMES)}
        wanted = {*sensors, *infos, topics.TF_STATIC, topics.GT_ELEMENTS, topics.GT_MARKERS}
        connections = [c for c in reader.connections if c.topic in wanted]
        self.session.pipeline.predictor.warm_up()  # the first frame's latency is then the model's, not its start-up
        stream = read_messages(reader, connections, bag, "replay")
        try:
            self._replay(bag, reader, stream, sensors, infos, result, writer)
        except KeyboardInterrupt:
            result.interrupted = True
            log.warning("%s: interrupted; the outputs cover the %d camera sets done", bag, len(result.predictions))
        else:
            self._process(self.session.flush(), result, writer)
        result.timing = self.timer.summary()
        if result.ground_truth:
            result.metrics = score(result.predictions, result.ground_truth)
        return result

    def _replay(
        self, bag: Path, reader: AnyReader, stream: Iterator, sensors: dict, infos: dict, result, writer
    ) -> None:
        """Every message of ``stream`` (connection, time, raw) through the pipeline; see ``run``."""
        for connection, t, raw in stream:
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
                for line in (line for transform in message.transforms for line in self.session.on_transform(transform)):
                    log.warning("%s: at %d ns on %s: %s", bag, t, topic, line)
            elif topic in infos:
                self.session.on_info(infos[topic], message)
            elif topic in sensors:
                self._process(self.session.on_sensor(sensors[topic], message), result, writer)
            if writer is not None and topic in (topics.GT_ELEMENTS, topics.GT_MARKERS):
                writer.write(topic, t, message)

    def _process(self, lines: list[str], result: ReplayResult, writer: MapBagWriter | None) -> None:
        """Log the session's lines, then run every set it gave out, in order."""
        for line in lines:
            log.warning(line)
        while (frame_set := self.session.next_set()) is not None:
            out, lines = self.session.step(frame_set)
            for line in lines:
                log.warning(line)
            if out is None:
                continue
            with sigint_deferred():  # a frame's outputs are recorded whole or not at all
                result.predictions[frame_set.stamp_ns] = out.map_elements
                if not result.scenes:
                    result.scenes.append([])
                result.scenes[-1].append(frame_set.stamp_ns)
                if writer is not None:
                    with self.timer.stage("publish"):
                        writer.write(NODE_ELEMENTS, frame_set.stamp_ns, out.elements)
                        writer.write(NODE_MARKERS, frame_set.stamp_ns, out.markers)


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
