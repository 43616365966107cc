"""Corruption augmentation baselines: ``naive_augmentation`` (all training corruptions) and
``per_corruption`` (one corruption; one run per corruption gives the interference matrix's rows).

One shared head, ordinary BN; the corrupted images are "added to the training data", read in one
of two ways (``data_reading``, docs/training.md):

- ``enlarged_dataset`` (the default): the training set becomes the n clean images plus their k
  corrupted versions, shuffled together; batch B, (k + 1) x the steps per epoch, plain
  cross-entropy. Every image, clean or corrupted, gets the per-image update of plain training.
- ``joint_batch``: each step trains on the clean batch and all its corrupted views concatenated
  ((k + 1) * B images, the auxiliary method's step) with the mean loss over all of them, so at the
  same lr each view gets 1 / (k + 1) of the gradient weight a plain step gives it.

How many steps an enlarged-dataset epoch takes (``step_budget``): ``full_pass`` (the default) visits
all (k + 1) * n items, (k + 1) x plain training's steps; ``as_plain`` trains on n of them per epoch,
drawn afresh each epoch, so the run takes plain training's optimizer steps and images.
"""

from __future__ import annotations

from dataclasses import dataclass

from robustbench_aux.corruptions.training import (
    NOISE_IMPLS,
    REFERENCE_TRAIN_CORRUPTIONS,
    ROTATION_VIEWS,
    check_spec,
)
from robustbench_aux.errors import UserError, require_choices
from robustbench_aux.methods import METHODS
from robustbench_aux.methods.base import Method, StepOutput, cross_entropy_per_view, term_name

DATA_READINGS = ("enlarged_dataset", "joint_batch")
STEP_BUDGETS = ("full_pass", "as_plain")


def _check_common(options) -> None:
    require_choices(
        options,
        {
            "noise_impl": NOISE_IMPLS,
            "rotation_view": ROTATION_VIEWS,
            "data_reading": DATA_READINGS,
            "step_budget": STEP_BUDGETS,
        },
    )
    if options.step_budget == "as_plain" and options.data_reading != "enlarged_dataset":
        raise UserError(
            "step_budget = as_plain applies to data_reading = enlarged_dataset (a joint_batch epoch "
            "already takes plain training's steps); drop it or set data_reading=enlarged_dataset"
        )


@dataclass
class NaiveOptions:
    corruptions: tuple[str, ...] = REFERENCE_TRAIN_CORRUPTIONS  # specs: blur, noise, ..., cifar_c:fog@3
    noise_impl: str = "wraparound"  # wraparound (the reference code's uint8 overflow) | clipped
    paired_views: bool = False  # all views share one crop/flip (reference: each draws its own)
    rotation_view: str = "crop_then_rotate"  # reference: crop, rotate, no flip | corrupt_then_crop_flip
    data_reading: str = "enlarged_dataset"  # enlarged_dataset | joint_batch (module doc)
    step_budget: str = "full_pass"  # full_pass | as_plain: plain training's steps per epoch (module doc)

    def validate(self) -> None:
        _check_common(self)
        if not self.corruptions:
            raise UserError("corruptions is empty; give at least one (e.g. --set corruptions=blur,noise)")
        for spec in self.corruptions:
            check_spec(spec)


@dataclass
class PerCorruptionOptions:
    corruption: str = "noise"  # one spec: blur | noise | contrast | rotation | cifar_c:<name>@<1-5>
    noise_impl: str = "wraparound"
    paired_views: bool = False
    rotation_view: str = "crop_then_rotate"
    data_reading: str = "enlarged_dataset"
    step_budget: str = "full_pass"

    def validate(self) -> None:
        _check_common(self)
        check_spec(self.corruption)


class _SharedHeadAugmentation(Method):
    """Clean view + corrupted views through one head with ordinary BN (see the module doc)."""

    def epoch_multiplier(self) -> int:
        return len(self.corruption_specs()) + 1 if self.options.data_reading == "enlarged_dataset" else 1

    def epoch_items(self, n: int) -> int:
        return n if self.options.step_budget == "as_plain" else n * self.epoch_multiplier()

    def loss(self, model, inputs, views, y, epoch) -> StepOutput:
        if views == 1:  # enlarged dataset: one batch of mixed clean and corrupted images
            logits = model(inputs)
            (ce,) = cross_entropy_per_view([logits], y)
            return StepOutput(ce, {"ce": ce.detach()}, logits.detach())
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
