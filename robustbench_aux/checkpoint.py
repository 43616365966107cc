"""Checkpoint files: tensors and primitives only, written atomically, loaded with ``weights_only=True``.

A checkpoint is a dict::

    {"format": "robustbench-aux/1",
     "model": {"arch": str, "kwargs": {...}},   # rebuilds the model via models.build_model
     "state_dict": {...},                       # the model's parameters and buffers
     "config": {...},                           # the resolved run config (JSON-able)
     ...}                                       # training state in last.pt (optimizer, epoch, rng)

A run directory holds ``final.pt`` when training finished and ``last.pt`` while it runs.
Only finite tensors are ever written (:func:`save_checkpoint` refuses NaN/inf in parameters and
buffers) and :func:`load_classifier` refuses a checkpoint holding any.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from robustbench_aux.errors import NonFiniteError, UserError
from robustbench_aux.infra import atomic
from robustbench_aux.rundir import FINAL_PT, LAST_PT

FORMAT = "robustbench-aux/1"


def nonfinite_tensors(state: dict) -> list[str]:
    """Names of the floating-point tensors of ``state`` (nested dicts too) holding NaN or inf."""
    bad: list[str] = []

    def visit(obj, prefix: str) -> None:
        if isinstance(obj, torch.Tensor):
            if (obj.is_floating_point() or obj.is_complex()) and not bool(torch.isfinite(obj).all()):
                bad.append(prefix)
        elif isinstance(obj, dict):
            for k, v in obj.items():
                visit(v, f"{prefix}.{k}" if prefix else str(k))
        elif isinstance(obj, (list, tuple)):
            for i, v in enumerate(obj):
                visit(v, f"{prefix}[{i}]")

    visit(state, "")
    return bad


def save_checkpoint(
    path: str | Path, *, arch: str, model_kwargs: dict, state_dict: dict, config: dict, **extra
):
    """Write a checkpoint atomically (a killed write leaves the previous file intact).

    Raises :class:`NonFiniteError` (and writes nothing) if a parameter or buffer is NaN or infinite.
    """
    bad = nonfinite_tensors(state_dict)
    if bad:
        raise NonFiniteError(
            f"not writing {path}: {len(bad)} tensor(s) of the model are NaN or infinite "
            f"(e.g. {', '.join(bad[:3])})"
        )
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
        for name in (FINAL_PT, LAST_PT):
            if (path / name).is_file():
                return path / name
        raise UserError(
            f"{path} holds no final.pt or last.pt; train it first (robustbench-aux train --out {path})"
        )
    raise UserError(f"no such run directory or checkpoint: {path}")


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load and check a checkpoint file; every failure is a one-line UserError."""
    path = find_checkpoint(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        # torch's message advises weights_only=False: wrong advice for a file that may be malicious
        raise UserError(
            f"refusing checkpoint {path}: it holds objects other than tensors and plain values "
            "(a robustbench-aux checkpoint never does; do not load it from an untrusted source)"
        ) from None
    except Exception as exc:  # truncated zip, wrong file type
        first = (str(exc).strip().splitlines() or [""])[0][:160]
        raise UserError(
            f"cannot read checkpoint {path} ({type(exc).__name__}: {first}); it may be truncated"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(f"{path} is not a robustbench-aux checkpoint (format {FORMAT})")
    model = ckpt.get("model")
    if not (
        isinstance(model, dict)
        and isinstance(model.get("arch"), str)
        and isinstance(model.get("kwargs"), dict)
    ):
        raise UserError(
            f"{path} is damaged: its 'model' entry must hold 'arch' (a name) and 'kwargs' (a table)"
        )
    if not isinstance(ckpt.get("state_dict"), dict):
        raise UserError(f"{path} is damaged: it holds no 'state_dict' of tensors")
    if not isinstance(ckpt.get("config", {}), dict):
        raise UserError(f"{path} is damaged: its 'config' entry must be a table")
    return ckpt


def load_classifier(path: str | Path, device: str | torch.device = "cpu"):
    """Rebuild a run's model from its checkpoint, in eval mode. Returns ``(model, config)``.

    The model takes float images in [0, 1] (B, 3, H, W) and normalizes them itself with the
    statistics of its run's config; its eval-mode forward is the primary classifier only.
    """
    from robustbench_aux.models import build_model

    ckpt = load_checkpoint(path, map_location="cpu")
    spec = ckpt["model"]
    bad = nonfinite_tensors(ckpt["state_dict"])
    if bad:
        raise UserError(
            f"refusing {find_checkpoint(path)}: {len(bad)} tensor(s) are NaN or infinite "
            f"(e.g. {', '.join(bad[:3])}); the run diverged, retrain it with a lower learning rate"
        )
    try:
        model = build_model(spec["arch"], **spec["kwargs"])
    except TypeError as exc:
        raise UserError(
            f"{find_checkpoint(path)}: cannot rebuild {spec['arch']!r} from its kwargs ({exc})"
        ) from None
    try:
        missing, unexpected = model.load_state_dict(ckpt["state_dict"], strict=False)
    except RuntimeError as exc:  # shape mismatch
        first = (str(exc).strip().splitlines() or [""])[-1].strip()[:160]
        raise UserError(
            f"{find_checkpoint(path)} does not match architecture {spec['arch']!r} ({first})"
        ) from None
    if missing or unexpected:
        raise UserError(
            f"{find_checkpoint(path)} does not match architecture {spec['arch']!r} "
            f"(missing {list(missing)[:3]}, unexpected {list(unexpected)[:3]})"
        )
    return model.to(device).eval(), ckpt.get("config", {})
