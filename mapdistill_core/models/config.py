"""Model configuration: the ``model:`` section of a training config, stored in every checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field

from mapdistill_core.config import check_ranges, number
from mapdistill_core.map_elements import NUM_POINTS


@dataclass(frozen=True)
class BackboneConfig:
    """A ResNet-class image backbone.

    Attributes:
        block: "basic" (ResNet-18/34 class) or "bottleneck" (ResNet-50 class).
        depths: blocks per stage (ResNet-18: 2 2 2 2, ResNet-50: 3 4 6 3).
        width: channels of the first stage; stage i has width * 2**i (x4 at a bottleneck's output).
    """

    block: str = "basic"
    depths: tuple[int, ...] = field(default=(2, 2, 2, 2), metadata=number(1))
    width: int = field(default=64, metadata=number(1))

    def __post_init__(self) -> None:
        if self.block not in ("basic", "bottleneck"):
            raise ValueError(f"backbone.block must be 'basic' or 'bottleneck', got '{self.block}'")
        check_ranges(self, "backbone")
        if len(self.depths) != 4:
            raise ValueError("backbone.depths must list 4 block counts")


@dataclass(frozen=True)
class LSSConfig:
    """Lift-splat view transform: depth bins (start, stop, step) along the optical axis, metres."""

    depth_bins: tuple[float, float, float] = field(default=(2.0, 50.0, 1.5), metadata=number())
    z_range: tuple[float, float] = field(default=(-5.0, 5.0), metadata=number())

    def __post_init__(self) -> None:
        check_ranges(self, "lss")
        start, stop, step = self.depth_bins
        if not 0 < start < stop or step <= 0:
            raise ValueError(
                f"lss.depth_bins must be (start, stop, step) with 0 < start < stop, step > 0: {self.depth_bins}"
            )
        if not self.z_range[0] < self.z_range[1]:
            raise ValueError(f"lss.z_range must be (low, high) with low < high: {self.z_range}")


@dataclass(frozen=True)
class AttentionViewConfig:
    """Attention view transform (GKT-like): BEV queries at ``heights`` (m) sample a kernel of
    ``kernel_size`` x ``kernel_size`` feature pixels around their projection in each camera."""

    kernel_size: int = field(default=3, metadata=number(1))
    heights: tuple[float, ...] = field(default=(0.0,), metadata=number())

    def __post_init__(self) -> None:
        check_ranges(self, "attention")
        if self.kernel_size % 2 == 0 or not self.heights:
            raise ValueError(f"attention needs an odd kernel_size and some heights: {self}")


@dataclass(frozen=True)
class LidarConfig:
    """Pillar encoder: pillars on a grid ``grid_scale`` times finer than the BEV, then a conv net."""

    channels: int = field(default=64, metadata=number(1))
    grid_scale: int = field(default=2, metadata=number(1))
    z_range: tuple[float, float] = field(default=(-5.0, 5.0), metadata=number())

    def __post_init__(self) -> None:
        check_ranges(self, "lidar")


@dataclass(frozen=True)
class DecoderConfig:
    """MapTR-style map decoder with hierarchical (instance x point) queries."""

    num_queries: int = field(default=50, metadata=number(1))
    num_points: int = field(default=NUM_POINTS, metadata=number(2))
    layers: int = field(default=6, metadata=number(1))
    heads: int = field(default=8, metadata=number(1))
    ffn_channels: int = field(default=512, metadata=number(1))
    sampling_points: int = field(default=4, metadata=number(1))
    encoder_blocks: int = field(default=1, metadata=number(0))

    def __post_init__(self) -> None:
        check_ranges(self, "decoder")


@dataclass(frozen=True)
class LossConfig:
    """Weights of the map losses (MapTR's defaults for the first three)."""

    classification: float = field(default=2.0, metadata=number(0))
    points: float = field(default=5.0, metadata=number(0))
    direction: float = field(default=0.005, metadata=number(0))
    segmentation: float = field(default=1.0, metadata=number(0))
    focal_alpha: float = field(default=0.25, metadata=number(0, 1))
    focal_gamma: float = field(default=2.0, metadata=number(0))

    def __post_init__(self) -> None:
        check_ranges(self, "loss")


@dataclass(frozen=True)
class ModelConfig:
    """A teacher (camera + LiDAR) or a student (camera only).

    Attributes:
        kind: "teacher" or "student".
        image_size: (height, width) the cameras are resized to.
        view_transform: "lss", "attention" or "dual" (both, fused by convolution).
        bev_size: (X, Y) cells over the 60 m x 30 m region (rows along x, columns along y).
        bev_channels: channels of every BEV feature map.
        feature_stride: stride of the image features fed to the view transform (8 or 16).
    """

    kind: str = "student"
    image_size: tuple[int, int] = field(default=(128, 352), metadata=number(1))
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    neck_channels: int = field(default=64, metadata=number(1))
    feature_stride: int = field(default=8, metadata=number(1))
    view_transform: str = "dual"
    bev_size: tuple[int, int] = field(default=(80, 40), metadata=number(1))
    bev_channels: int = field(default=64, metadata=number(1))
    lss: LSSConfig = field(default_factory=LSSConfig)
    attention: AttentionViewConfig = field(default_factory=AttentionViewConfig)
    lidar: LidarConfig | None = None
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        check_ranges(self, "model")
        if self.bev_channels % self.decoder.heads:
            raise ValueError(
                f"model.bev_channels {self.bev_channels} must be divisible by decoder.heads {self.decoder.heads}"
            )
        if self.kind not in ("teacher", "student"):
            raise ValueError(f"kind must be 'teacher' or 'student', got '{self.kind}'")
        if self.view_transform not in ("lss", "attention", "dual"):
            raise ValueError(f"view_transform must be lss, attention or dual, got '{self.view_transform}'")
        if (self.kind == "teacher") != (self.lidar is not None):
            raise ValueError("a teacher needs a 'lidar' section and a student must not have one")
        if self.feature_stride not in (8, 16):
            raise ValueError("feature_stride must be 8 or 16")
        if any(s % self.feature_stride for s in self.image_size):
            raise ValueError(f"image_size {list(self.image_size)} must be divisible by feature_stride")
