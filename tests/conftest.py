"""Shared fixtures: the real CIFAR-10 copy, synthetic data, a tmp data root, CPU thread limits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# One intra-op thread: on 2 shared cores, 2 threads made tiny-model steps many times slower.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]


def shared_data_root() -> Path | None:
    """``$ROBUSTBENCH_AUX_SHARED_DATA`` or ``../shared/data`` beside the checkout, if it holds cifar10."""
    env = os.environ.get("ROBUSTBENCH_AUX_SHARED_DATA")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if (cand / "cifar10" / "test_x.npy").is_file():
            return cand
    return None


@pytest.fixture(scope="session")
def cifar10_root() -> Path:
    root = shared_data_root()
    if root is None:
        pytest.skip("real CIFAR-10 copy not found: set ROBUSTBENCH_AUX_SHARED_DATA or place ../shared/data")
    return root


@pytest.fixture(scope="session")
def cifar10(cifar10_root):
    from robustbench_aux.datasets import load_dataset

    return load_dataset("cifar10", cifar10_root)


@pytest.fixture(scope="session")
def synthetic100():
    from robustbench_aux.datasets import make_synthetic

    return make_synthetic(100, n_train=2000, n_test=500, seed=0)
