"""`robustbench_aux.benchmark(model, dataset=..., data_dir=...)`: RobustBench's (clean_acc, corruptions_acc)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fixtures_runs import TinyEvalCNN, write_cifar_c

import robustbench_aux
from robustbench_aux.catalog import BENCHMARK_15, SEVERITIES
from robustbench_aux.datasets import CifarCReader
from robustbench_aux.errors import UserError

N = 20


@pytest.fixture(scope="module")
def data_dir(cifar10, cifar10_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    (root / "cifar10").symlink_to(cifar10_root / "cifar10")
    write_cifar_c(root / "CIFAR-10-C", cifar10.test_x[:N], cifar10.test_y[:N], BENCHMARK_15, manifest=False)
    return root


def _acc(model, x, y):
    with torch.no_grad():
        t = torch.from_numpy(np.array(x)).permute(0, 3, 1, 2).float() / 255
        return float((model(t).argmax(1).numpy() == np.asarray(y)).mean())


def test_one_liner_matches_a_direct_computation(data_dir, cifar10):
    torch.manual_seed(0)
    model = TinyEvalCNN(10).eval()
    clean_acc, corruptions_acc = robustbench_aux.benchmark(
        model, dataset="cifar10", data_dir=data_dir, n=N, device="cpu"
    )
    assert clean_acc == pytest.approx(_acc(model, cifar10.test_x[:N], cifar10.test_y[:N]))
    reader = CifarCReader(data_dir / "CIFAR-10-C")
    blocks = [reader.block(c, s) for c in BENCHMARK_15 for s in SEVERITIES]
    assert len(blocks) == 75
    assert corruptions_acc == pytest.approx(np.mean([_acc(model, b.images, b.labels) for b in blocks]))


def test_the_result_also_carries_calibration(data_dir, cifar10):
    from robustbench_aux.metrics.calibration import (
        CALIBRATION_COLUMNS,
        block_calibration,
        scores_from_probabilities,
    )

    torch.manual_seed(0)
    model = TinyEvalCNN(10).eval()
    res = robustbench_aux.benchmark(model, dataset="cifar10", data_dir=data_dir, n=N, device="cpu")
    assert res == (res.clean_acc, res.corruptions_acc) and len(res) == 2
    assert set(res.calibration) == {"clean", "corruptions"}
    assert set(res.calibration["clean"]) == set(CALIBRATION_COLUMNS)
    x, y = cifar10.test_x[:N], cifar10.test_y[:N]
    with torch.no_grad():
        p = torch.softmax(model(torch.from_numpy(np.array(x)).permute(0, 3, 1, 2).float() / 255).double(), 1)
    want = block_calibration(p.numpy().argmax(1) == y, scores_from_probabilities(p.numpy(), y))
    for k in CALIBRATION_COLUMNS:
        assert res.calibration["clean"][k] == pytest.approx(want[k], abs=1e-5)
    blocks = res.table[res.table["corruption"].isin(BENCHMARK_15)]
    assert res.calibration["corruptions"]["ece"] == pytest.approx(blocks["ece"].mean())


def test_incomplete_or_other_data_is_refused(data_dir, tmp_path, cifar10):
    model = TinyEvalCNN(10).eval()
    write_cifar_c(tmp_path / "part", cifar10.test_x[:N], cifar10.test_y[:N], BENCHMARK_15[:3])
    with pytest.raises(UserError, match="lacks 12 corruption file"):
        robustbench_aux.benchmark(model, "cifar10", data_dir, corruptions_dir=tmp_path / "part", device="cpu")
    with pytest.raises(UserError, match="covers cifar10 and cifar100"):
        robustbench_aux.benchmark(model, "synthetic10", data_dir)
    with pytest.raises(UserError, match="does not exist"):
        robustbench_aux.benchmark(model, "cifar100", data_dir)
