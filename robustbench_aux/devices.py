"""Turning a ``--device`` value into a torch device (one rule for training and evaluation)."""

from __future__ import annotations

import torch

from robustbench_aux.errors import UserError


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``auto`` -> CUDA when available, else the CPU; ``cuda`` without a GPU is a UserError."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda requested but no CUDA device is available; use --device cpu")
    return device
