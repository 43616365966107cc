"""``augmix``: AugMix (Hendrycks et al., ICLR 2020) with the Jensen-Shannon consistency loss.

Views: the crop/flipped clean image x and two AugMix images of that same crop. An AugMix image is
``(1 - m) * x + m * sum_i w_i * chain_i(x)`` with ``width`` chains of ``depth`` random ops
(``depth = 0``: 1 to 3 ops, drawn per image and chain as the official code does), w ~ Dirichlet(alpha), m ~ Beta(alpha, alpha). Loss:
``CE(z_clean, y) + jsd_weight * JS(p_clean, p_aug1, p_aug2)``, all three views in one batch with
ordinary BN, as in the AugMix code. Augmentation runs batched on the device (no DataLoader).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from robustbench_aux.errors import UserError
from robustbench_aux.methods import METHODS
from robustbench_aux.methods.augmix_ops import random_chain_step
from robustbench_aux.methods.base import Method, StepOutput, at_least_fp32
from robustbench_aux.methods.crop_flip import random_crop_flip


@dataclass
class AugMixOptions:
    severity: float = 3.0  # op strength out of 10
    width: int = 3  # chains mixed per image
    depth: int = 0  # ops per chain; 0 = random 1..3 per image and chain
    alpha: float = 1.0  # Dirichlet and Beta concentration
    jsd_weight: float = 12.0  # lambda of the JS consistency term
    jsd: bool = True  # false: plain CE on one AugMix view (AugMix without the consistency loss)

    def validate(self) -> None:
        if not (0 < self.severity <= 10) or self.width < 1 or self.depth < 0 or self.alpha <= 0:
            raise UserError(
                "augmix options out of range: need 0 < severity <= 10, width >= 1, depth >= 0, alpha > 0 "
                f"(got {self.severity}, {self.width}, {self.depth}, {self.alpha})"
            )


def jensen_shannon(logits: list[torch.Tensor]) -> torch.Tensor:
    """Mean over views of KL(p_view || p_mixture), batch mean (AugMix's JS consistency).

    The targets enter as log-probabilities (``log_target``): with probabilities, a class whose
    softmax underflows to exactly 0 (logit gaps above ~100, seen early in training at lr 0.1) makes
    the gradient log(0) * 0 = NaN although the loss itself is finite."""
    log_probs = [F.log_softmax(at_least_fp32(z), dim=1) for z in logits]
    log_mix = torch.clamp(sum(lp.exp() for lp in log_probs) / len(log_probs), 1e-7, 1.0).log()
    terms = [F.kl_div(log_mix, lp, reduction="batchmean", log_target=True) for lp in log_probs]
    return sum(terms) / len(terms)


@METHODS.register("augmix", tags=("baseline", "external"))
class AugMix(Method):
    """AugMix (Hendrycks et al., ICLR 2020): clean + 2 AugMix views, CE + Jensen-Shannon consistency."""

    Options = AugMixOptions
    name = "augmix"

    def _mixing_weights(self, n: int, generator, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, width) Dirichlet weights and (n,) Beta mixing factors, reproducible from ``generator``."""
        seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=device).item())
        rng = np.random.default_rng(seed)
        w = rng.dirichlet([self.options.alpha] * self.options.width, size=n)
        m = rng.beta(self.options.alpha, self.options.alpha, size=n)
        return torch.as_tensor(w, dtype=torch.float32, device=device), torch.as_tensor(
            m, dtype=torch.float32, device=device
        )

    def augment(self, x: torch.Tensor, generator) -> torch.Tensor:
        """One AugMix image per input image: float in [0, 1]."""
        o = self.options
        w, m = self._mixing_weights(x.shape[0], generator, x.device)
        mix = torch.zeros(x.shape, dtype=torch.float32, device=x.device)
        for i in range(o.width):
            if o.depth:
                depth = torch.full((x.shape[0],), o.depth, device=x.device)
            else:
                depth = torch.randint(1, 4, (x.shape[0],), generator=generator, device=x.device)
            chain = x.clone()
            for step in range(int(depth.max())):
                sel = (depth > step).nonzero().flatten()  # images whose chain has a step `step`
                chain[sel] = random_chain_step(chain[sel], o.severity, generator)
            mix += w[:, i].view(-1, 1, 1, 1) * chain.float()
        clean = x.float()
        # a convex combination of pixels in [0, 255]; the clamp removes float32 rounding beyond it
        return (((1 - m).view(-1, 1, 1, 1) * clean + m.view(-1, 1, 1, 1) * mix) / 255.0).clamp_(0, 1)

    def views(self, x, generator):
        base = random_crop_flip(x, generator, self.crop_padding, self.flip)
        if not self.options.jsd:
            return [self.augment(base, generator)]
        return [base, self.augment(base, generator), self.augment(base, generator)]

    def loss(self, model, inputs, views, y, epoch) -> StepOutput:
        logits = (
            model(inputs, views=views, heads="primary", selective=False) if views > 1 else [model(inputs)]
        )
        ce = F.cross_entropy(at_least_fp32(logits[0]), y)
        terms = {"ce": ce}
        if views > 1:
            terms["jsd"] = self.options.jsd_weight * jensen_shannon(logits)
        return StepOutput(sum(terms.values()), {k: v.detach() for k, v in terms.items()}, logits[0].detach())
