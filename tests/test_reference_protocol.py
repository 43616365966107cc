"""The `reference` recipe trains as the reference code does: one test per protocol switch, and the
``deviations`` contract of config.json and the evaluation summary."""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch

from robustbench_aux import cli
from robustbench_aux.config import protocol_deviations, resolve_config, resolved_switches
from robustbench_aux.corruptions.training import random_rotation, train_noise
from robustbench_aux.engine.setup import epoch_steps, lr_at_step
from robustbench_aux.methods import METHODS, build_method
from robustbench_aux.methods.crop_flip import CropFlipParams, apply_crop_flip, draw_crop_flip
from robustbench_aux.models import build_model
from robustbench_aux.sweep import load_sweep

REPO = Path(__file__).resolve().parents[1]
NOISE_METHODS = ("auxiliary", "naive_augmentation", "per_corruption")


def _ref(method: str, recipe: str = "reference", overrides=()):
    return resolve_config(
        methods=METHODS,
        method=method,
        arch="resnet18",
        dataset="cifar100",
        seed=0,
        recipe=recipe,
        overrides=list(overrides),
    )


# --------------------------------------------------------------------------- 1. noise wrap-around


@pytest.mark.parametrize("method", NOISE_METHODS)
def test_reference_recipe_uses_wraparound_noise(method):
    cfg = _ref(method)
    assert cfg.options.noise_impl == "wraparound" and cfg.reference["method.noise_impl"] == "wraparound"


def test_wraparound_noise_is_numpy_uint8_arithmetic_and_wraps_about_4_percent(cifar10):
    x = torch.from_numpy(np.array(cifar10.train_x[:2000])).permute(0, 3, 1, 2).contiguous()
    out = train_noise(x, torch.Generator().manual_seed(5), sigma=20.0, impl="wraparound")
    # the reference: uint8 image + (Gaussian noise cast to uint8), numpy's wrapping uint8 addition;
    # float -> uint8 goes through int64 here (truncation towards zero, then modulo 256), the defined
    # form of what numpy's direct cast does on x86
    noise = (torch.randn(x.shape, generator=torch.Generator().manual_seed(5)) * 20.0).numpy()
    expected = x.numpy() + noise.astype(np.int64).astype(np.uint8)
    assert expected.dtype == np.uint8
    np.testing.assert_array_equal(out.numpy(), expected)
    wrapped = (out.long() - x.long()).abs() > 128  # jumped to the opposite extreme
    share = wrapped.float().mean().item()
    assert 0.03 < share < 0.05, share
    clipped = train_noise(x, torch.Generator().manual_seed(5), sigma=20.0, impl="clipped")
    assert ((clipped.long() - x.long()).abs() > 128).sum() == 0  # the clipped option stays available


def test_the_reproduction_grid_runs_the_reference_protocol_exactly():
    """Every training command of baselines/grids/cifar100.toml resolves with no deviation (on a
    GPU, where bf16 / TF32 would show) and with wrap-around noise wherever there is a noise view."""
    sweep = load_sweep(REPO / "baselines/grids/cifar100.toml")
    noisy = 0
    for job in sweep.jobs:
        argv = list(job.steps[0].argv)
        assert argv[0] == "train", shlex.join(argv)
        flags = dict(zip(argv[1::2], argv[2::2]))  # "--method M --arch A ..." (no bare flags here)
        sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
        cfg = resolve_config(
            methods=METHODS,
            method=flags["--method"],
            arch=flags["--arch"],
            dataset=flags["--dataset"],
            seed=0,
            recipe=flags["--recipe"],
            overrides=sets,
        )
        assert cfg.recipe == "reference"
        assert protocol_deviations(cfg.reference, resolved_switches(cfg, "cuda")) == [], job.name
        if hasattr(cfg.options, "noise_impl"):
            assert cfg.options.noise_impl == "wraparound"
            noisy += 1
    assert noisy >= 10


