"""CIFAR ResNets (3x3 stride-1 stem, no max-pool), as in the Auxiliary Training reference code.

The reference stem is conv3x3 -> BN with **no ReLU** (``stem_relu=False``); the usual CIFAR ResNet
has one (``stem_relu=True``). Every BN is a :class:`SelectiveBatchNorm2d`, which behaves as plain
BN unless a training step asks for per-view statistics. ``width`` scales all channel counts
(64 = the standard models); ``resnet8`` and ``test_tiny`` are small models for CPU demos and tests.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn as nn

from robustbench_aux.models import MODELS
from robustbench_aux.models.classifier import CifarClassifier
from robustbench_aux.models.selective_bn import SelectiveBatchNorm2d


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), SelectiveBatchNorm2d(cout))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = _conv3x3(cin, planes, stride)
        self.bn1 = SelectiveBatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = SelectiveBatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _shortcut(cin, planes, stride)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1):
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = SelectiveBatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = SelectiveBatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = SelectiveBatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _shortcut(cin, cout, stride)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


class ResNetBackbone(nn.Module):
    """Stem + stages; stage i has ``width * 2**i`` planes, stride 1 for the first stage, 2 after."""

    def __init__(self, block, layers: Sequence[int], width: int = 64, stem_relu: bool = False):
        super().__init__()
        self.stem = nn.Sequential(_conv3x3(3, width), SelectiveBatchNorm2d(width))
        if stem_relu:
            self.stem.append(nn.ReLU(inplace=True))
        stages, cin = [], width
        for i, n in enumerate(layers):
            planes = width * 2**i
            blocks = []
            for j in range(n):
                blocks.append(block(cin, planes, stride=2 if (i > 0 and j == 0) else 1))
                cin = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.out_channels = cin
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        return self.stages(self.stem(x))


def cifar_resnet(
    block,
    layers: Sequence[int],
    *,
    num_classes: int = 100,
    width: int = 64,
    stem_relu: bool = False,
    mean=None,
    std=None,
    num_aux_heads: int = 0,
    aux_attention: bool = True,
    aux_init: str = "kaiming_fan_out",
) -> CifarClassifier:
    """A CIFAR ResNet wrapped as a :class:`CifarClassifier` (see its doc for the forward contract)."""
    backbone = ResNetBackbone(block, layers, width=width, stem_relu=stem_relu)
    return CifarClassifier(
        backbone, backbone.out_channels, num_classes, mean, std, num_aux_heads, aux_attention, aux_init
    )


_DEPTHS = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
    "resnet101": (Bottleneck, (3, 4, 23, 3)),
    "resnet152": (Bottleneck, (3, 8, 36, 3)),
}


def _register_depth(name: str, block, layers) -> None:
    def build(**kwargs) -> CifarClassifier:
        return cifar_resnet(block, layers, **kwargs)

    build.__doc__ = (
        f"CIFAR {name}: {block.__name__} x {layers}; kwargs as cifar_resnet (width 64 = standard)."
    )
    MODELS.add(name, build, tags=("resnet", "paper"))


for _name, (_block, _layers) in _DEPTHS.items():
    _register_depth(_name, _block, _layers)


@MODELS.register("resnet8", tags=("resnet", "small"))
def resnet8(**kwargs) -> CifarClassifier:
    """A small CIFAR ResNet (3 stages of one BasicBlock, width 16 -> 64 channels) for CPU experiments."""
    kwargs.setdefault("width", 16)
    return cifar_resnet(BasicBlock, (1, 1, 1), **kwargs)


@MODELS.register("test_tiny", tags=("test",))
def test_tiny(**kwargs) -> CifarClassifier:
    """A tiny ResNet (2 stages of one BasicBlock, 8 -> 16 channels) for fast tests."""
    kwargs.setdefault("width", 8)
    return cifar_resnet(BasicBlock, (1, 1), **kwargs)
