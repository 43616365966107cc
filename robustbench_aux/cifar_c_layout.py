"""A CIFAR-C directory's file names, in one place (the published CIFAR-10-C / CIFAR-100-C layout,
which this suite's generated copies and CIFAR-C-bar share).

``datasets/`` reads and downloads such a directory, ``corruptions/`` generates one and
``evaluation/`` checks its files against the manifest: each spells the files through this module.
It imports nothing, so it sits at the bottom of the import order, beside ``rundir.py``.
"""

from __future__ import annotations

MANIFEST = "manifest.json"  # a generated directory's settings, versions and per-file sha256
LABELS_NPY = "labels.npy"  # the n test labels tiled once per severity


def corruption_npy(corruption: str) -> str:
    """``<corruption>.npy``: one corruption's images, its severity blocks stacked."""
    return f"{corruption}.npy"
