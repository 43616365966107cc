"""Training-speed benchmarks; prints a table of ratios (targets from the training issue).

1. Train-time corruption of a 128-image batch into the clean + 4 reference views: our batched
   device path (``Method.views`` + conversion to float) vs a per-sample PIL pipeline of the reference
   code's shape (torchvision PIL transforms applied image by image in a Python loop, each view with
   its own crop/flip, then ToTensor). Target: >= 50x faster on the CPU.
2. One auxiliary-training step vs one plain step at the same batch size (forward + backward +
   SGD step). Target: <= 5.5x (5 views through the backbone is the floor of 5x).
3. Single-pass selective BN vs five sequential passes (reference form), backbone forward +
   backward on the 5-view batch. Target: no slower on the CPU; >= 1.5x faster on a GPU.

Times: the minimum of 3 runs on the CPU (least disturbed by other load on a shared machine), the
median of 20 on a GPU, where steps run as the engine runs them there (bf16 autocast, channels_last).

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/train_step.py --arch resnet18 --batch 128
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time

import numpy as np
import torch

from robustbench_aux.methods import build_method
from robustbench_aux.methods.crop_flip import to_float
from robustbench_aux.models import build_model
from robustbench_aux.models.selective_bn import multi_pass_reference


def statistic(device):
    """min on the CPU (least disturbed by other load on a shared machine), median on a GPU."""
    return statistics.median if device.type == "cuda" else min


def best_time(fn, reps: int, device) -> float:
    """:func:`statistic` of the wall times of ``reps`` calls after two warm-ups (seconds); on a GPU
    each call is synchronized before the clock is read."""

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(2):
        fn()
    sync()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistic(device)(times)


def _engine_context(device):
    """The engine's CUDA defaults: bf16 autocast (and channels_last, applied by the callers)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def pil_reference_views(images: np.ndarray, rng: np.random.Generator):
    """The reference code's shape: per image, PIL blur / numpy noise / ColorJitter / RandomRotation,
    each followed by its own RandomCrop(32, 4) + flip, then ToTensor."""
    from PIL import Image, ImageFilter
    from torchvision import transforms as T

    crop_flip = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor()])
    jitter = T.ColorJitter(brightness=0.5, contrast=0.5, saturation=0.5)
    rotate = T.RandomRotation(30)
    views = [[] for _ in range(5)]
    for arr in images:
        img = Image.fromarray(arr)
        noisy = np.clip(arr.astype(np.float64) + rng.normal(0, 20, arr.shape), 0, 255).astype(np.uint8)
        corrupted = [
            img,
            img.filter(ImageFilter.GaussianBlur(1.0)),
            Image.fromarray(noisy),
            jitter(img),
            rotate(img),
        ]
        for v, c in zip(views, corrupted):
            v.append(crop_flip(c))
    return [torch.stack(v) for v in views]


