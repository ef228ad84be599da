"""Experiment configuration: config/<name>.yaml with sections model, data and train."""

from __future__ import annotations

from dataclasses import dataclass, field

from mapdistill_core.config import check_ranges, input_file, number
from mapdistill_core.distill.config import DistillConfig
from mapdistill_core.models.config import ModelConfig


@dataclass(frozen=True)
class DataConfig:
    """Where samples come from.

    Attributes:
        dataset: "synthetic" (the procedural world) or "nuscenes".
        world: synthetic world config file (synthetic only).
        root: folder of generated samples; a missing split is generated there on first use.
        train_scenes, val_scenes, test_scenes: scenes per split (synthetic; 0 = the world's default).
        unlabeled_scenes: drives of the "unlabeled" split, written without their map, trained on
            beside the train split (synthetic; 0: none). Needs a ``distill`` section: the teacher's
            pseudo labels are their map targets and the distillation terms apply to them.
        unlabeled_labels: read those drives with their map instead, as labelled samples: the upper
            bound of what labelling them would give (a measurement, not a way to train).
        unlabeled_dir: a folder of recorded drives written by ``mapdistill bag2samples`` (cameras
            and LiDAR, no map), trained on beside the train split as unlabelled samples, like
            ``unlabeled_scenes`` (either dataset; "": none). Needs a ``distill`` section.
        workers: DataLoader worker processes.
        version, dataroot: nuScenes version and folder (nuscenes only).
        lidar_sweeps: LiDAR sweeps per sample, the key frame's included (nuscenes only).
    """

    dataset: str = "synthetic"
    world: str = field(default="config/synthetic.yaml", metadata=input_file("config"))
    root: str = "data/synthetic"
    train_scenes: int = field(default=0, metadata=number(0))
    val_scenes: int = field(default=0, metadata=number(0))
    test_scenes: int = field(default=0, metadata=number(0))
    unlabeled_scenes: int = field(default=0, metadata=number(0))
    unlabeled_labels: bool = False
    unlabeled_dir: str = ""
    workers: int = field(default=0, metadata=number(0))
    version: str = "v1.0-trainval"
    dataroot: str = "data/nuscenes"
    lidar_sweeps: int = field(default=1, metadata=number(1))

    def __post_init__(self) -> None:
        if self.dataset not in ("synthetic", "nuscenes"):
            raise ValueError(f"data.dataset must be 'synthetic' or 'nuscenes', got '{self.dataset}'")
        if self.unlabeled_dir and (self.unlabeled_scenes or self.unlabeled_labels):
            raise ValueError(
                "data.unlabeled_dir (recorded drives, no map) goes without data.unlabeled_scenes and "
                "data.unlabeled_labels (the synthetic unlabelled split); set one source"
            )
        check_ranges(self, "data")


@dataclass(frozen=True)
class TrainConfig:
    """Optimization.

    Attributes:
        epochs, batch_size: per process (DDP multiplies the global batch by the world size).
        lr, weight_decay: AdamW; backbone_lr_scale multiplies the image backbone's rate.
        warmup_steps: linear warm-up, then cosine decay to min_lr_ratio * lr.
        grad_clip: max gradient norm.
        val_every: validate (mAP on the val split) every this many epochs; 0 never.
        val_samples: validate on at most this many val samples (0: all).
        checkpoint_every: save the training state every this many steps (and every epoch).
        grad_share_every: with more than one loss term (distillation), log each term's share of
            the gradient norm every this many steps, from the first (0: never).
        amp: mixed precision on CUDA (bfloat16 where supported).
        seed: seeds weights and data order.
    """

    epochs: int = field(default=24, metadata=number(1))
    batch_size: int = field(default=4, metadata=number(1))
    lr: float = field(default=6e-4, metadata=number(0, low_open=True))
    backbone_lr_scale: float = field(default=0.1, metadata=number(0))
    weight_decay: float = field(default=0.01, metadata=number(0))
    warmup_steps: int = field(default=500, metadata=number(0))
    min_lr_ratio: float = field(default=0.001, metadata=number(0, 1))
    grad_clip: float = field(default=35.0, metadata=number(0, low_open=True))
    val_every: int = field(default=1, metadata=number(0))
    val_samples: int = field(default=0, metadata=number(0))
    checkpoint_every: int = field(default=200, metadata=number(1))
    grad_share_every: int = field(default=100, metadata=number(0))
    amp: bool = True
    seed: int = field(default=0, metadata=number(0))

    def __post_init__(self) -> None:
        check_ranges(self, "train")


@dataclass(frozen=True)
class ExperimentConfig:
    """model, data and train; with a ``distill`` section the model (a student) learns from a teacher."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distill: DistillConfig | None = None

    def __post_init__(self) -> None:
        if self.distill is not None and self.model.kind != "student":
            raise ValueError("a distill section needs a student model")
        if self.data.unlabeled_scenes and not self.data.unlabeled_labels and self.distill is None:
            raise ValueError("data.unlabeled_scenes needs a distill section: the teacher labels those drives")
        if self.data.unlabeled_dir and self.distill is None:
            raise ValueError("data.unlabeled_dir needs a distill section: the teacher labels those drives")
