"""Batched inference: uint8 NHWC arrays in, predicted labels out, on any device.

The whole batch is converted on the device (uint8 -> float [0, 1], NHWC -> NCHW) in one tensor op;
no per-image Python work. Models take float [0, 1] images and normalize internally; a foreign
model that expects normalized input is wrapped in :class:`Normalized` with explicit statistics.

Batch size: 256 images on a CPU. On a CUDA device it is sized to the device's total memory, 1024
images per 16 GiB as a power of two in [1024, 8192] (fewer, larger batches: fewer kernel
launches). That rule is an estimate from activation sizes, not a measurement: a CIFAR ResNet's
widest inference activations take about 0.25 MiB (ResNet-18) to 1 MiB (bottleneck ResNets) per
image and map, about three maps live at once, so 8192 images need roughly 6 GiB (ResNet-18) to
24 GiB (bottleneck ResNets), while only GPUs of 128 GiB or more start at 8192. Whatever the
start, a batch that raises CUDA out of memory is halved and tried again (:class:`EvalBatch`), down
to one image; the evaluation keeps the size it settled on and logs it (``EvalBatch.size``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import nullcontext

import numpy as np
import torch
from torch import nn

from robustbench_aux.errors import NonFiniteError, UserError

log = logging.getLogger(__name__)

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class Normalized(nn.Module):
    """``model((x - mean) / std)`` for a model that expects normalized input; x is float [0, 1]."""

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise UserError(f"normalization needs 3 means and 3 positive stds, got mean={mean} std={std}")
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)


def to_device_batch(images: np.ndarray, device: torch.device, channels_last: bool = False) -> torch.Tensor:
    """uint8 (B, H, W, 3) numpy -> float (B, 3, H, W) in [0, 1] on ``device``; the cast runs there."""
    # a copy (memmaps are read-only); the uint8 batch crosses to the device, 4x fewer bytes than float.
    # No per-batch pin_memory(): allocating pinned memory each batch costs more than it saves here.
    x = torch.from_numpy(np.array(images, dtype=np.uint8, order="C")).to(device)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    return x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def _autocast(device: torch.device, precision: str):
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    dtype = PRECISIONS[precision]
    return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


CPU_BATCH = 256  # images per forward pass on a CPU (cache-friendly)
GPU_BATCH_MIN, GPU_BATCH_MAX = 1024, 8192
GIB_PER_1024_IMAGES = 16  # the CUDA default: 1024 images per 16 GiB of device memory (module doc)


def default_batch_size(device: torch.device | str) -> int:
    """Images per forward pass: 256 on a CPU; on a CUDA device sized to its total memory, 1024
    images per 16 GiB as a power of two between 1024 and 8192 (16-24 GiB: 1024, 80 GiB: 4096,
    an H200, about 140 GiB: 8192). A batch that does not fit is halved (:class:`EvalBatch`)."""
    device = torch.device(device)
    if device.type != "cuda":
        return CPU_BATCH
    index = device.index if device.index is not None else torch.cuda.current_device()
    total = torch.cuda.get_device_properties(index).total_memory
    fits = int(total / 2**30 / GIB_PER_1024_IMAGES * 1024)
    return max(GPU_BATCH_MIN, min(GPU_BATCH_MAX, 1 << max(fits, 1).bit_length() - 1))


class EvalBatch:
    """The batch size of an evaluation, shared by its :func:`predict_labels` calls.

    It starts at ``batch_size`` (default :func:`default_batch_size`) and halves whenever a batch
    raises ``torch.cuda.OutOfMemoryError`` (the cache is emptied and the same images are tried
    again, so no prediction is lost or repeated); later calls keep the smaller size. ``size`` is the
    size the evaluation settled on (what it records); ``start`` the one it began with.
    """

    def __init__(self, device: torch.device | str, batch_size: int | None = None):
        self.device = torch.device(device)
        if batch_size is not None and batch_size < 1:
            raise UserError(f"batch size must be at least 1, got {batch_size}")
        self.start = self.size = int(batch_size or default_batch_size(self.device))
        self.explicit = batch_size is not None
        log.debug("evaluation batches of %d images on %s", self.size, self.device)

    def out_of_memory(self) -> None:
        """Halve after an out-of-memory batch (and free the CUDA cache); a UserError at size 1."""
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        if self.size <= 1:
            raise UserError(
                f"the model does not fit in the memory of {self.device} even one image at a time (CUDA out "
                "of memory); free the device (other processes on it?) or evaluate with --device cpu"
            )
        self.size //= 2
        log.warning(
            "CUDA out of memory with batches of %d images on %s; evaluating with %d from here on%s",
            self.size * 2,
            self.device,
            self.size,
            f" (asked for {self.start})" if self.explicit else "",
        )


def _check_finite(nonfinite: torch.Tensor, n: int) -> None:
    bad = int(nonfinite)
    if bad:
        raise NonFiniteLogits(
            f"the model's logits are NaN or infinite for {bad:,} of {n:,} images; such outputs "
            "are not predictions (check the model and its weights; with --precision fp16/bf16 try fp32)"
        )


def image_scores(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per image (float32, shape (B, 3)): the confidence max_k p_k, the NLL −ln p_y and the Brier
    score Σ_k (p_k − 1[k = y])² of the softmax p of ``logits``, computed in float32 whatever dtype
    the forward ran in (bf16 / fp16 logits are converted first: the cast is exact)."""
    logp = torch.log_softmax(logits.float(), dim=1)
    p = logp.exp()
    rows = torch.arange(len(labels), device=logits.device)
    p_y = p[rows, labels]
    # Σ_k (p_k − 1[k = y])² = Σ_k p_k² − 2 p_y + 1, each term in float32
    brier = (p * p).sum(dim=1) - 2.0 * p_y + 1.0
    return torch.stack([p.max(dim=1).values, -logp[rows, labels], brier.clamp_(min=0.0)], dim=1)


