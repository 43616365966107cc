"""What a training method is: an options dataclass, a batch composition, and a loss.

The engine calls, per step::

    views = method.views(x_uint8, generator)          # list of (B, 3, H, W) tensors, view 0 = clean
    out = method.loss(model, torch.cat(views as float), len(views), y, epoch)

A method whose ``epoch_multiplier()`` is m > 1 (the enlarged-dataset reading of naive
augmentation) gets m·n items per epoch; the engine then calls
``views(x_uint8, generator, kinds=item // n)`` and receives one batch of mixed views.

``loss`` returns a :class:`StepOutput` whose ``terms`` are the named, already weighted loss terms
(they sum to ``loss``; the engine logs each and names the one that turns non-finite).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from robustbench_aux.corruptions.training import build_train_corruption
from robustbench_aux.methods.crop_flip import (
    CropFlipParams,
    apply_crop_flip,
    draw_crop_flip,
    random_crop_flip,
)


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

    def epoch_multiplier(self) -> int:
        """Items per training image and epoch: 1, or k + 1 for a "dataset enlargement" method whose
        epoch visits every (image, view) pair once (the engine then passes ``kinds`` to ``views``)."""
        return 1

    def epoch_items(self, n: int) -> int:
        """Items trained per epoch over ``n`` training images: ``n`` times :meth:`epoch_multiplier`
        (every item once); a method may train on fewer, a random subset drawn afresh each epoch."""
        return n * self.epoch_multiplier()

    def _view_transforms(self) -> list:
        if not hasattr(self, "_transforms"):
            impl = getattr(self.options, "noise_impl", "clipped")
            self._transforms = [build_train_corruption(s, noise_impl=impl) for s in self.corruption_specs()]
        return self._transforms

    def _corrupted_view(self, j: int, x: torch.Tensor, generator, params: CropFlipParams | None = None):
        """View ``j`` >= 1 of ``x``: corruption j, then the standard crop/flip (``params`` if given,
        else freshly drawn). The reference's rotation view (``rotation_view = "crop_then_rotate"``)
        is instead the pad-4 random crop, then the rotation, and no flip."""
        spec = self.corruption_specs()[j - 1]
        transform = self._view_transforms()[j - 1]
        draw = lambda: draw_crop_flip(x.shape[0], generator, x.device, self.crop_padding, self.flip)  # noqa: E731
        if spec == "rotation" and getattr(self.options, "rotation_view", "") == "crop_then_rotate":
            params = params or draw()
            crop = CropFlipParams(params.dy, params.dx, None)  # no flip
            return transform(apply_crop_flip(x, crop, self.crop_padding), generator)
        corrupted = transform(x, generator)
        return apply_crop_flip(corrupted, params or draw(), self.crop_padding)

    def views(self, x: torch.Tensor, generator, kinds: torch.Tensor | None = None) -> list[torch.Tensor]:
        """View 0 = crop/flip of ``x``; view j = corruption j of ``x``, then crop/flip (see
        :meth:`_corrupted_view` for the reference's rotation view).

        Each view draws its own crop/flip (the reference behaviour) unless the options say
        ``paired_views = true``, in which case all views share view 0's crop and flip.
        ``kinds`` (dataset enlargement, see :meth:`epoch_multiplier`): one view index per image;
        the result is then a single view whose image i is view ``kinds[i]`` of ``x[i]``.
        """
        self._view_transforms()
        if kinds is not None:
            return [self._mixed_view(x, generator, kinds)]
        paired = bool(getattr(self.options, "paired_views", False))
        shared = draw_crop_flip(x.shape[0], generator, x.device, self.crop_padding, self.flip)
        out = [apply_crop_flip(x, shared, self.crop_padding)]
        for j in range(1, len(self.corruption_specs()) + 1):
            out.append(self._corrupted_view(j, x, generator, shared if paired else None))
        return out

    def _mixed_view(self, x: torch.Tensor, generator, kinds: torch.Tensor) -> torch.Tensor:
        """Image i becomes its view ``kinds[i]`` (0 = clean crop/flip); one batch of mixed views."""
        out = torch.empty_like(x)
        for j in range(len(self.corruption_specs()) + 1):
            sel = (kinds == j).nonzero().flatten()
            if not len(sel):
                continue
            part = x[sel]
            if j == 0:
                view = random_crop_flip(part, generator, self.crop_padding, self.flip)
            else:
                view = self._corrupted_view(j, part, generator)
            out[sel] = view
        return out

    def loss(self, model, inputs: torch.Tensor, views: int, y: torch.Tensor, epoch: float) -> StepOutput:
        """The step's loss; ``epoch`` is the step's position in epochs, ``e + step / steps``
        (0-based: exactly ``e`` at an epoch's first step), so epoch-point schedules may be fractional."""
        raise NotImplementedError

    def epoch_info(self, epoch: float) -> dict:
        """Per-epoch scalars worth a metrics column (e.g. the penalty weight) at the position
        ``epoch`` (the engine passes its last step's); none by default."""
        return {}


def cross_entropy_per_view(logits: list[torch.Tensor], y: torch.Tensor) -> list[torch.Tensor]:
    """Mean cross-entropy of each view's logits against the same labels (at least float32, for
    stability under bf16 autocast; a float64 model stays float64)."""
    return [F.cross_entropy(at_least_fp32(z), y) for z in logits]


def at_least_fp32(z: torch.Tensor) -> torch.Tensor:
    """``z`` in float32, or in its own dtype when that is wider (float64)."""
    return z.to(torch.promote_types(z.dtype, torch.float32))
