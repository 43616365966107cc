"""Make imagecorruptions 1.1.2 (its latest release) import and run on numpy 2 and scikit-image >= 0.20.

Three breakages, each fixed by rebinding a name *inside* ``imagecorruptions.corruptions`` only;
numpy, scikit-image and setuptools themselves are never modified:

- ``gaussian(..., multichannel=True)``: scikit-image 0.20 removed ``multichannel``; the module's
  ``gaussian`` is replaced by a wrapper that passes ``channel_axis=-1`` instead.
- ``np.float_`` (fog's plasma fractal): removed in numpy 2.0; the module's ``np`` becomes a view
  of numpy that also answers ``float_`` (= ``np.float64``).
- ``from pkg_resources import resource_filename``: pkg_resources is gone from setuptools >= 82;
  if it cannot be imported, a stand-in exposing only ``resource_filename`` is visible in
  ``sys.modules`` for the duration of the import and removed afterwards.

Used by the fidelity comparison, the speed benchmark and anyone who wants the original.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from robustbench_aux.errors import UserError

_PATCHED_FLAG = "_robustbench_aux_compat"


class _NumpyWithFloat(types.ModuleType):
    """numpy as seen by imagecorruptions: every attribute forwarded, plus the removed ``float_``."""

    float_ = np.float64

    def __getattr__(self, name):
        return getattr(np, name)


def _gaussian_compat(image, sigma=1, *args, multichannel=None, **kwargs):
    """skimage.filters.gaussian accepting the removed ``multichannel`` keyword."""
    from skimage.filters import gaussian

    if multichannel:
        kwargs.setdefault("channel_axis", -1)
    return gaussian(image, sigma, *args, **kwargs)


def _resource_filename_standin():
    def resource_filename(package: str, resource: str) -> str:
        spec = importlib.util.find_spec(package)
        base = Path(spec.origin).parent if spec and spec.origin else Path(".")
        return str(base / resource)

    module = types.ModuleType("pkg_resources")
    module.resource_filename = resource_filename
    return module


def load_imagecorruptions():
    """Import imagecorruptions with the compatibility fixes applied to its module; returns the package."""
    standin = None if importlib.util.find_spec("pkg_resources") else _resource_filename_standin()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pkg_resources' own deprecation warning
        if standin is not None and "imagecorruptions.corruptions" not in sys.modules:
            sys.modules["pkg_resources"] = standin
        try:
            package = importlib.import_module("imagecorruptions")
        except ImportError as exc:
            raise UserError(
                f"cannot import imagecorruptions ({exc}); pip install 'robustbench-aux[fidelity]' (or imagecorruptions==1.1.2)"
            ) from None
        finally:
            if standin is not None and sys.modules.get("pkg_resources") is standin:
                del sys.modules["pkg_resources"]
    module = sys.modules["imagecorruptions.corruptions"]
    if not getattr(module, _PATCHED_FLAG, False):
        module.np = _NumpyWithFloat("numpy")
        module.gaussian = _gaussian_compat
        setattr(module, _PATCHED_FLAG, True)
    return package


@contextmanager
def preserved_numpy_rng():
    """Restore numpy's global RNG state afterwards (the reference can only be seeded through it)."""
    state = np.random.get_state()
    try:
        yield
    finally:
        np.random.set_state(state)


def reference_corrupt(images: np.ndarray, name: str, severity: int, seeds=None) -> np.ndarray:
    """imagecorruptions' ``corrupt`` over uint8 (N, H, W, 3) images, one at a time (its only mode).

    ``seeds``: per-image seeds for numpy's global RNG (the reference draws from it), or None;
    the global RNG state is restored afterwards either way.
    """
    package = load_imagecorruptions()
    out = np.empty_like(images)
    with warnings.catch_warnings(), preserved_numpy_rng():
        warnings.simplefilter("ignore")  # spatter's 0/0 and np.uint8(nan) at some draws
        for i, img in enumerate(images):
            if seeds is not None:
                np.random.seed(int(seeds[i]))
            out[i] = package.corrupt(np.ascontiguousarray(img), corruption_name=name, severity=int(severity))
    return out