# --------------------------------------------------------------------------- 2. numerics


def test_reference_is_fp32_and_speed_switches_are_deviations():
    cfg = _ref("plain")
    on_gpu = resolved_switches(cfg, "cuda")
    assert on_gpu["train.amp"] == "off" and on_gpu["train.tf32"] is False
    assert protocol_deviations(cfg.reference, on_gpu) == []
    fast = _ref("plain", overrides=["amp=auto", "tf32=true"])
    devs = protocol_deviations(fast.reference, resolved_switches(fast, "cuda"))
    assert devs == [
        {"switch": "train.amp", "value": "bf16", "reference": "off"},
        {"switch": "train.tf32", "value": True, "reference": False},
    ]
    # on the CPU "auto" is fp32 and TF32 does not exist: no deviation
    assert protocol_deviations(fast.reference, resolved_switches(fast, "cpu")) == []


# --------------------------------------------------------------------------- 3. rotation view


def test_rotation_view_is_crop_then_rotation_without_flip():
    method = build_method("per_corruption", _ref("per_corruption", overrides=["corruption=rotation"]).options)
    assert method.options.rotation_view == "crop_then_rotate"
    x = torch.full((64, 3, 32, 32), 255, dtype=torch.uint8)
    x[:, 0, :, :16] = 0  # asymmetric left/right: a flip would show
    g = torch.Generator().manual_seed(3)
    replay = torch.Generator().manual_seed(3)
    views = method.views(x, g)
    # the same draws, in the reference's order: view 0's crop/flip, the rotation view's crop, its angle
    v0 = apply_crop_flip(x, draw_crop_flip(64, replay, x.device), 4)
    p = draw_crop_flip(64, replay, x.device)
    cropped = apply_crop_flip(x, CropFlipParams(p.dy, p.dx, torch.zeros_like(p.flip)), 4)
    expected = random_rotation(cropped, replay, 30.0)
    assert torch.equal(views[0], v0) and torch.equal(views[1], expected)
    # the black border of the crop is rotated with the image: crops that padded the top rows show
    # black pixels along a tilted line, not along whole rows as with rotate-then-crop
    tilted = 0
    for i in range(64):
        if p.dy[i] < 4 - 1:
            zero_rows = (views[1][i, 1] == 0).all(dim=1)
            tilted += int(not zero_rows[: 4 - int(p.dy[i])].all())
    assert tilted > 0
    other = build_method(
        "per_corruption",
        _ref(
            "per_corruption", overrides=["corruption=rotation", "rotation_view=corrupt_then_crop_flip"]
        ).options,
    )
    assert not torch.equal(other.views(x, torch.Generator().manual_seed(3))[1], views[1])


# --------------------------------------------------------------------------- 4. initialisation


def test_auxiliary_head_convs_are_kaiming_fan_out():
    torch.manual_seed(0)
    model = build_model("resnet8", num_classes=10, num_aux_heads=2)
    convs = [m for m in model.aux_heads.modules() if type(m) is torch.nn.Conv2d]
    assert len(convs) == 2 * 4
    for conv in convs:
        fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
        assert conv.weight.std().item() == pytest.approx(math.sqrt(2.0 / fan_out), rel=0.08)
    torch.manual_seed(0)
    default = build_model("resnet8", num_classes=10, num_aux_heads=2, aux_init="default")
    conv = default.aux_heads[0].attn[0]  # PyTorch's default: kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in))
    fan_in = conv.in_channels * 9
    assert conv.weight.std().item() == pytest.approx(1 / math.sqrt(3 * fan_in), rel=0.08)
    assert _ref("auxiliary").model.aux_init == "kaiming_fan_out"


# --------------------------------------------------------------------------- 5. last partial batch


