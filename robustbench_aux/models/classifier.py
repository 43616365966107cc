"""The classifier wrapper shared by every architecture: input normalization, the primary head,
the auxiliary heads of Auxiliary Training, and multi-view forward passes.

Contract (docs/design.md): a model takes float images in [0, 1], (B, 3, H, W), normalizes them
with the ``mean``/``std`` given to its constructor, and in eval mode ``forward(x)`` returns the
primary classifier's logits only. Auxiliary heads exist only for training; a trained auxiliary
model is used exactly like a plain one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from robustbench_aux.catalog import NORMALIZATION
from robustbench_aux.models.selective_bn import SelectiveBatchNorm2d, multi_pass_reference, selective_bn

HEAD_ROUTES = ("primary", "per_view")


def default_normalization(num_classes: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The training-set statistics of CIFAR-10 for 10 classes, else CIFAR-100's (used when a
    constructor is given no ``mean``/``std``; runs always pass theirs explicitly)."""
    return NORMALIZATION["cifar10" if num_classes == 10 else "cifar100"]


def kaiming_fan_out(module: nn.Module) -> None:
    """Kaiming normal (fan_out, ReLU gain) for every ``nn.Conv2d`` inside ``module``; transposed
    convolutions are not ``nn.Conv2d`` subclasses and keep PyTorch's default, as in the reference."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


class AuxiliaryHead(nn.Module):
    """The auxiliary classifier of docs/training.md ("Auxiliary training, defined").

    ``attention=True``: attention (conv3x3 -> BN -> ReLU -> transposed conv3x3 -> BN -> sigmoid,
    multiplied with the features), then a bottleneck (1x1 C->C/2 -> BN -> ReLU -> 3x3 without
    padding -> BN -> ReLU -> 1x1 C/2->C -> BN -> ReLU), global average pool, linear.
    ``attention=False`` (the no_attention ablation): global average pool -> linear, like the
    primary head.
    """

    def __init__(
        self, channels: int, num_classes: int, attention: bool = True, init: str = "kaiming_fan_out"
    ):
        super().__init__()
        self.attention = attention
        if attention:
            mid = max(channels // 2, 1)
            self.attn = nn.Sequential(
                nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                SelectiveBatchNorm2d(channels),
                nn.ReLU(inplace=True),
                nn.ConvTranspose2d(channels, channels, 3, padding=1, bias=False),
                SelectiveBatchNorm2d(channels),
                nn.Sigmoid(),
            )
            self.bottleneck = nn.Sequential(
                nn.Conv2d(channels, mid, 1, bias=False),
                SelectiveBatchNorm2d(mid),
                nn.ReLU(inplace=True),
                nn.Conv2d(mid, mid, 3, padding=0, bias=False),  # no padding: 4x4 -> 2x2 on CIFAR
                SelectiveBatchNorm2d(mid),
                nn.ReLU(inplace=True),
                nn.Conv2d(mid, channels, 1, bias=False),
                SelectiveBatchNorm2d(channels),
                nn.ReLU(inplace=True),
            )
        self.fc = nn.Linear(channels, num_classes)
        if init == "kaiming_fan_out":  # as the reference initialises its whole model
            kaiming_fan_out(self)
        elif init != "default":
            raise ValueError(f"aux_init must be kaiming_fan_out or default, got {init!r}")

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        if self.attention:
            feats = self.bottleneck(feats * self.attn(feats))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(feats, 1), 1))


class CifarClassifier(nn.Module):
    """Backbone + primary head (pool -> linear) + ``num_aux_heads`` auxiliary heads."""

    def __init__(
        self,
        backbone: nn.Module,
        feature_channels: int,
        num_classes: int,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        num_aux_heads: int = 0,
        aux_attention: bool = True,
        aux_init: str = "kaiming_fan_out",
    ):
        super().__init__()
        if mean is None or std is None:
            dmean, dstd = default_normalization(num_classes)
            mean = dmean if mean is None else mean
            std = dstd if std is None else std
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"mean/std must be 3 positive-std channel values, got {mean}/{std}")
        # not persistent: the constructor kwargs (stored in every checkpoint) carry them
        self.register_buffer(
            "mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.backbone = backbone
        self.feature_channels = feature_channels
        self.num_classes = num_classes
        self.fc = nn.Linear(feature_channels, num_classes)
        # how selective BN runs in training: "single" = one pass over the concatenated views,
        # "per_view" = one backbone pass per view (the engine picks per device; see TrainConfig.sbn_passes)
        self.sbn_passes = "single"
        self.aux_heads = nn.ModuleList(
            AuxiliaryHead(feature_channels, num_classes, aux_attention, aux_init)
            for _ in range(num_aux_heads)
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's final feature map for float images in [0, 1]."""
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        return self.backbone(x)

    def primary_head(self, feats: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(feats, 1), 1))

    def forward(
        self,
        x: torch.Tensor,
        views: int = 1,
        heads: str = "primary",
        selective: bool = False,
        running_stats: str = "clean",
    ) -> torch.Tensor | list[torch.Tensor]:
        """Logits. ``forward(x)``: the primary classifier (what evaluation and export use).

        Training with several views: ``x`` is ``views`` equal chunks stacked along dim 0 (chunk 0 =
        clean). Returns one logits tensor per chunk. ``heads="primary"`` sends every chunk through
        the primary head; ``"per_view"`` sends chunk j >= 1 through auxiliary head j. ``selective``
        normalizes every chunk with its own BN batch statistics (selective BN), the running
        statistics updated from the clean chunk (``running_stats="clean"``) or from every chunk in
        view order (``"all_views"``, the no_sbn_per_view ablation).
        """
        if views == 1 and heads == "primary":
            return self.primary_head(self.features(x))
        if heads not in HEAD_ROUTES:
            raise ValueError(f"heads must be one of {HEAD_ROUTES}, got {heads!r}")
        if heads == "per_view" and views - 1 != len(self.aux_heads):
            raise ValueError(
                f"{views} views need {views - 1} auxiliary heads; the model has {len(self.aux_heads)}"
            )
        # only the shared backbone sees all views; each auxiliary head sees its own chunk alone
        every = running_stats == "all_views"
        if selective and self.sbn_passes == "per_view":
            # same mathematics as one pass (tested); faster on CPUs, where 5 small batches beat 1 large
            feats = torch.cat(
                multi_pass_reference(
                    self.backbone, list(x.chunk(views)), lambda m, i, v: self.features(v), restore=not every
                )
            )
        else:
            with selective_bn(self.backbone, views if selective else 1, every):
                feats = self.features(x)
        if heads == "primary":
            return list(self.primary_head(feats).chunk(views))
        feats = feats.chunk(views)
        return [self.primary_head(feats[0])] + [h(f) for h, f in zip(self.aux_heads, feats[1:])]

    def head_linears(self) -> list[nn.Linear]:
        """The final linear layer of the primary head then of each auxiliary head (for the penalty)."""
        return [self.fc] + [h.fc for h in self.aux_heads]
