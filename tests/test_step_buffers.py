"""The step's input batch in reused buffers (engine/inputs.py) and the lighter crop/flip index
arithmetic (methods/crop_flip.py) give the same numbers bit for bit as the per-step expressions they replace:
unit checks against the old expressions, and a short training run with the old expressions patched
back in that must end with identical weights and metrics."""

from __future__ import annotations

import csv

import pytest
import torch

from robustbench_aux import cli
from robustbench_aux.checkpoint import load_checkpoint
from robustbench_aux.engine import inputs as engine_inputs
from robustbench_aux.engine.inputs import StepBuffers
from robustbench_aux.methods import base, crop_flip
from robustbench_aux.methods.crop_flip import CropFlipParams, apply_crop_flip, draw_crop_flip, to_float


def old_assemble(views, lo, hi, channels_last):
    """The engine's expression before the buffers."""
    return to_float(torch.cat([to_float(v[lo:hi]) for v in views]), channels_last)


def old_apply_crop_flip(x, params, padding=4):
    """crop_flip.apply_crop_flip before the cached ranges and in-place index arithmetic."""
    n, c, h, w = x.shape
    rows = params.dy[:, None] - padding + torch.arange(h, device=x.device)
    cols = params.dx[:, None] - padding + torch.arange(w, device=x.device)
    flip = (
        params.flip if params.flip is not None else torch.zeros_like(params.dy, dtype=torch.bool)
    )  # as before
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    valid = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    index = rows.clamp(0, h - 1)[:, :, None] * w + cols.clamp(0, w - 1)[:, None, :]
    out = x.reshape(n, c, h * w).gather(2, index.view(n, 1, h * w).expand(n, c, h * w)).view(n, c, h, w)
    return out * valid[:, None].to(out.dtype)


def bits(t: torch.Tensor) -> torch.Tensor:
    """The raw bits (so -0.0 and 0.0 differ)."""
    return t.contiguous().view(torch.int32) if t.dtype == torch.float32 else t


def _views(gen, b=12, mixed=True):
    u8 = [torch.randint(0, 256, (b, 3, 8, 6), dtype=torch.uint8, generator=gen) for _ in range(3)]
    if not mixed:
        return u8
    return [
        u8[0],
        torch.rand(b, 3, 8, 6, generator=gen),
        u8[1],
        torch.rand(b, 3, 8, 6, generator=gen).double(),
    ]


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("mixed", [False, True])
def test_assemble_is_the_old_expression_bit_for_bit_and_reuses_its_buffer(channels_last, mixed):
    gen = torch.Generator().manual_seed(1)
    buffers = StepBuffers(channels_last=channels_last)
    first_ptr = None
    for lo, hi in [(0, 12), (3, 9), (0, 12), (0, 12)]:
        views = _views(gen, mixed=mixed)
        new, old = buffers.assemble(views, lo, hi), old_assemble(views, lo, hi, channels_last)
        assert new.dtype == old.dtype == torch.float32 and new.shape == old.shape
        assert new.stride() == old.stride()  # the same memory format as before
        assert torch.equal(bits(new), bits(old))
        if (lo, hi) == (0, 12):
            first_ptr = first_ptr or new.data_ptr()
            assert new.data_ptr() == first_ptr  # the full-batch buffer is reused, not reallocated
    assert buffers.allocations == 2  # one buffer for the full batch, one for the 6-row batch


def test_every_uint8_value_converts_exactly_as_float_div_255():
    x = torch.arange(256, dtype=torch.uint8).repeat(3 * 7 * 5).view(256, 3, 7, 5)
    new = StepBuffers().assemble([x, x.flip(0)], 0, 256)
    assert torch.equal(bits(new), bits(torch.cat([x.float().div_(255.0), x.flip(0).float().div_(255.0)])))


def test_assemble_refuses_views_of_different_shapes():
    with pytest.raises(ValueError, match="one shape"):
        StepBuffers().assemble([torch.zeros(4, 3, 8, 8), torch.zeros(3, 3, 8, 8)], 0, 3)


def test_gather_is_indexing_into_a_reused_buffer():
    source = torch.randint(0, 256, (50, 3, 4, 4), dtype=torch.uint8)
    buffers = StepBuffers()
    idx = torch.randperm(50)[:16]
    a = buffers.gather(source, idx)
    assert torch.equal(a, source[idx])
    ptr = a.data_ptr()
    idx2 = torch.randperm(50)[:16]
    b = buffers.gather(source, idx2)
    assert torch.equal(b, source[idx2]) and b.data_ptr() == ptr and buffers.allocations == 1


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize("padding", [0, 2, 4])
def test_crop_flip_is_the_old_arithmetic_bit_for_bit(dtype, padding):
    gen = torch.Generator().manual_seed(padding)
    if dtype == torch.uint8:
        x = torch.randint(0, 256, (40, 3, 9, 7), dtype=dtype, generator=gen)
    else:  # negative values: 0 * negative = -0.0 in both forms
        x = torch.randn(40, 3, 9, 7, generator=gen)
    params = draw_crop_flip(40, gen, x.device, padding)
    assert params.flip.any() and not params.flip.all()
    assert torch.equal(
        bits(apply_crop_flip(x, params, padding)), bits(old_apply_crop_flip(x, params, padding))
    )
    unflipped = CropFlipParams(params.dy, params.dx, torch.zeros_like(params.flip))
    no_flip = CropFlipParams(params.dy, params.dx, None)
    assert torch.equal(
        bits(apply_crop_flip(x, no_flip, padding)), bits(old_apply_crop_flip(x, unflipped, padding))
    )


TINY = [
    "--arch",
    "test_tiny",
    "--dataset",
    "synthetic10",
    "--seed",
    "0",
    "--device",
    "cpu",
    "--recipe",
    "smoke",
]


def _train_digest(out, method, *extra):
    args = ["train", "--method", method, *TINY, "--n-train", "70", "--epochs", "2", "--set", "batch_size=16"]
    assert cli.main([*args, *extra, "--out", str(out)]) == 0
    with open(out / "metrics.csv") as f:
        rows = [
            {k: v for k, v in r.items() if k not in ("images_per_s", "seconds")} for r in csv.DictReader(f)
        ]
    return rows, load_checkpoint(out / "final.pt")["state_dict"]


@pytest.mark.parametrize(
    "method,extra",
    [("auxiliary", ("--set", "channels_last=on")), ("augmix", ())],  # 4 uint8 views; mixed uint8/float
)
def test_training_is_bit_identical_to_the_per_step_expressions(tmp_path, monkeypatch, method, extra):
    """70 images in batches of 16: a partial last batch, so two buffer shapes per epoch."""
    new_rows, new = _train_digest(tmp_path / "new", method, *extra)

    with monkeypatch.context() as m:
        m.setattr(engine_inputs.StepBuffers, "gather", lambda self, source, index: source[index])
        m.setattr(
            engine_inputs.StepBuffers,
            "assemble",
            lambda self, views, lo, hi: old_assemble(views, lo, hi, self.channels_last),
        )
        m.setattr(crop_flip, "apply_crop_flip", old_apply_crop_flip)
        m.setattr(base, "apply_crop_flip", old_apply_crop_flip)
        old_rows, old = _train_digest(tmp_path / "old", method, *extra)

    assert new_rows == old_rows
    assert new.keys() == old.keys()
    assert all(torch.equal(bits(new[k]), bits(old[k])) for k in new)
