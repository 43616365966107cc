"""``plain``: standard training on clean images with random crop and flip, one head."""

from __future__ import annotations

from dataclasses import dataclass

from robustbench_aux.methods import METHODS
from robustbench_aux.methods.base import Method, StepOutput, cross_entropy_per_view


@dataclass
class PlainOptions:
    """Plain training has no options of its own."""


@METHODS.register("plain", tags=("baseline", "paper"))
class Plain(Method):
    """Cross-entropy on one crop/flipped clean view."""

    Options = PlainOptions
    name = "plain"

    def loss(self, model, inputs, views, y, epoch) -> StepOutput:
        logits = model(inputs)
        (ce,) = cross_entropy_per_view([logits], y)
        return StepOutput(ce, {"ce": ce.detach()}, logits.detach())
