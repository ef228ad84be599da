"""ResNet-class image backbones (written here: no torchvision) and an FPN-style neck."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from mapdistill_core.models.config import BackboneConfig


def conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = conv_bn_relu(cin, width, 3, stride)
        self.conv2 = nn.Sequential(nn.Conv2d(width, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        cout = width * self.expansion
        self.body = nn.Sequential(
            conv_bn_relu(cin, width, 1),
            conv_bn_relu(width, width, 3, stride),
            nn.Conv2d(width, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.shortcut = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class ResNet(nn.Module):
    """ResNet: stem (stride 4) and four stages of strides 4, 8, 16, 32.

    Input [B, 3, H, W]; output the feature maps of stages 2-4: strides 8, 16, 32 with
    ``out_channels`` channels each.
    """

    def __init__(self, config: BackboneConfig):
        super().__init__()
        block = BasicBlock if config.block == "basic" else Bottleneck
        self.stem = nn.Sequential(conv_bn_relu(3, config.width, 7, 2), nn.MaxPool2d(3, 2, 1))
        stages, cin = [], config.width
        self.out_channels = []
        for i, depth in enumerate(config.depths):
            width = config.width * 2**i
            blocks = []
            for j in range(depth):
                blocks.append(block(cin, width, 2 if (j == 0 and i > 0) else 1))
                cin = width * block.expansion
            stages.append(nn.Sequential(*blocks))
            self.out_channels.append(cin)
        self.stages = nn.ModuleList(stages)
        self.out_channels = self.out_channels[1:]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i >= 1:
                outs.append(x)
        return outs


class FPN(nn.Module):
    """Top-down feature pyramid over strides 8, 16, 32; returns the level at ``out_stride``.

    Input: list of [B, C_i, H / s_i, W / s_i]; output [B, channels, H / out_stride, W / out_stride].
    """

    def __init__(self, in_channels: list[int], channels: int, out_stride: int):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.level = {8: 0, 16: 1}[out_stride]
        self.output = conv_bn_relu(channels, channels, 3)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = self.lateral[-1](features[-1])
        for i in range(len(features) - 2, self.level - 1, -1):
            x = F.interpolate(x, size=features[i].shape[-2:], mode="bilinear", align_corners=False)
            x = x + self.lateral[i](features[i])
        return self.output(x)


class ImageEncoder(nn.Module):
    """Backbone + neck applied to every camera: [B, N, 3, H, W] -> [B, N, C, H / s, W / s]."""

    def __init__(self, config: BackboneConfig, channels: int, stride: int):
        super().__init__()
        self.backbone = ResNet(config)
        self.neck = FPN(self.backbone.out_channels, channels, stride)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        b, n = images.shape[:2]
        features = self.neck(self.backbone(images.flatten(0, 1)))
        return features.unflatten(0, (b, n))
