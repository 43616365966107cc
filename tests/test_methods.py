"""Methods: each trains on synthetic 100-class data; auxiliary-training switches and loss terms."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from robustbench_aux.methods import METHODS, build_method
from robustbench_aux.methods.augmix import jensen_shannon
from robustbench_aux.methods.augmix_ops import OPS, apply_op
from robustbench_aux.methods.auxiliary import head_penalty, soft_cross_entropy
from robustbench_aux.models import build_model

ALL_METHODS = ("plain", "naive_augmentation", "per_corruption", "auxiliary", "augmix")


def _batches(data, batch, steps, distinct=8):
    """``steps`` batches cycling over ``distinct`` fixed batches (a few passes: the loss must fall)."""
    n = batch * min(steps, distinct)
    x = torch.from_numpy(data.train_x[:n].copy()).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(data.train_y[:n].copy())
    k = n // batch
    return [
        (x[(i % k) * batch : (i % k + 1) * batch], y[(i % k) * batch : (i % k + 1) * batch])
        for i in range(steps)
    ]


def _train(method, data, steps=32, batch=32, lr=0.1, seed=0):
    torch.manual_seed(seed)
    model = build_model("test_tiny", num_classes=data.num_classes, **method.model_kwargs()).train()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    gen = torch.Generator().manual_seed(seed)
    losses, outs = [], []
    for xb, yb in _batches(data, batch, steps):
        views = method.views(xb, gen)
        inputs = torch.cat([v.float() / 255 if v.dtype == torch.uint8 else v for v in views])
        out = method.loss(model, inputs, len(views), yb, epoch=0)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
        outs.append(out)
    return losses, outs


@pytest.mark.parametrize("name", ALL_METHODS)
def test_every_method_trains_on_synthetic_100_classes(name, synthetic100):
    assert set(ALL_METHODS) <= set(METHODS.names())
    method = build_method(name)
    losses, outs = _train(method, synthetic100)
    assert all(torch.isfinite(torch.tensor(losses)))
    first, last = sum(losses[:8]) / 8, sum(losses[-8:]) / 8  # one pass over the 8 batches each
    assert last < first - 0.2, f"{name}: loss {first:.3f} -> {last:.3f} did not decrease"
    out = outs[-1]
    assert out.logits.shape == (32, 100)
    torch.testing.assert_close(sum(out.terms.values()), out.loss.detach(), rtol=1e-5, atol=1e-5)


def test_views_are_uint8_crops_and_paired_views_share_the_crop(synthetic100):
    x = torch.from_numpy(synthetic100.train_x[:16].copy()).permute(0, 3, 1, 2).contiguous()
    for paired in (False, True):
        opts = dataclasses.replace(
            METHODS.get("per_corruption").Options(), corruption="noise", paired_views=paired
        )
        views = build_method("per_corruption", opts).views(x, torch.Generator().manual_seed(0))
        assert len(views) == 2 and all(v.dtype == torch.uint8 and v.shape == x.shape for v in views)
        diff = (views[1].float() - views[0].float()).abs().mean().item()
        if paired:
            assert diff < 20  # the same crop: only the noise differs (sigma 20 -> mean |n| about 16)
        else:
            assert diff > 25  # different crops of textured images differ far more


def test_naive_augmentation_loss_is_the_mean_over_views(synthetic100):
    method = build_method("naive_augmentation")
    torch.manual_seed(0)
    model = build_model("test_tiny", num_classes=100).train()
    x = torch.rand(5 * 8, 3, 32, 32)
    y = torch.randint(0, 100, (8,))
    out = method.loss(model, x, 5, y, 0)
    assert list(out.terms) == ["ce_clean", "ce_blur", "ce_noise", "ce_contrast", "ce_rotation"]
    logits = model(x)  # ordinary BN over all 40 images = the same batch statistics
    expected = F.cross_entropy(logits, y.repeat(5))
    torch.testing.assert_close(out.loss, expected, rtol=1e-5, atol=1e-5)


def _aux(**changes):
    opts = dataclasses.replace(METHODS.get("auxiliary").Options(), **changes)
    opts.validate()
    return build_method("auxiliary", opts)


def test_auxiliary_terms_follow_the_reference_loss():
    torch.manual_seed(0)
    method = _aux(alpha=0.3, beta=0.7, temperature=2.0, penalty_start_epoch=1)
    model = build_model("test_tiny", num_classes=10, **method.model_kwargs()).train()
    x, y = torch.rand(5 * 4, 3, 32, 32), torch.randint(0, 10, (4,))
    before = method.loss(model, x, 5, y, epoch=0)
    after = method.loss(model, x, 5, y, epoch=1)
    logits = model(x, views=5, heads="per_view", selective=True)
    torch.testing.assert_close(before.terms["ce_primary"], F.cross_entropy(logits[0], y))
    torch.testing.assert_close(before.terms["ce_aux_noise"], 0.3 * F.cross_entropy(logits[2], y))
    torch.testing.assert_close(before.terms["isd_noise"], 0.7 * soft_cross_entropy(logits[0], logits[2], 2.0))
    assert before.terms["penalty"] == 0
    torch.testing.assert_close(after.terms["penalty"], head_penalty(model.head_linears()).detach())
    assert after.terms["penalty"] > 0
    assert method.epoch_info(0) == {"gamma": 0.0} and method.epoch_info(1) == {"gamma": 1.0}


def test_soft_cross_entropy_is_kl_plus_teacher_entropy_and_detaches_the_teacher():
    t = torch.randn(6, 10, requires_grad=True)
    s = torch.randn(6, 10, requires_grad=True)
    p = F.softmax(t / 3, 1)
    kl = F.kl_div(F.log_softmax(s / 3, 1), p, reduction="batchmean")
    entropy = -(p * p.log()).sum(1).mean()
    h = soft_cross_entropy(t, s, 3.0)
    torch.testing.assert_close(h, kl + entropy)
    h.backward()
    assert t.grad is None and s.grad is not None


def test_head_penalty_is_squared_distance_of_fc_layers():
    a, b, c = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    expected = sum(((a.weight - l.weight) ** 2).sum() + ((a.bias - l.bias) ** 2).sum() for l in (b, c))
    torch.testing.assert_close(head_penalty([a, b, c]), expected)
    assert head_penalty([a, a]).item() == 0


@pytest.mark.parametrize(
    "changes, expect_terms",
    [
        ({"beta": 0.0}, lambda t: not any(k.startswith("isd_") for k in t)),
        ({"distill_direction": "aux_to_primary"}, lambda t: "isd_blur" in t),
        ({"distill_direction": "both"}, lambda t: "isd_rotation" in t),
        ({"selective_bn": False}, lambda t: "ce_aux_blur" in t),
        ({"attention": False}, lambda t: "ce_aux_blur" in t),
        ({"shared_head": True}, lambda t: t["penalty"] == 0),
        ({"penalty": False, "penalty_start_epoch": 0}, lambda t: t["penalty"] == 0),
        (
            {"corruptions": ("noise", "rotation"), "noise_impl": "wraparound", "paired_views": True},
            lambda t: (
                set(t)
                == {"ce_primary", "ce_aux_noise", "ce_aux_rotation", "isd_noise", "isd_rotation", "penalty"}
            ),
        ),
    ],
)
def test_auxiliary_switches(changes, expect_terms, synthetic100):
    method = _aux(**changes)
    _, outs = _train(method, synthetic100, steps=2, batch=8)
    assert expect_terms(outs[-1].terms)
    assert torch.isfinite(outs[-1].loss)


def test_distill_directions_differ_in_gradient_flow():
    torch.manual_seed(0)
    z0 = torch.randn(4, 10, requires_grad=True)
    zj = torch.randn(4, 10, requires_grad=True)
    soft_cross_entropy(z0, zj, 1.0).backward()  # primary_to_aux: only the auxiliary logits learn
    assert z0.grad is None and zj.grad.abs().sum() > 0


def test_invalid_auxiliary_options_are_user_errors():
    from robustbench_aux.errors import UserError

    with pytest.raises(UserError, match="distill_direction"):
        _aux(distill_direction="sideways")
    with pytest.raises(UserError, match="did you mean 'noise'"):
        _aux(corruptions=("noize",))


def test_augmix_ops_keep_shape_and_change_images(synthetic100):
    x = torch.from_numpy(synthetic100.train_x[:12].copy()).permute(0, 3, 1, 2).contiguous()
    level = torch.full((12,), 9.0)
    changed = 0
    for name in OPS:
        out = apply_op(name, x, level, torch.Generator().manual_seed(0))
        assert out.shape == x.shape and out.dtype == torch.uint8, name
        changed += not torch.equal(out, x)
    assert changed >= len(OPS) - 1  # autocontrast may leave already-stretched images as they are


def test_augmix_views_and_jsd(synthetic100):
    method = build_method("augmix")
    x = torch.from_numpy(synthetic100.train_x[:8].copy()).permute(0, 3, 1, 2).contiguous()
    views = method.views(x, torch.Generator().manual_seed(0))
    assert len(views) == 3 and views[1].dtype == torch.float32
    assert 0 <= views[1].min() and views[1].max() <= 1
    again = method.views(x, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(views, again))
    z = torch.randn(8, 10)
    assert jensen_shannon([z, z, z]).item() == pytest.approx(0, abs=1e-6)
    assert jensen_shannon([z, -z, z]).item() > 0.1


def test_jensen_shannon_matches_the_definition_and_keeps_gradients_finite_for_extreme_logits():
    g = torch.Generator().manual_seed(0)
    z = [torch.randn(6, 10, generator=g, dtype=torch.float64) * 3 for _ in range(3)]
    p = [torch.softmax(v, 1).numpy() for v in z]
    m = sum(p) / 3
    expected = np.mean([np.sum(q * (np.log(q) - np.log(m)), 1).mean() for q in p])
    assert jensen_shannon(z).item() == pytest.approx(expected, rel=1e-5)
    # logit gaps of ~200: some probabilities underflow to exactly 0 in float32
    extreme = [(torch.randn(8, 10, generator=g) * 60).requires_grad_() for _ in range(3)]
    assert (torch.softmax(extreme[0], 1) == 0).any()
    loss = jensen_shannon(extreme)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(v.grad).all() for v in extreme)