def bench_views(images_u8: np.ndarray, device, reps: int) -> dict:
    method = build_method("auxiliary")
    x = torch.from_numpy(images_u8).permute(0, 3, 1, 2).contiguous().to(device)
    gen = torch.Generator(device=device).manual_seed(0)
    ours = best_time(lambda: to_float(torch.cat(method.views(x, gen))), reps, device)
    rng = np.random.default_rng(0)
    ref = best_time(lambda: pil_reference_views(images_u8, rng), max(1, reps // 3), device)
    return {"ours_ms": 1e3 * ours, "reference_ms": 1e3 * ref, "speedup": ref / ours}


def _step_fn(arch, method_name, batch, device, sbn_passes, num_classes=100):
    method = build_method(method_name)
    torch.manual_seed(0)
    model = build_model(arch, num_classes=num_classes, **method.model_kwargs()).to(device).train()
    cl = device.type == "cuda"
    if cl:
        model = model.to(memory_format=torch.channels_last)
    model.sbn_passes = sbn_passes
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8, device=device)
    y = torch.randint(0, num_classes, (batch,), device=device)
    gen = torch.Generator(device=device).manual_seed(0)

    def step():
        views = method.views(x, gen)
        with _engine_context(device):
            out = method.loss(model, to_float(torch.cat(views), cl), len(views), y, 0)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()

    return step


def bench_steps(arch, batch, device, reps, sbn_passes) -> dict:
    plain = best_time(_step_fn(arch, "plain", batch, device, sbn_passes), reps, device)
    aux = best_time(_step_fn(arch, "auxiliary", batch, device, sbn_passes), reps, device)
    return {"plain_ms": 1e3 * plain, "auxiliary_ms": 1e3 * aux, "ratio": aux / plain}


def bench_sbn(arch, batch, device, reps) -> dict:
    torch.manual_seed(0)
    model = build_model(arch, num_classes=100).to(device).train()
    fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    model = model.to(memory_format=fmt)
    views = [torch.rand(batch, 3, 32, 32, device=device).contiguous(memory_format=fmt) for _ in range(5)]
    cat = torch.cat(views).contiguous(memory_format=fmt)

    def single():
        model.zero_grad(set_to_none=True)
        with _engine_context(device):
            loss = sum(z.float().sum() for z in model(cat, views=5, selective=True))
        loss.backward()

    def five():
        model.zero_grad(set_to_none=True)
        with _engine_context(device):
            outs = multi_pass_reference(
                model.backbone, views, lambda m, i, v: model.primary_head(model.features(v))
            )
            loss = sum(z.float().sum() for z in outs)
        loss.backward()

    t_single, t_five = best_time(single, reps, device), best_time(five, reps, device)
    return {"single_pass_ms": 1e3 * t_single, "five_passes_ms": 1e3 * t_five, "speedup": t_five / t_single}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--device", default="cpu")
    p.add_argument("--reps", type=int, help="timed repetitions (default: 3 on the CPU, 20 on a GPU)")
    p.add_argument(
        "--sbn-passes",
        default="auto",
        help="selective BN in the step benchmark: single, per_view, auto (engine's)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads on the CPU")
    p.add_argument("--data", help="data root holding cifar10/ (real images for the view benchmark)")
    p.add_argument("--json", help="also write the numbers to this JSON file")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.reps is None:
        args.reps = 20 if device.type == "cuda" else 3
    passes = (
        args.sbn_passes if args.sbn_passes != "auto" else ("single" if device.type == "cuda" else "per_view")
    )
    if args.data:
        from robustbench_aux.datasets import load_dataset

        images = np.array(load_dataset("cifar10", args.data).train_x[:128])
    else:  # random pixels: the same work per image
        images = np.random.default_rng(0).integers(0, 256, (128, 32, 32, 3), dtype=np.uint8)
    results = {
        "device": str(device),
        "threads": args.threads,
        "arch": args.arch,
        "batch": args.batch,
        "views_128": bench_views(images, device, args.reps * 3),
        "sbn_passes": passes,
        "aux_vs_plain_step": bench_steps(args.arch, args.batch, device, args.reps, passes),
        "sbn_single_vs_five": bench_sbn(args.arch, args.batch, device, args.reps),
    }
    v, s, b = results["views_128"], results["aux_vs_plain_step"], results["sbn_single_vs_five"]
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{args.threads} CPU thread(s)"
    print(
        f"device {device} ({where}), {args.arch}, batch {args.batch}, auxiliary step with "
        f"sbn_passes={passes}; {statistic(device).__name__} of {args.reps} timed runs"
        + ("; bf16 autocast + channels_last as the engine" if device.type == "cuda" else "")
    )
    print("| benchmark | ours | baseline | ratio | target |")
    print("|---|---|---|---|---|")
    print(
        f"| 4 reference views of 128 images: batched vs per-image PIL | {v['ours_ms']:.1f} ms | "
        f"{v['reference_ms']:.1f} ms | {v['speedup']:.1f}x faster | >= 50x |"
    )
    print(
        f"| auxiliary step vs plain step | {s['auxiliary_ms']:.1f} ms | {s['plain_ms']:.1f} ms | "
        f"{s['ratio']:.2f}x the cost | <= 5.5x |"
    )
    print(
        f"| selective BN: single pass vs 5 passes | {b['single_pass_ms']:.1f} ms | "
        f"{b['five_passes_ms']:.1f} ms | "
        f"{b['speedup']:.2f}x faster | >= 1.0x CPU, >= 1.5x GPU |"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
