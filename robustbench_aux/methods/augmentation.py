"""Corruption augmentation baselines: ``naive_augmentation`` (all training corruptions) and
``per_corruption`` (one corruption; one run per corruption gives the interference matrix's rows).

Each step trains one shared head on the clean view and its corrupted views, concatenated into
one batch through ordinary BN (the corrupted images are simply added to the training data). The
loss is the mean of the per-view cross-entropies, i.e. the mean over all (k + 1) * B images, so
the learning rate keeps its meaning per image.
"""

from __future__ import annotations

from dataclasses import dataclass

from robustbench_aux.corruptions.training import NOISE_IMPLS, REFERENCE_TRAIN_CORRUPTIONS, check_spec
from robustbench_aux.errors import UserError
from robustbench_aux.methods import METHODS
from robustbench_aux.methods.base import Method, StepOutput, cross_entropy_per_view, term_name


def _check_common(options) -> None:
    if options.noise_impl not in NOISE_IMPLS:
        raise UserError(f"noise_impl must be one of {', '.join(NOISE_IMPLS)}, got {options.noise_impl!r}")


@dataclass
class NaiveOptions:
    corruptions: tuple[str, ...] = REFERENCE_TRAIN_CORRUPTIONS  # specs: blur, noise, ..., cifar_c:fog@3
    noise_impl: str = "clipped"  # clipped | wraparound (the reference code's uint8 overflow)
    paired_views: bool = False  # all views share one crop/flip (reference: each draws its own)

    def validate(self) -> None:
        _check_common(self)
        if not self.corruptions:
            raise UserError("corruptions is empty; give at least one (e.g. --set corruptions=blur,noise)")
        for spec in self.corruptions:
            check_spec(spec)


@dataclass
class PerCorruptionOptions:
    corruption: str = "noise"  # one spec: blur | noise | contrast | rotation | cifar_c:<name>@<1-5>
    noise_impl: str = "clipped"
    paired_views: bool = False

    def validate(self) -> None:
        _check_common(self)
        check_spec(self.corruption)


class _SharedHeadAugmentation(Method):
    """Clean view + corrupted views through one head with ordinary BN; mean of per-view CEs."""

    def loss(self, model, inputs, views, y, epoch) -> StepOutput:
        logits = model(inputs, views=views, heads="primary", selective=False)
        ces = cross_entropy_per_view(logits, y)
        names = ["clean"] + [term_name(s) for s in self.corruption_specs()]
        terms = {f"ce_{n}": ce.detach() / views for n, ce in zip(names, ces)}
        return StepOutput(sum(ces) / views, terms, logits[0].detach())


@METHODS.register("naive_augmentation", tags=("baseline", "paper"))
class NaiveAugmentation(_SharedHeadAugmentation):
    """Clean + all training corruptions as extra data, one head, ordinary BN (the paper's baseline)."""

    Options = NaiveOptions
    name = "naive_augmentation"

    def corruption_specs(self):
        return tuple(self.options.corruptions)


@METHODS.register("per_corruption", tags=("baseline", "paper"))
class PerCorruption(_SharedHeadAugmentation):
    """Clean + one training corruption (--set corruption=...), one head: a row of the interference matrix."""

    Options = PerCorruptionOptions
    name = "per_corruption"

    def corruption_specs(self):
        return (self.options.corruption,)
