"""Model configuration: the ``model:`` section of a training config, stored in every checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field

from mapdistill_core.map_elements import NUM_POINTS


def require_positive(section: str, **values: int | tuple[int, ...]) -> None:
    """ValueError naming ``section.key`` for any value (or tuple element) below 1."""
    for key, value in values.items():
        if min(value if isinstance(value, tuple) else (value,), default=0) < 1:
            raise ValueError(f"{section}.{key} must be positive, got {value!r}")


@dataclass(frozen=True)
class BackboneConfig:
    """A ResNet-class image backbone.

    Attributes:
        block: "basic" (ResNet-18/34 class) or "bottleneck" (ResNet-50 class).
        depths: blocks per stage (ResNet-18: 2 2 2 2, ResNet-50: 3 4 6 3).
        width: channels of the first stage; stage i has width * 2**i (x4 at a bottleneck's output).
    """

    block: str = "basic"
    depths: tuple[int, ...] = (2, 2, 2, 2)
    width: int = 64

    def __post_init__(self) -> None:
        if self.block not in ("basic", "bottleneck"):
            raise ValueError(f"backbone.block must be 'basic' or 'bottleneck', got '{self.block}'")
        if len(self.depths) != 4 or min(self.depths) < 1:
            raise ValueError("backbone.depths must list 4 positive block counts")
        require_positive("backbone", width=self.width)


@dataclass(frozen=True)
class LSSConfig:
    """Lift-splat view transform: depth bins (start, stop, step) along the optical axis, metres."""

    depth_bins: tuple[float, float, float] = (2.0, 50.0, 1.5)
    z_range: tuple[float, float] = (-5.0, 5.0)

    def __post_init__(self) -> None:
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

    kernel_size: int = 3
    heights: tuple[float, ...] = (0.0,)

    def __post_init__(self) -> None:
        if self.kernel_size < 1 or self.kernel_size % 2 == 0 or not self.heights:
            raise ValueError(f"attention needs an odd kernel_size >= 1 and some heights: {self}")


@dataclass(frozen=True)
class LidarConfig:
    """Pillar encoder: pillars on a grid ``grid_scale`` times finer than the BEV, then a conv net."""

    channels: int = 64
    grid_scale: int = 2
    z_range: tuple[float, float] = (-5.0, 5.0)

    def __post_init__(self) -> None:
        require_positive("lidar", channels=self.channels, grid_scale=self.grid_scale)


@dataclass(frozen=True)
class DecoderConfig:
    """MapTR-style map decoder with hierarchical (instance x point) queries."""

    num_queries: int = 50
    num_points: int = NUM_POINTS
    layers: int = 6
    heads: int = 8
    ffn_channels: int = 512
    sampling_points: int = 4
    encoder_blocks: int = 1

    def __post_init__(self) -> None:
        values = {k: getattr(self, k) for k in ("num_queries", "layers", "heads", "ffn_channels", "sampling_points")}
        require_positive("decoder", **values)
        if self.num_points < 2:
            raise ValueError(f"decoder.num_points must be at least 2, got {self.num_points}")


@dataclass(frozen=True)
class LossConfig:
    """Weights of the map losses (MapTR's defaults for the first three)."""

    classification: float = 2.0
    points: float = 5.0
    direction: float = 0.005
    segmentation: float = 1.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0


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
    image_size: tuple[int, int] = (128, 352)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    neck_channels: int = 64
    feature_stride: int = 8
    view_transform: str = "dual"
    bev_size: tuple[int, int] = (80, 40)
    bev_channels: int = 64
    lss: LSSConfig = field(default_factory=LSSConfig)
    attention: AttentionViewConfig = field(default_factory=AttentionViewConfig)
    lidar: LidarConfig | None = None
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        require_positive(
            "model",
            image_size=self.image_size,
            neck_channels=self.neck_channels,
            bev_size=self.bev_size,
            bev_channels=self.bev_channels,
        )
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
