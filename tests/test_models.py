"""Models: registry, forward contract, normalization, checkpoint round trip, selective BN."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from robustbench_aux.checkpoint import load_classifier, save_checkpoint
from robustbench_aux.errors import UserError
from robustbench_aux.models import MODELS, SelectiveBatchNorm2d, build_model
from robustbench_aux.models.selective_bn import multi_pass_reference, selective_bn


def test_registry_lists_paper_architectures_and_test_models():
    names = MODELS.names()
    for arch in (
        "resnet18",
        "resnet34",
        "resnet50",
        "resnet101",
        "resnet152",
        "wrn40_2",
        "resnet8",
        "test_tiny",
    ):
        assert arch in names
    assert MODELS.names("resnet1*") == ["resnet101", "resnet152", "resnet18"]
    with pytest.raises(UserError, match="did you mean .*'resnet18'"):
        build_model("resnet81")


@pytest.mark.parametrize(
    "arch, classes, params",
    # the usual CIFAR-10 counts: ResNet-18 11,173,962; WRN-40-2 2,243,546 (+ a 100-way fc for CIFAR-100)
    [("resnet18", 10, 11_173_962), ("resnet18", 100, 11_220_132), ("wrn40_2", 10, 2_243_546)],
)
def test_paper_architectures_have_the_standard_size(arch, classes, params):
    model = build_model(arch, num_classes=classes)
    assert sum(p.numel() for p in model.parameters()) == params
    out = model.eval()(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, classes)


def test_stem_relu_switch():
    off = build_model("test_tiny", num_classes=10)
    on = build_model("test_tiny", num_classes=10, stem_relu=True)
    assert not any(isinstance(m, nn.ReLU) for m in off.backbone.stem)
    assert isinstance(on.backbone.stem[-1], nn.ReLU)


def test_eval_forward_is_primary_only_and_normalizes_internally():
    torch.manual_seed(0)
    model = build_model(
        "test_tiny", num_classes=10, num_aux_heads=4, mean=(0.1, 0.2, 0.3), std=(0.5, 0.6, 0.7)
    )
    model.eval()
    x = torch.rand(3, 3, 32, 32)
    logits = model(x)
    assert isinstance(logits, torch.Tensor) and logits.shape == (3, 10)
    normed = (x - torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1)) / torch.tensor([0.5, 0.6, 0.7]).view(
        1, 3, 1, 1
    )
    feats = model.backbone(normed)
    torch.testing.assert_close(logits, model.fc(feats.mean(dim=(2, 3))))
    # the auxiliary heads cost nothing at inference: changing them does not change the output
    with torch.no_grad():
        for p in model.aux_heads.parameters():
            p.add_(1.0)
    torch.testing.assert_close(model(x), logits)


def test_multi_view_forward_routes_views_to_heads():
    model = build_model("test_tiny", num_classes=7, num_aux_heads=2).train()
    outs = model(torch.rand(6, 3, 32, 32), views=3, heads="per_view", selective=True)
    assert len(outs) == 3 and all(o.shape == (2, 7) for o in outs)
    with pytest.raises(ValueError, match="auxiliary heads"):
        model(torch.rand(8, 3, 32, 32), views=4, heads="per_view")


def test_no_attention_heads_are_primary_style():
    model = build_model("test_tiny", num_classes=10, num_aux_heads=1, aux_attention=False)
    head = model.aux_heads[0]
    assert [type(m) for m in head.children()] == [nn.Linear]


def test_checkpoint_round_trip_rebuilds_the_model(tmp_path):
    torch.manual_seed(1)
    kwargs = {"num_classes": 10, "num_aux_heads": 4, "mean": [0.4, 0.4, 0.4], "std": [0.2, 0.2, 0.2]}
    model = build_model("resnet8", **kwargs)
    model.train()(torch.rand(8, 3, 32, 32))  # move the BN running statistics off their init
    save_checkpoint(
        tmp_path / "final.pt",
        arch="resnet8",
        model_kwargs=kwargs,
        state_dict=model.state_dict(),
        config={"method": "auxiliary"},
    )
    loaded, config = load_classifier(tmp_path)
    assert config == {"method": "auxiliary"} and not loaded.training
    x = torch.rand(4, 3, 32, 32)
    torch.testing.assert_close(loaded(x), model.eval()(x))


def test_selective_bn_with_one_chunk_is_plain_batchnorm():
    torch.manual_seed(0)
    sbn, bn = SelectiveBatchNorm2d(5), nn.BatchNorm2d(5)
    bn.load_state_dict(sbn.state_dict())
    x = torch.randn(8, 5, 4, 4)
    torch.testing.assert_close(sbn(x), bn(x))
    torch.testing.assert_close(sbn.running_var, bn.running_var)


def _views_and_labels(k=5, b=6, classes=10):
    torch.manual_seed(3)
    views = [torch.rand(b, 3, 32, 32, dtype=torch.float64) for _ in range(k)]
    return views, torch.randint(0, classes, (b,))


def _bn_layers(model):
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]


def test_selective_bn_equals_five_separate_passes_outputs_gradients_running_stats():
    """The single-pass SBN equals the reference form: one pass per view, running statistics
    restored after every view but the clean one (backbone BN layers; double precision)."""
    torch.manual_seed(0)
    base = build_model("test_tiny", num_classes=10, num_aux_heads=4).double().train()
    for _, m in _bn_layers(base):  # non-trivial affine parameters and running statistics
        with torch.no_grad():
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.2, 0.2)
            m.running_mean.uniform_(-0.1, 0.1)
    single, multi = base, copy.deepcopy(base)
    views, y = _views_and_labels()

    outs = single(torch.cat(views), views=5, heads="per_view", selective=True)
    sum(F.cross_entropy(z, y) * (i + 1) for i, z in enumerate(outs)).backward()

    def one_view(model, i, v):
        feats = model.features(v)
        return model.primary_head(feats) if i == 0 else model.aux_heads[i - 1](feats)

    ref = multi_pass_reference(multi.backbone, views, lambda _, i, v: one_view(multi, i, v))
    sum(F.cross_entropy(z, y) * (i + 1) for i, z in enumerate(ref)).backward()

    for a, b in zip(outs, ref):
        torch.testing.assert_close(a, b)
    for (name, p), (_, q) in zip(single.named_parameters(), multi.named_parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=f"gradient of {name}")
    for (name, m), (_, r) in zip(_bn_layers(single.backbone), _bn_layers(multi.backbone)):
        torch.testing.assert_close(m.running_mean, r.running_mean, msg=f"running_mean of {name}")
        torch.testing.assert_close(m.running_var, r.running_var, msg=f"running_var of {name}")
        assert int(m.num_batches_tracked) == int(r.num_batches_tracked) == 1
    # the statistics really are the clean chunk's: different from those of ordinary BN over all views
    pooled = copy.deepcopy(base)
    pooled(torch.cat(views), views=5, heads="per_view", selective=False)
    stem_bn = lambda model: model.backbone.stem[1]  # noqa: E731
    assert not torch.allclose(stem_bn(pooled).running_mean, stem_bn(single).running_mean)


def test_selective_bn_requires_equal_chunks_and_is_reset_after_the_block():
    model = build_model("test_tiny", num_classes=10).train()
    with selective_bn(model, 3):
        with pytest.raises(ValueError, match="equal view chunks"):
            model(torch.rand(7, 3, 32, 32))
    assert all(m.chunks == 1 for m in model.modules() if isinstance(m, SelectiveBatchNorm2d))


def test_selective_bn_channels_last_matches_contiguous():
    torch.manual_seed(0)
    model = build_model("test_tiny", num_classes=10).train()
    twin = copy.deepcopy(model).to(memory_format=torch.channels_last)
    x = torch.rand(8, 3, 32, 32)
    a = model(x, views=4, selective=True)
    b = twin(x.contiguous(memory_format=torch.channels_last), views=4, selective=True)
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v, rtol=1e-4, atol=1e-5)


def test_per_view_passes_equal_the_single_pass():
    """``sbn_passes = "per_view"`` (the CPU default) computes the same as one concatenated pass."""
    torch.manual_seed(0)
    single = build_model("test_tiny", num_classes=10, num_aux_heads=4).double().train()
    per_view = copy.deepcopy(single)
    per_view.sbn_passes = "per_view"
    views, y = _views_and_labels()
    results = []
    for model in (single, per_view):
        outs = model(torch.cat(views), views=5, heads="per_view", selective=True)
        sum(F.cross_entropy(z, y) * (i + 1) for i, z in enumerate(outs)).backward()
        results.append(outs)
    for a, b in zip(*results):
        torch.testing.assert_close(a, b)
    for (name, p), (_, q) in zip(single.named_parameters(), per_view.named_parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=f"gradient of {name}")
    for (name, m), (_, r) in zip(_bn_layers(single), _bn_layers(per_view)):
        torch.testing.assert_close(m.running_var, r.running_var, msg=f"running_var of {name}")
