"""Model registry. Architectures register themselves with ``@MODELS.register(name, tags=...)``.

``build_model(arch, **kwargs)`` builds one; checkpoints store ``arch`` and the kwargs so a run's
model can be rebuilt exactly (see ``robustbench_aux.checkpoint``).
"""

from __future__ import annotations

from robustbench_aux.registry import Registry

MODELS = Registry("model")


def build_model(arch: str, **kwargs):
    """Build the registered architecture ``arch`` with ``kwargs`` (a "did you mean" error if unknown)."""
    return MODELS.get(arch)(**kwargs)