def test_last_partial_batch_is_kept_by_the_reference():
    assert epoch_steps(50_000, 128, drop_last=False) == 391
    assert epoch_steps(50_000, 128, drop_last=True) == 390
    assert epoch_steps(50_000, 125, drop_last=False) == 400
    assert epoch_steps(129, 128, drop_last=False, world_size=2) == 1  # one image cannot split over 2
    assert _ref("plain").train.drop_last is False


def _train(tmp_path, name, *extra, method="plain"):
    out = tmp_path / name
    args = [
        "train",
        "--method",
        method,
        "--recipe",
        "reference",
        "--arch",
        "test_tiny",
        "--dataset",
        "synthetic10",
        "--n-train",
        "100",
        "--epochs",
        "1",
        "--set",
        "batch_size=32",
        "--out",
        str(out),
        "--device",
        "cpu",
        *extra,
    ]
    assert cli.main(args) == 0
    return out


def _metrics(out):
    import csv

    with open(out / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_a_run_takes_391_style_steps_and_drop_last_is_a_recorded_switch(tmp_path):
    keep = _train(tmp_path, "keep")
    assert int(_metrics(keep)[0]["steps"]) == 4  # 32 + 32 + 32 + 4
    config = json.loads((keep / "config.json").read_text())
    assert config["protocol"]["train.drop_last"] is False and config["deviations"] == []
    drop = _train(tmp_path, "drop", "--set", "drop_last=true")
    assert int(_metrics(drop)[0]["steps"]) == 3
    config = json.loads((drop / "config.json").read_text())
    assert config["deviations"] == [{"switch": "train.drop_last", "value": True, "reference": False}]


# --------------------------------------------------------------------------- deviations contract


def test_deviations_reach_config_and_evaluation_summary(tmp_path):
    from robustbench_aux.evaluation import evaluate_run

    out = _train(tmp_path, "bf16", "--set", "amp=bf16", "--set", "noise_impl=clipped", method="auxiliary")
    config = json.loads((out / "config.json").read_text())
    expected = [
        {"switch": "train.amp", "value": "bf16", "reference": "off"},
        {"switch": "method.noise_impl", "value": "clipped", "reference": "wraparound"},
    ]
    assert config["deviations"] == expected
    assert config["recipe_source"] == "auxiliary_training_reference"
    assert config["protocol"]["method.rotation_view"] == "crop_then_rotate"
    result = evaluate_run(out, None, n=50, device="cpu")
    summary = json.loads((out / "eval" / "summary.json").read_text())
    assert summary["provenance"]["deviations"] == expected == result.summary["provenance"]["deviations"]


# --------------------------------------------------------------------------- 6-8. ablation, data reading, AugMix


def test_no_sbn_per_view_updates_running_stats_from_every_view_in_turn():
    torch.manual_seed(0)
    x = torch.rand(3 * 8, 3, 32, 32)
    results = {}
    for mode in ("single", "per_view"):
        for stats in ("clean", "all_views"):
            torch.manual_seed(1)
            model = build_model("test_tiny", num_classes=10, num_aux_heads=2).train()
            model.sbn_passes = mode
            out = model(x, views=3, heads="per_view", selective=True, running_stats=stats)
            bn = model.backbone.stem[1]
            results[mode, stats] = (torch.cat(out), bn.running_mean.clone(), bn.num_batches_tracked.item())
    for stats in ("clean", "all_views"):  # one pass == per-view passes, in outputs and running stats
        a, b = results["single", stats], results["per_view", stats]
        assert torch.allclose(a[0], b[0], atol=1e-5) and torch.allclose(a[1], b[1], atol=1e-6)
    # the same per-view batch statistics (outputs), different running statistics
    assert torch.allclose(results["single", "clean"][0], results["single", "all_views"][0], atol=1e-6)
    assert not torch.allclose(results["single", "clean"][1], results["single", "all_views"][1])
    # all_views: the running mean after three momentum-0.1 updates, one per view chunk
    stem = torch.nn.Sequential(*list(build_model("test_tiny", num_classes=10).backbone.stem)[:1])
    torch.manual_seed(1)
    model = build_model("test_tiny", num_classes=10, num_aux_heads=2)
    stem[0].load_state_dict(model.backbone.stem[0].state_dict())
    mean = torch.zeros(8)
    with torch.no_grad():
        for chunk in x.chunk(3):
            feats = stem((chunk - model.mean) / model.std)
            mean = 0.9 * mean + 0.1 * feats.mean(dim=(0, 2, 3))
    assert torch.allclose(results["single", "all_views"][1], mean, atol=1e-5)
    assert results["single", "all_views"][2] == 3
    cfg = _ref("auxiliary", overrides=["variant=no_sbn_per_view"])
    assert cfg.options.sbn_running_stats == "all_views" and cfg.options.selective_bn


def test_enlarged_dataset_reading_mixes_views_per_image():
    cfg = _ref("naive_augmentation", overrides=["corruptions=blur", "crop_padding=0", "flip=false"])
    method = build_method("naive_augmentation", cfg.options, crop_padding=0, flip=False)
    assert method.epoch_multiplier() == 2
    x = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8)
    kinds = torch.tensor([0, 1] * 5)
    (mixed,) = method.views(x, torch.Generator().manual_seed(0), kinds=kinds)
    from robustbench_aux.corruptions.training import train_blur

    assert torch.equal(mixed[0::2], x[0::2]) and torch.equal(mixed[1::2], train_blur(x[1::2], 1.0))
    joint = build_method(
        "naive_augmentation",
        _ref("naive_augmentation", overrides=["data_reading=joint_batch"]).options,
    )
    assert joint.epoch_multiplier() == 1


