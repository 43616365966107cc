"""Evaluation batch size: 256 on a CPU, sized to the memory on CUDA, halved on CUDA out of memory
(tested on the CPU with a model that raises torch.cuda.OutOfMemoryError above a batch size)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from robustbench_aux.errors import UserError
from robustbench_aux.evaluation import predict
from robustbench_aux.evaluation.predict import EvalBatch, default_batch_size, predict_labels


class FitsUpTo(nn.Module):
    """A fixed random linear classifier that 'runs out of CUDA memory' for batches above ``limit``
    and records every batch size it was called with."""

    def __init__(self, limit: int, classes: int = 10):
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(3 * 8 * 8, classes)
        self.limit, self.calls = limit, []

    def forward(self, x):
        self.calls.append(len(x))
        if len(x) > self.limit:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory (fake): {len(x)} images")
        return self.linear(x.reshape(len(x), -1))


def _images(n=1000):
    return np.random.default_rng(0).integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)


def test_cpu_default_stays_256_and_batches_as_before():
    assert default_batch_size("cpu") == 256
    model = FitsUpTo(limit=10**9)
    predict_labels(model, _images(), device="cpu")
    assert model.calls == [256, 256, 256, 232]


@pytest.mark.parametrize("gib,size", [(8, 1024), (16, 1024), (24, 1024), (40, 2048), (80, 4096), (141, 8192)])
def test_cuda_default_is_sized_to_the_device_memory(monkeypatch, gib, size):
    props = SimpleNamespace(total_memory=gib * 2**30)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: props)
    assert default_batch_size("cuda:0") == size


def test_out_of_memory_halves_the_batch_and_loses_or_repeats_no_prediction(caplog):
    images = _images()
    plain = predict_labels(FitsUpTo(limit=10**9), images, batch_size=1000, device="cpu")
    model = FitsUpTo(limit=300)
    batch = EvalBatch("cpu", 1000)
    with caplog.at_level(logging.WARNING, logger=predict.__name__):
        got = predict_labels(model, images, batch_size=batch, device="cpu")
    assert got.dtype == np.int64 and np.array_equal(got, plain)  # complete, in order, identical
    assert batch.size == 250 and batch.start == 1000  # 1000 -> 500 -> 250: what the caller records
    assert model.calls == [1000, 500, 250, 250, 250, 250]
    assert "evaluating with 500" in caplog.text and "evaluating with 250" in caplog.text
    # the settled size is kept by later calls sharing the EvalBatch: no new out-of-memory attempts
    model.calls.clear()
    assert np.array_equal(predict_labels(model, images[:600], batch_size=batch, device="cpu"), plain[:600])
    assert model.calls == [250, 250, 100]


def test_out_of_memory_in_the_last_partial_batch_retries_only_that_batch():
    images = _images(700)
    plain = predict_labels(FitsUpTo(limit=10**9), images, batch_size=256, device="cpu")
    model = FitsUpTo(limit=200)
    batch = EvalBatch("cpu", 256)
    assert np.array_equal(predict_labels(model, images, batch_size=batch, device="cpu"), plain)
    assert model.calls == [256, 128, 128, 128, 128, 128, 60] and batch.size == 128


def test_a_model_that_does_not_fit_one_image_stops_with_a_clear_error():
    with pytest.raises(UserError, match="even one image at a time"):
        predict_labels(FitsUpTo(limit=0), _images(5), batch_size=4, device="cpu")


def test_other_errors_are_not_taken_for_out_of_memory():
    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        predict_labels(Broken(), _images(5), device="cpu")


def test_batch_size_below_one_is_refused():
    with pytest.raises(UserError, match="at least 1"):
        EvalBatch("cpu", 0)


class FitsUpTo32px(FitsUpTo):
    """FitsUpTo on 32x32 images (an evaluation's test set), downsampled to the linear layer's 8x8."""

    def forward(self, x):
        return super().forward(x[:, :, ::4, ::4])


def test_evaluate_shares_one_batch_size_between_blocks_and_records_the_settled_one(cifar10, tmp_path):
    from fixtures_runs import write_cifar_c

    from robustbench_aux.evaluation import evaluate

    x, y = cifar10.test_x[:60], cifar10.test_y[:60]
    cdir = write_cifar_c(tmp_path / "c", x, y, ("gaussian_noise",))
    model = FitsUpTo32px(limit=20).eval()
    res = evaluate(model, (x, y), cdir, batch_size=64, severities=(1, 2), device="cpu")
    # calls[0] is the class-count probe (1 image); then the clean block backs off 64 (all 60 images)
    # -> 32 -> 16, and the later blocks start at 16: no new out-of-memory attempts
    assert model.calls[1:5] == [60, 32, 16, 16] and max(model.calls[4:]) == 16
    assert res.summary["provenance"]["batch_size"] == 16
    plain = evaluate(FitsUpTo32px(limit=10**9).eval(), (x, y), cdir, severities=(1, 2), device="cpu")
    assert (
        res.table["acc"].tolist() == plain.table["acc"].tolist()
        and res.correct.keys() == plain.correct.keys()
    )
    assert all(np.array_equal(res.correct[k], plain.correct[k]) for k in plain.correct)
