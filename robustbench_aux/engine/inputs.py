"""The step's input batch, assembled in persistent buffers instead of fresh tensors every step.

Per step the engine gathers the batch's uint8 images, the method turns them into views (uint8
pixels or float in [0, 1]; AugMix mixes both) and the model gets one float32 batch of all views,
each cut to this process's rows. The plain expression for that batch,
``to_float(torch.cat([to_float(v[lo:hi]) for v in views]), channels_last)``, allocates a float
copy per view, the concatenation and (channels_last) one more copy. :class:`StepBuffers` writes
each view straight into its slice of one float buffer in the model's memory format instead,
converting uint8 with the same arithmetic (an exact uint8 -> float32 copy, then ``div_(255.0)``;
float views are copied, i.e. cast to float32 as ``.float()`` does): the same numbers bit for bit.

A buffer is allocated once per (shape, dtype, device, memory format), so a run holds two per kind:
the full batch and the last partial one, and is overwritten by the next step's call. The engine
calls it after the previous step's backward and optimizer step, when autograd no longer holds the
tensor; code that keeps a batch across steps must ``clone()`` it.
"""

from __future__ import annotations

from collections import OrderedDict

import torch


class StepBuffers:
    """Persistent per-step tensors (at most ``max_buffers`` shapes kept; the oldest goes first)."""

    def __init__(self, channels_last: bool = False, max_buffers: int = 8):
        self.channels_last = channels_last
        self.max_buffers = max_buffers
        self._buffers: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self.allocations = 0  # buffers allocated so far (tests and benchmarks read it)

    def _buffer(self, role: str, shape: tuple, dtype, device, channels_last: bool) -> torch.Tensor:
        key = (role, tuple(shape), dtype, torch.device(device), channels_last)
        buf = self._buffers.get(key)
        if buf is None:
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            buf = torch.empty(shape, dtype=dtype, device=device, memory_format=fmt)
            self.allocations += 1
            self._buffers[key] = buf
            while len(self._buffers) > self.max_buffers:
                self._buffers.popitem(last=False)
        return buf

    def gather(self, source: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """``source[index]`` (rows of a contiguous tensor) written into a reused buffer."""
        out = self._buffer("gather", (len(index), *source.shape[1:]), source.dtype, source.device, False)
        return torch.index_select(source, 0, index, out=out)

    def assemble(self, views: list[torch.Tensor], lo: int, hi: int) -> torch.Tensor:
        """Rows ``lo:hi`` of every view, concatenated view after view as float32 in [0, 1] (uint8
        divided by 255, float passed through), in the buffers' memory format."""
        first = views[0]
        if first.dim() != 4 or any(v.shape != first.shape for v in views):
            shapes = [tuple(v.shape) for v in views]
            raise ValueError(f"views must be (B, C, H, W) batches of one shape, got {shapes}")
        item = tuple(first.shape[1:])
        rows = hi - lo
        out = self._buffer(
            "inputs", (rows * len(views), *item), torch.float32, first.device, self.channels_last
        )
        for j, v in enumerate(views):
            part = out[j * rows : (j + 1) * rows]
            part.copy_(v[lo:hi])
            if v.dtype == torch.uint8:
                part.div_(255.0)
        return out
