"""Checkpoint files: tensors and primitives only, written atomically, loaded with ``weights_only=True``.

A checkpoint is a dict::

    {"format": "robustbench-aux/1",
     "model": {"arch": str, "kwargs": {...}},   # rebuilds the model via models.build_model
     "state_dict": {...},                       # the model's parameters and buffers
     "config": {...},                           # the resolved run config (JSON-able)
     ...}                                       # training state in last.pt (optimizer, epoch, rng)

A run directory holds ``final.pt`` when training finished and ``last.pt`` while it runs.
"""

from __future__ import annotations

from pathlib import Path

import torch

from robustbench_aux import atomic
from robustbench_aux.errors import UserError

FORMAT = "robustbench-aux/1"


def save_checkpoint(path: str | Path, *, arch: str, model_kwargs: dict, state_dict: dict, config: dict, **extra):
    """Write a checkpoint atomically (a killed write leaves the previous file intact)."""
    payload = {
        "format": FORMAT,
        "model": {"arch": arch, "kwargs": dict(model_kwargs)},
        "state_dict": state_dict,
        "config": config,
        **extra,
    }
    return atomic.save_torch(path, payload)


def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint file as given, or a run directory's ``final.pt`` (else its ``last.pt``)."""
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        for name in ("final.pt", "last.pt"):
            if (path / name).is_file():
                return path / name
        raise UserError(f"{path} holds no final.pt or last.pt; train it first (robustbench-aux train --out {path})")
    raise UserError(f"no such run directory or checkpoint: {path}")


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load and check a checkpoint file; every failure is a one-line UserError."""
    path = find_checkpoint(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, pickle error, wrong file type
        raise UserError(f"cannot read checkpoint {path} ({type(exc).__name__}: {exc}); it may be truncated") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(f"{path} is not a robustbench-aux checkpoint (format {FORMAT})")
    return ckpt


def load_classifier(path: str | Path, device: str | torch.device = "cpu"):
    """Rebuild a run's model from its checkpoint, in eval mode. Returns ``(model, config)``.

    The model takes float images in [0, 1] (B, 3, H, W) and normalizes them itself with the
    statistics of its run's config; its eval-mode forward is the primary classifier only.
    """
    from robustbench_aux.models import build_model

    ckpt = load_checkpoint(path, map_location="cpu")
    spec = ckpt["model"]
    model = build_model(spec["arch"], **spec["kwargs"])
    missing, unexpected = model.load_state_dict(ckpt["state_dict"], strict=False)
    if missing or unexpected:
        raise UserError(
            f"{find_checkpoint(path)} does not match architecture {spec['arch']!r} "
            f"(missing {list(missing)[:3]}, unexpected {list(unexpected)[:3]})"
        )
    return model.to(device).eval(), ckpt.get("config", {})
