"""ResNets for low-resolution images (28², 32²): the CIFAR ResNets of He et al. 2016.

Paper: "Deep Residual Learning for Image Recognition", He et al., CVPR 2016, section 4.2:
a 3×3 stem without downsampling, three stages of basic blocks at widths 16/32/64 (times
`width`), strides 1/2/2, global average pooling. `cifar_resnet20` is the paper's ResNet-20.

They are here to be trained by this toolkit as convnet *teachers* on small images, where
an ImageNet ResNet's 4× stem would throw away most of a 28×28 image. A convnet trained
this way becomes a teacher through `checkpoint:<run dir>`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from distill.registry import STUDENTS

__all__ = ["CifarResNet"]


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.act = nn.ReLU(inplace=True)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        return self.act(self.bn2(self.conv2(out)) + self.shortcut(x))


class CifarResNet(nn.Module):
    """Stem 3×3 conv, three stages of `blocks` basic blocks, average pool, linear head.

    `stem_stride=2` halves the resolution in the stem: with `width=2` it costs about what
    width 1 costs at full resolution, with 4× the parameters.
    """

    def __init__(self, blocks: int = 3, width: int = 1, in_chans: int = 3,
                 num_classes: int = 10, img_size: int = 32, drop_rate: float = 0.0,
                 stem_stride: int = 1):
        super().__init__()
        widths = [16 * width, 32 * width, 64 * width]
        self.num_classes = num_classes
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, widths[0], 3, stem_stride, 1, bias=False),
            nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        layers, cin = [], widths[0]
        for i, cout in enumerate(widths):
            for j in range(blocks):
                layers.append(BasicBlock(cin, cout, 2 if i > 0 and j == 0 else 1))
                cin = cout
        self.stages = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():  # zero-init the last BN of each block: starts as identity
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.stages(self.stem(x))).flatten(1)
        return self.head(self.drop(x))


def _create(blocks: int, **kwargs: Any) -> CifarResNet:
    return CifarResNet(blocks=blocks, **kwargs)


@STUDENTS.register(distilled=False, family="convnet", signature=CifarResNet)
def cifar_resnet8(**kwargs: Any) -> CifarResNet:
    """CIFAR ResNet-8: one basic block per stage (78k parameters at width 1)."""
    return _create(1, **kwargs)


@STUDENTS.register(distilled=False, family="convnet", signature=CifarResNet)
def cifar_resnet20(**kwargs: Any) -> CifarResNet:
    """CIFAR ResNet-20: three basic blocks per stage (0.27M parameters at width 1)."""
    return _create(3, **kwargs)
