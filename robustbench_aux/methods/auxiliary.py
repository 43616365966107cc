"""``auxiliary``: Auxiliary Training (Zhang et al., CVPR 2020) with every switch of docs/training.md.

Per step, with views v0 (clean) and vj = tj(x) (j = 1..k), logits z0 = g0(f(v0)), zj = gj(f(vj))::

    L = CE(z0, y) + sum_j alpha * CE(zj, y)
      + sum_j beta * H(softmax(teacher / T).detach(), softmax(student / T))     # ISD
      + gamma(epoch) * sum_j (||W0 - Wj||^2 + ||b0 - bj||^2)                  # final linear layers

The reference distils from the primary (teacher, on clean) to each auxiliary head
(``distill_direction = "primary_to_aux"``); ``aux_to_primary`` reverses it, ``both`` adds both.
gamma is ``penalty_weight`` from epoch ``penalty_start_epoch`` (0-based) on, 0 before; the engine
passes each step's position in epochs (epoch + step / steps), so a fractional start (a short run's
rescaled schedule) switches the penalty on at the first step at or after it.

Ablations are switches: no_isd = ``beta = 0``; no_sbn = ``selective_bn = false``; no_sbn_per_view =
``sbn_running_stats = "all_views"`` (per-view batch statistics, running statistics updated by every
view in turn: the reference with its BN save/restore removed); no_penalty =
``penalty = false``; no_attention = ``attention = false``; shared_head = ``shared_head = true``.
``variant = "<ablation>"`` names one of them: it sets that switch and labels the run in reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from robustbench_aux.corruptions.training import (
    NOISE_IMPLS,
    REFERENCE_TRAIN_CORRUPTIONS,
    ROTATION_VIEWS,
    check_spec,
)
from robustbench_aux.errors import UserError, require_choices
from robustbench_aux.methods import METHODS
from robustbench_aux.methods.base import Method, StepOutput, at_least_fp32, cross_entropy_per_view, term_name

DISTILL_DIRECTIONS = ("primary_to_aux", "aux_to_primary", "both")
RUNNING_STATS = ("clean", "all_views")
# the ablations (docs/training.md) as named bundles of switches (the run's label shows the name)
ABLATIONS: dict[str, dict] = {
    "full": {},
    "no_isd": {"beta": 0.0},
    "no_sbn": {"selective_bn": False},
    "no_sbn_per_view": {"sbn_running_stats": "all_views"},
    "no_penalty": {"penalty": False},
    "no_attention": {"attention": False},
    "shared_head": {"shared_head": True},
}


@dataclass
class AuxiliaryOptions:
    corruptions: tuple[str, ...] = REFERENCE_TRAIN_CORRUPTIONS  # one auxiliary head per corruption
    alpha: float = 0.05  # weight of each auxiliary head's cross-entropy
    beta: float = 0.05  # weight of each distillation term (0 = the no_isd ablation)
    temperature: float = 1.0  # T of the softened outputs
    distill_direction: str = "primary_to_aux"
    penalty: bool = True  # the fc weight penalty (false = the no_penalty ablation)
    penalty_weight: float = 1.0  # gamma once switched on
    # 0-based epoch point; a fractional one (a short run's rescaled schedule) starts at that step
    penalty_start_epoch: int | float = field(default=180, metadata={"epochs": True})
    selective_bn: bool = True  # per-view BN statistics, running stats from clean (false = no_sbn)
    sbn_running_stats: str = "clean"  # clean (SBN) | all_views (no_sbn_per_view: every view updates them)
    attention: bool = True  # attention + bottleneck auxiliary heads (false = pool -> linear)
    shared_head: bool = False  # every view through the primary head (no auxiliary heads)
    paired_views: bool = False  # all views share one crop/flip (reference: each draws its own)
    noise_impl: str = "wraparound"  # wraparound (the reference's uint8 arithmetic) | clipped
    rotation_view: str = "crop_then_rotate"  # reference: crop, rotate, no flip | corrupt_then_crop_flip
    variant: str = "full"  # a named ablation (ABLATIONS): sets its switch, labels the run

    def validate(self) -> None:
        if self.variant not in ABLATIONS:
            raise UserError(f"variant must be one of {', '.join(ABLATIONS)}, got {self.variant!r}")
        for key, value in ABLATIONS[self.variant].items():
            setattr(self, key, value)
        require_choices(
            self,
            {
                "distill_direction": DISTILL_DIRECTIONS,
                "noise_impl": NOISE_IMPLS,
                "rotation_view": ROTATION_VIEWS,
                "sbn_running_stats": RUNNING_STATS,
            },
        )
        if self.sbn_running_stats == "all_views" and not self.selective_bn:
            raise UserError(
                "sbn_running_stats = all_views needs selective_bn = true (per-view batch statistics)"
            )
        if not math.isfinite(self.penalty_start_epoch) or self.penalty_start_epoch < 0:
            raise UserError(
                f"penalty_start_epoch must be an epoch number >= 0, got {self.penalty_start_epoch}"
            )
        if self.temperature <= 0:
            raise UserError(f"temperature must be positive, got {self.temperature}")
        if not self.corruptions:
            raise UserError("corruptions is empty; auxiliary training needs at least one")
        for spec in self.corruptions:
            check_spec(spec)


def soft_cross_entropy(teacher_logits: torch.Tensor, student_logits: torch.Tensor, temperature: float):
    """H(softmax(teacher / T), softmax(student / T)), batch mean; the teacher is detached
    (equal to KL(teacher || student) up to the teacher's entropy, a constant for the student)."""
    target = F.softmax(at_least_fp32(teacher_logits.detach()) / temperature, dim=1)
    return -(target * F.log_softmax(at_least_fp32(student_logits) / temperature, dim=1)).sum(1).mean()


def head_penalty(linears: list[torch.nn.Linear]) -> torch.Tensor:
    """Sum over auxiliary heads j of ||W0 - Wj||_F^2 + ||b0 - bj||^2 (linears[0] = primary)."""
    w0, b0 = linears[0].weight, linears[0].bias
    return sum(((w0 - l.weight) ** 2).sum() + ((b0 - l.bias) ** 2).sum() for l in linears[1:])


@METHODS.register("auxiliary", tags=("paper",))
class Auxiliary(Method):
    """Auxiliary training: per-corruption auxiliary heads, ISD, selective BN, weight penalty."""

    Options = AuxiliaryOptions
    name = "auxiliary"

    def corruption_specs(self):
        return tuple(self.options.corruptions)

    def model_kwargs(self) -> dict:
        o = self.options
        return {} if o.shared_head else {"num_aux_heads": len(o.corruptions), "aux_attention": o.attention}

    def gamma(self, epoch: float) -> float:
        """The penalty weight at ``epoch``, a step's position in epochs (epoch + step / steps)."""
        o = self.options
        return (
            o.penalty_weight if (o.penalty and not o.shared_head and epoch >= o.penalty_start_epoch) else 0.0
        )

    def epoch_info(self, epoch: float) -> dict:
        return {"gamma": self.gamma(epoch)}

    def loss(self, model, inputs, views, y, epoch) -> StepOutput:
        o = self.options
        net = getattr(model, "module", model)  # the bare model under DDP (for its head layers)
        heads = "primary" if o.shared_head else "per_view"
        logits = model(
            inputs, views=views, heads=heads, selective=o.selective_bn, running_stats=o.sbn_running_stats
        )
        ces = cross_entropy_per_view(logits, y)
        names = [term_name(s) for s in self.corruption_specs()]
        terms = {"ce_primary": ces[0]}
        for name, ce in zip(names, ces[1:]):
            terms[f"ce_aux_{name}"] = o.alpha * ce
        for name, z in zip(names, logits[1:]):
            if o.beta == 0:
                continue
            isd = 0.0
            if o.distill_direction in ("primary_to_aux", "both"):
                isd = isd + soft_cross_entropy(logits[0], z, o.temperature)
            if o.distill_direction in ("aux_to_primary", "both"):
                isd = isd + soft_cross_entropy(z, logits[0], o.temperature)
            terms[f"isd_{name}"] = o.beta * isd
        gamma = self.gamma(epoch)
        # always present (0 while off) so the metrics columns stay the same all run
        terms["penalty"] = gamma * head_penalty(net.head_linears()) if gamma > 0 else ces[0].new_zeros(())
        total = sum(terms.values())
        return StepOutput(total, {k: v.detach() for k, v in terms.items()}, logits[0].detach())
