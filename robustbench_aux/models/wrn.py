"""Wide ResNets for CIFAR (Zagoruyko & Komodakis), pre-activation blocks; WRN-40-2 is the AugMix anchor.

depth = 6n + 4 (n blocks per stage, 3 stages of 16k, 32k, 64k channels after a 16-channel stem),
final BN -> ReLU before pooling. Dropout is 0, as in AugMix's CIFAR runs.
"""

from __future__ import annotations

import torch.nn as nn

from robustbench_aux.models import MODELS
from robustbench_aux.models.classifier import CifarClassifier
from robustbench_aux.models.selective_bn import SelectiveBatchNorm2d


class PreActBlock(nn.Module):
    """BN -> ReLU -> conv3x3(stride) -> BN -> ReLU -> conv3x3, plus a 1x1 projection on shape change."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1 = SelectiveBatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn2 = SelectiveBatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.project = (
            None if (cin == cout and stride == 1) else nn.Conv2d(cin, cout, 1, stride=stride, bias=False)
        )

    def forward(self, x):
        pre = self.relu(self.bn1(x))
        out = self.conv2(self.relu(self.bn2(self.conv1(pre))))
        # with a projection the shortcut starts from the pre-activated input (standard WRN)
        return out + (x if self.project is None else self.project(pre))


class WideResNetBackbone(nn.Module):
    def __init__(self, depth: int = 40, widen: int = 2):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6n + 4, got {depth}")
        n = (depth - 4) // 6
        widths = (16, 16 * widen, 32 * widen, 64 * widen)
        layers = [nn.Conv2d(3, widths[0], 3, padding=1, bias=False)]
        cin = widths[0]
        for stage, cout in enumerate(widths[1:]):
            for j in range(n):
                layers.append(PreActBlock(cin, cout, stride=2 if (stage > 0 and j == 0) else 1))
                cin = cout
        layers += [SelectiveBatchNorm2d(cin), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.out_channels = cin
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        return self.body(x)


def wide_resnet(
    depth: int = 40,
    widen: int = 2,
    *,
    num_classes: int = 100,
    mean=None,
    std=None,
    num_aux_heads: int = 0,
    aux_attention: bool = True,
    aux_init: str = "kaiming_fan_out",
) -> CifarClassifier:
    """A WRN-depth-widen wrapped as a :class:`CifarClassifier`."""
    backbone = WideResNetBackbone(depth, widen)
    return CifarClassifier(
        backbone, backbone.out_channels, num_classes, mean, std, num_aux_heads, aux_attention, aux_init
    )


@MODELS.register("wrn40_2", tags=("wrn", "augmix"))
def wrn40_2(**kwargs) -> CifarClassifier:
    """WRN-40-2 (2.2 M parameters), the architecture of AugMix's CIFAR-100-C results."""
    return wide_resnet(40, 2, **kwargs)
