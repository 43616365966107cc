"""Selective batch normalization (SBN) in one pass over a concatenated multi-view batch.

In training, a batch of ``chunks * B`` images is ``chunks`` views of the same ``B`` images stacked
along dim 0 (view 0 = clean). Every chunk is normalized with its own batch mean and variance,
the affine parameters are shared, and the running statistics are updated from chunk 0 only.
This equals ``chunks`` separate forward passes of an ordinary BatchNorm2d with the running
statistics restored after every pass but the clean one (the reference code's form), in one
large batch instead of several small ones.

With ``update_all`` set (the ``no_sbn_per_view`` ablation) every chunk in turn updates the running
statistics, as separate per-view passes of ordinary BN without the restore would.

With ``chunks == 1`` (the default) or in eval mode the layer is exactly ``nn.BatchNorm2d``; its
state dict is the same, so checkpoints load into plain BN models too.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn as nn
import torch.nn.functional as F


class SelectiveBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` that normalizes each of ``self.chunks`` batch chunks separately in training."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.chunks = 1  # plain attribute, not a buffer: set per step by ``selective_bn(model, k)``
        self.update_all = False  # every chunk updates the running statistics (not only chunk 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.chunks
        if k == 1 or not self.training:
            return super().forward(x)
        if x.shape[0] % k:
            raise ValueError(f"selective BN: batch of {x.shape[0]} does not split into {k} equal view chunks")
        # Chunks along dim 0 are contiguous views: one native (fused) BN per chunk is the fastest
        # exact form on the CPU; only chunks that pass the running buffers (chunk 0, or every chunk
        # in turn with ``update_all``) update them. The convolutions around this layer still see the
        # whole concatenated batch.
        outs = []
        for i, chunk in enumerate(x.chunk(k)):
            update = i == 0 or self.update_all
            momentum = self._momentum_for_this_step() if update else 0.0
            outs.append(
                F.batch_norm(
                    chunk,
                    self.running_mean if update else None,
                    self.running_var if update else None,
                    self.weight,
                    self.bias,
                    True,
                    momentum,
                    self.eps,
                )
            )
        return torch.cat(outs)

    def _momentum_for_this_step(self) -> float:
        """nn.BatchNorm2d's momentum rule (cumulative average when ``momentum`` is None)."""
        if not self.track_running_stats:
            return 0.0
        self.num_batches_tracked.add_(1)
        if self.momentum is None:
            return 1.0 / float(self.num_batches_tracked)
        return self.momentum


def set_bn_chunks(module: nn.Module, chunks: int, update_all: bool = False) -> None:
    """Set the number of view chunks of every SelectiveBatchNorm2d inside ``module`` (and whether
    every chunk updates the running statistics)."""
    for m in module.modules():
        if isinstance(m, SelectiveBatchNorm2d):
            m.chunks = int(chunks)
            m.update_all = bool(update_all)


@contextmanager
def selective_bn(module: nn.Module, chunks: int, update_all: bool = False):
    """Within the block, SBN layers of ``module`` normalize ``chunks`` view chunks separately
    (running statistics from chunk 0, or from every chunk in turn with ``update_all``)."""
    set_bn_chunks(module, chunks, update_all)
    try:
        yield module
    finally:
        set_bn_chunks(module, 1)


def multi_pass_reference(model: nn.Module, views: list[torch.Tensor], forward, restore: bool = True) -> list:
    """The reference code's form, for tests and benchmarks: ``forward(model, view_index, view)`` is
    called once per view with ordinary BN (one chunk); the running statistics of every BN layer
    are restored after each view but the first (clean) one (``restore = False``: not restored,
    the no_sbn_per_view ablation)."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    set_bn_chunks(model, 1)
    outs = []
    for i, v in enumerate(views):
        saved = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone()) for m in bns]
        outs.append(forward(model, i, v))
        if i > 0 and restore:
            with torch.no_grad():
                for m, (mean, var, count) in zip(bns, saved):
                    # through .data: the autograd graph of this view saved the buffers and must not see
                    # a version bump (the reference restores them the same way)
                    m.running_mean.data.copy_(mean)
                    m.running_var.data.copy_(var)
                    m.num_batches_tracked.copy_(count)
    return outs