def _forward(model, images, labels, batch, device, precision, channels_last):
    """Run ``model`` over ``images`` in batches: (top-1 predictions, scores or None, non-finite count)."""
    preds, scores = [], []
    nonfinite = torch.zeros((), dtype=torch.int64, device=device)
    y_all = None if labels is None else torch.from_numpy(np.asarray(labels, np.int64)).to(device)
    lo = 0
    with _autocast(device, precision):
        while lo < len(images):
            hi = min(lo + batch.size, len(images))
            score = None
            try:
                x = to_device_batch(images[lo:hi], device, channels_last)
                logits = model(x)
                pred = logits.argmax(dim=1)  # on the logits as the model returned them (bit-identical)
                nonfinite += (~torch.isfinite(logits)).any(dim=1).sum()
                if y_all is not None:
                    with torch.autocast(device.type, enabled=False):
                        score = image_scores(logits, y_all[lo:hi])
                logits = None
            except torch.cuda.OutOfMemoryError:
                pred = None  # handled below, once the exception and the tensors its frames hold are gone
            x = None
            if pred is None:
                batch.out_of_memory()  # halves batch.size (or raises at 1); the same images again
                continue
            preds.append(pred)
            if score is not None:
                scores.append(score)
            lo = hi
    return preds, scores, nonfinite


def _batch_of(batch_size, device) -> EvalBatch:
    return batch_size if isinstance(batch_size, EvalBatch) else EvalBatch(device, batch_size)


@torch.inference_mode()
def predict_labels(
    model: nn.Module,
    images: np.ndarray,
    *,
    batch_size: int | EvalBatch | None = None,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    channels_last: bool | None = None,
) -> np.ndarray:
    """Top-1 predictions (int64, shape (N,)) for uint8 NHWC ``images``; ``model`` must be on ``device``.

    Logits holding NaN or inf are not predictions: a :class:`NonFiniteLogits` error (exit status 3)
    counting the images concerned. The check stays on the device (one count, read with the labels).

    ``batch_size``: an int, None (:func:`default_batch_size`) or an :class:`EvalBatch` shared with
    other calls, which then also tells the caller the size actually used (``.size``). On CUDA out
    of memory the batch is halved and retried. ``precision`` is ``fp32`` (exact), ``bf16`` or
    ``fp16`` (autocast). :func:`predict_scores` also returns each image's calibration scores.
    """
    device = torch.device(device)
    batch = _batch_of(batch_size, device)
    # NHWC convolutions: faster on tensor cores, and 10-30 % faster with oneDNN on a CPU (measured)
    channels_last = True if channels_last is None else channels_last
    preds, _, nonfinite = _forward(model, images, None, batch, device, precision, channels_last)
    if not preds:
        return np.zeros(0, np.int64)
    out = torch.cat(preds).cpu().numpy().astype(np.int64)
    _check_finite(nonfinite, len(images))
    return out


@torch.inference_mode()
def predict_scores(
    model: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int | EvalBatch | None = None,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    channels_last: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`predict_labels` plus, per image, float32 (confidence, NLL, Brier) of the softmax
    (:func:`image_scores`): ``(predictions (N,) int64, scores (N, 3) float32)``. The predictions
    are the same as :func:`predict_labels`' (the argmax of the same logits)."""
    device = torch.device(device)
    if len(labels) != len(images):
        raise UserError(f"{len(images)} images but {len(labels)} labels")
    batch = _batch_of(batch_size, device)
    channels_last = True if channels_last is None else channels_last
    preds, scores, nonfinite = _forward(model, images, labels, batch, device, precision, channels_last)
    if not preds:
        return np.zeros(0, np.int64), np.zeros((0, 3), np.float32)
    out = torch.cat(preds).cpu().numpy().astype(np.int64)
    _check_finite(nonfinite, len(images))
    return out, torch.cat(scores).cpu().numpy().astype(np.float32, copy=False)


class NonFiniteLogits(NonFiniteError):
    """A model returned NaN or infinite logits (exit status 3): nothing is scored for that block."""


@torch.inference_mode()
def output_classes(model: nn.Module, device: torch.device, size: int = 32) -> int:
    """The number of logits ``model`` returns for one image (checked before any evaluation)."""
    x = torch.zeros(1, 3, size, size, device=device)
    out = model(x)
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        raise UserError(
            f"the model returned {type(out).__name__} of shape {getattr(out, 'shape', '?')}, expected "
            "logits (B, num_classes); wrap it so its forward returns the primary classifier's logits"
        )
    return int(out.shape[1])
