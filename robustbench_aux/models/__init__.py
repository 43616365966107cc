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


# Architectures register themselves on import (after MODELS exists: they import it from here).
from robustbench_aux.models import resnet as _resnet  # noqa: E402,F401
from robustbench_aux.models import wrn as _wrn  # noqa: E402,F401
from robustbench_aux.models.classifier import CifarClassifier  # noqa: E402
from robustbench_aux.models.selective_bn import SelectiveBatchNorm2d, selective_bn  # noqa: E402

__all__ = ["MODELS", "CifarClassifier", "SelectiveBatchNorm2d", "build_model", "selective_bn"]
