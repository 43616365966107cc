"""Training methods registry. Each method is a small module: options, batch composition, loss.

``METHODS.get(name)`` is a :class:`~robustbench_aux.methods.base.Method` subclass; build one with
``build_method(name, options, crop_padding=..., flip=...)``.
"""

from __future__ import annotations

from robustbench_aux.registry import Registry

METHODS = Registry("method")


def build_method(name: str, options=None, **kwargs):
    """An instance of method ``name`` with ``options`` (its Options dataclass; defaults if None)."""
    cls = METHODS.get(name)
    return cls(options if options is not None else cls.Options(), **kwargs)


# Methods register themselves on import (after METHODS exists).
from robustbench_aux.methods import augmentation as _augmentation  # noqa: E402,F401
from robustbench_aux.methods import augmix as _augmix  # noqa: E402,F401
from robustbench_aux.methods import auxiliary as _auxiliary  # noqa: E402,F401
from robustbench_aux.methods import plain as _plain  # noqa: E402,F401

__all__ = ["METHODS", "build_method"]
