"""The teacher (camera + LiDAR) and the student (camera only), built by ``build_model(config)``.

Both take a batch (see mapdistill_core.data.batch) and return a dict, in DETR's form:
    logits: [B, Q, K] class logits of the final decoder layer
    points: [B, Q, Np, 2] points of the final decoder layer, normalized BEV coordinates
    hidden: [B, Q, Np, C] hidden states of the final decoder layer
    aux_outputs: the earlier decoder layers, first first, each a dict of the three keys above
    bev: [B, C, X, Y] fused BEV before the map encoder ("low-level" feature for distillation)
    bev_views: the two BEV streams, each [B, C, X, Y]: (camera, LiDAR) for the teacher,
        (lift-splat, attention) for a dual-view student; None otherwise
    segmentation: [B, K, X, Y] logits of the auxiliary BEV segmentation head
"""

from __future__ import annotations

import torch
from torch import nn

from mapdistill_core.bev_grid import BEVGrid
from mapdistill_core.map_elements import CLASS_NAMES
from mapdistill_core.models.backbone import ImageEncoder, conv_bn_relu
from mapdistill_core.models.config import ModelConfig
from mapdistill_core.models.lidar import PillarEncoder
from mapdistill_core.models.map_head import MapDecoder, MapEncoder
from mapdistill_core.models.view_transforms import AttentionView, DualView, LiftSplat


class MapModel(nn.Module):
    """Camera BEV (and, for the teacher, LiDAR BEV and a conv fuser), map encoder and decoder."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.grid = BEVGrid(tuple(config.bev_size))
        c, s = config.bev_channels, config.feature_stride
        self.image_encoder = ImageEncoder(config.backbone, config.neck_channels, s)
        if config.view_transform == "lss":
            self.view = LiftSplat(config.neck_channels, c, self.grid, config.lss, s)
        elif config.view_transform == "attention":
            self.view = AttentionView(config.neck_channels, c, self.grid, config.attention, s)
        else:
            self.view = DualView(
                LiftSplat(config.neck_channels, c, self.grid, config.lss, s),
                AttentionView(config.neck_channels, c, self.grid, config.attention, s),
                c,
            )
        if config.lidar is not None:
            self.lidar = PillarEncoder(self.grid, config.lidar, c)
            self.fuser = nn.Sequential(conv_bn_relu(2 * c, c), conv_bn_relu(c, c))
        self.encoder = MapEncoder(c, config.decoder.encoder_blocks)
        self.decoder = MapDecoder(config.decoder, c, self.grid)
        self.segmentation = nn.Conv2d(c, len(CLASS_NAMES), 1)

    def camera_bev(self, batch: dict) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        features = self.image_encoder(batch["images"])
        args = (features, batch["intrinsics"], batch["cam_to_ego"], batch["camera_mask"])
        if isinstance(self.view, DualView):
            return self.view(*args)
        if isinstance(self.view, LiftSplat):
            return self.view(*args)[0], None
        return self.view(*args), None

    def forward(self, batch: dict) -> dict:
        bev, views = self.camera_bev(batch)
        if self.config.lidar is not None:
            lidar_bev = self.lidar(batch["lidar"], batch["images"].shape[0])
            views = (bev, lidar_bev)
            bev = self.fuser(torch.cat([bev, lidar_bev], dim=1))
        encoded = self.encoder(bev)
        out = self.decoder(encoded)
        out.update(bev=bev, bev_views=views, segmentation=self.segmentation(encoded))
        return out


def build_model(config: ModelConfig) -> MapModel:
    """A teacher when ``config.kind == "teacher"`` (it has a LiDAR branch), else a student."""
    return MapModel(config)