def test_augmix_draws_the_chain_depth_per_image(monkeypatch):
    from robustbench_aux.methods import augmix as augmix_module

    sizes = []

    def counting_step(x, severity, generator):
        sizes.append(x.shape[0])
        return x

    monkeypatch.setattr(augmix_module, "random_chain_step", counting_step)
    method = build_method("augmix", augmix_module.AugMixOptions(width=1))
    method.augment(torch.zeros(600, 3, 8, 8, dtype=torch.uint8), torch.Generator().manual_seed(0))
    assert len(sizes) == 3 and sizes[0] == 600  # depth 1..3: step s runs on the images with depth > s
    assert 330 < sizes[1] < 470 and 130 < sizes[2] < 270  # about 2/3 and 1/3 of them


def test_augmix_published_recipe():
    cfg = resolve_config(
        methods=METHODS,
        method="augmix",
        arch="wrn40_2",
        dataset="cifar100",
        seed=0,
        recipe="augmix_published",
    )
    t = cfg.train
    assert (t.epochs, t.batch_size, t.lr, t.nesterov, t.schedule, t.weight_decay) == (
        100,
        128,
        0.1,
        True,
        "cosine",
        5e-4,
    )
    assert cfg.source == "augmix_published" and cfg.options.depth == 0 and cfg.options.width == 3
    assert protocol_deviations(cfg.reference, resolved_switches(cfg, "cuda")) == []
    steps = 391
    assert lr_at_step(t, 0, 0, steps) == pytest.approx(0.1)
    assert lr_at_step(t, 50, 0, steps) == pytest.approx((0.1 + 1e-6) / 2)
    assert lr_at_step(t, 99, steps - 1, steps) < 1e-5
    assert lr_at_step(t, 10, 5, steps) > lr_at_step(t, 10, 6, steps)  # decays every step
    shared = _ref("augmix")
    assert shared.source == "auxiliary_training_reference" and shared.train.schedule == "step"


def test_tf32_flags_are_set_for_the_run_and_restored():
    from robustbench_aux.engine.trainer import _tf32

    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    for allow in (False, True):
        with _tf32(allow):
            assert torch.backends.cuda.matmul.allow_tf32 is allow and torch.backends.cudnn.allow_tf32 is allow
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
