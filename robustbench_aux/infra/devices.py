"""Turning a ``--device`` value into a torch device (one rule for training and evaluation)."""

from __future__ import annotations

import torch

from robustbench_aux.errors import UserError


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``auto`` -> CUDA when available, else the CPU; ``cuda`` without a GPU is a UserError."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise UserError(f"unknown device {str(device)[:60]!r}; use cpu, cuda, cuda:N or auto") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"unsupported device {str(device)!r}; use cpu, cuda, cuda:N or auto")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda requested but no CUDA device is available; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    return device


def set_threads(threads: int | None) -> int:
    """Use ``threads`` intra-op CPU threads in this process (``None``: keep torch's default, which
    is ``$OMP_NUM_THREADS`` or the number of cores); returns the number in use. A thread count
    changes only the speed and the last bits of float sums (docs/training.md, "CPU speed")."""
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise UserError(f"--threads must be a positive integer, got {threads!r}")
        torch.set_num_threads(threads)
    return torch.get_num_threads()
