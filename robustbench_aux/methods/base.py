"""What a training method is: an options dataclass, a batch composition, and a loss.

The engine calls, per step::

    views = method.views(x_uint8, generator)          # list of (B, 3, H, W) tensors, view 0 = clean
    out = method.loss(model, torch.cat(views as float), len(views), y, epoch)

``loss`` returns a :class:`StepOutput` whose ``terms`` are the named, already weighted loss terms
(they sum to ``loss``; the engine logs each and names the one that turns non-finite).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from robustbench_aux.corruptions.training import build_train_corruption
from robustbench_aux.engine.augment import apply_crop_flip, draw_crop_flip


@dataclass
class StepOutput:
    loss: torch.Tensor  # scalar to backpropagate
    terms: dict[str, torch.Tensor]  # named weighted terms, summing to ``loss``
    logits: torch.Tensor  # primary-head logits of the clean view (train accuracy)


def term_name(spec: str) -> str:
    """A loss-term / CSV column suffix for a corruption spec (``cifar_c:fog@3`` -> ``cifar_c_fog_3``)."""
    return re.sub(r"[^a-z0-9]+", "_", spec.lower()).strip("_")


class Method:
    """Base class: subclasses set ``Options`` (a dataclass) and implement ``loss``."""

    Options: type = None
    name: str = ""

    def __init__(self, options, *, crop_padding: int = 4, flip: bool = True):
        self.options = options
        self.crop_padding = crop_padding
        self.flip = flip

    def model_kwargs(self) -> dict:
        """Extra model constructor arguments the method needs (e.g. auxiliary heads)."""
        return {}

    def corruption_specs(self) -> tuple[str, ...]:
        """The training corruptions, one per extra view (none for plain training)."""
        return ()

    def views(self, x: torch.Tensor, generator) -> list[torch.Tensor]:
        """View 0 = crop/flip of ``x``; view j = crop/flip of corruption j applied to ``x``.

        Each view draws its own crop/flip (the reference behaviour) unless the options say
        ``paired_views = true``, in which case all views share view 0's crop and flip.
        """
        specs = self.corruption_specs()
        if not hasattr(self, "_transforms"):
            impl = getattr(self.options, "noise_impl", "clipped")
            self._transforms = [build_train_corruption(s, noise_impl=impl) for s in specs]
        paired = bool(getattr(self.options, "paired_views", False))
        draw = lambda: draw_crop_flip(x.shape[0], generator, x.device, self.crop_padding, self.flip)  # noqa: E731
        shared = draw()
        out = [apply_crop_flip(x, shared, self.crop_padding)]
        for transform in self._transforms:
            corrupted = transform(x, generator)
            out.append(apply_crop_flip(corrupted, shared if paired else draw(), self.crop_padding))
        return out

    def loss(self, model, inputs: torch.Tensor, views: int, y: torch.Tensor, epoch: int) -> StepOutput:
        raise NotImplementedError

    def epoch_info(self, epoch: int) -> dict:
        """Per-epoch scalars worth a metrics column (e.g. the penalty weight); none by default."""
        return {}


def cross_entropy_per_view(logits: list[torch.Tensor], y: torch.Tensor) -> list[torch.Tensor]:
    """Mean cross-entropy of each view's logits against the same labels (float32 for stability)."""
    return [F.cross_entropy(z.float(), y) for z in logits]
