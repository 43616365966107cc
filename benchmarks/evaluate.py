"""Evaluation throughput: this suite's batched path vs the reference code's evaluation shape.

The reference evaluation (Auxiliary-Training ``robust_test.py``) converts and normalizes test
images one at a time in Python (ToTensor + Normalize per image) before each forward pass. This
suite converts a whole uint8 batch on the device in one tensor op and the model normalizes
inside its forward. Both run the same ResNet-18-shaped CIFAR model (100 classes) in eval mode.

Usage (CPU, one thread, low priority)::

    nice -n 10 python benchmarks/evaluate.py --images 512 --threads 1
    python benchmarks/evaluate.py --device cuda --images 950000 --precision bf16   # full CIFAR-100-C size

Prints a Markdown table: images/s for preprocessing alone and end to end, and the speed-up.

``--calibration-overhead R`` instead times the evaluation's per-block path with calibration
(``predict_scores``: argmax plus float32 softmax confidence / NLL / Brier per image) against the
argmax-only path (``predict_labels``, the path before calibration was recorded) on the same images,
alternating the two R times, and prints the medians and their ratio::

    nice -n 10 python benchmarks/evaluate.py --calibration-overhead 7 --images 512 --arch resnet8
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

from robustbench_aux.evaluation.predict import predict_labels, predict_scores, to_device_batch
from robustbench_aux.infra.devices import resolve_device
from robustbench_aux.models import MODELS, build_model

MEAN, STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)  # CIFAR-100 training statistics


class _Normalizing(nn.Module):
    """A model that normalizes inside its forward, as the suite's models do."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))

    def forward(self, x):
        return self.net((x - self.mean) / self.std)


def resnet18_model() -> tuple[nn.Module, nn.Module, str]:
    """(model taking [0,1] input, the bare network taking normalized input, description)."""
    if "resnet18" in MODELS:
        model = build_model("resnet18", num_classes=100)
        return model, model, "robustbench_aux MODELS['resnet18'] (normalizes internally)"
    import torchvision

    net = torchvision.models.resnet18(num_classes=100)
    net.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)  # CIFAR stem: 3x3 stride 1
    net.maxpool = nn.Identity()  # no max-pool at 32x32
    return (
        _Normalizing(net),
        net,
        "torchvision resnet18(num_classes=100) with a CIFAR stem (MODELS has no resnet18 yet)",
    )


def reference_preprocess(images: np.ndarray) -> torch.Tensor:
    """The reference shape: each image through ToTensor + Normalize in a Python loop, then stacked."""
    from torchvision.transforms import functional as TF

    return torch.stack([TF.normalize(TF.to_tensor(img), MEAN, STD) for img in images])


@torch.inference_mode()
def reference_evaluate(net: nn.Module, images: np.ndarray, batch_size: int, device) -> np.ndarray:
    preds = []
    for lo in range(0, len(images), batch_size):
        x = reference_preprocess(images[lo : lo + batch_size]).to(device)
        preds.append(net(x).argmax(1).cpu())
    return torch.cat(preds).numpy()


def _timed(fn, repeats: int = 1) -> float:
    best = float("inf")
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def calibration_overhead(model, images, labels, repeats: int, batch_size, device, precision) -> dict:
    """Median seconds of the argmax-only path and of the path with calibration scores, timed
    alternately (argmax, scores, argmax, ...) on the same images, and their ratio."""
    predict_scores(model, images[:64], labels[:64], device=device, precision=precision)  # warm-up
    plain, scored = [], []
    for _ in range(repeats):
        plain.append(
            _timed(
                lambda: predict_labels(
                    model, images, batch_size=batch_size, device=device, precision=precision
                )
            )
        )
        scored.append(
            _timed(
                lambda: predict_scores(
                    model, images, labels, batch_size=batch_size, device=device, precision=precision
                )
            )
        )
    a, b = float(np.median(plain)), float(np.median(scored))
    return {"argmax_s": a, "calibration_s": b, "ratio": b / a, "plain": plain, "scored": scored}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=512, help="images evaluated end to end (default 512)")
    p.add_argument("--prep-images", type=int, default=5000, help="images for the preprocessing-only timing")
    p.add_argument("--batch-size", type=int, default=128, help="batch size of the reference path (its 128)")
    p.add_argument(
        "--our-batch-size",
        type=int,
        default=None,
        help="batch size of this suite's path (default: 256 CPU; CUDA: sized to the device memory, 1024-8192)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    p.add_argument(
        "--skip-reference", action="store_true", help="time only this suite's path (large --images)"
    )
    p.add_argument(
        "--calibration-overhead",
        type=int,
        metavar="R",
        default=0,
        help="time the path with calibration scores against the argmax-only one, alternated R times",
    )
    p.add_argument("--arch", default="resnet18", help="model of --calibration-overhead (MODELS name)")
    p.add_argument("--classes", type=int, default=100, help="classes of --calibration-overhead's model")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = resolve_device(args.device)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (max(args.images, args.prep_images), 32, 32, 3), dtype=np.uint8)
    if args.calibration_overhead:
        model = build_model(args.arch, num_classes=args.classes).to(device).eval()
        labels = rng.integers(0, args.classes, len(images))
        ev = images[: args.images]
        r = calibration_overhead(
            model,
            ev,
            labels[: len(ev)],
            args.calibration_overhead,
            args.our_batch_size,
            device,
            args.precision,
        )
        dev_name = (
            torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {args.threads} thread(s)"
        )
        print(
            f"device: {dev_name}; torch {torch.__version__}; {args.arch} ({args.classes} classes); precision "
            f"{args.precision}; {len(ev)} images per pass; {args.calibration_overhead} alternated repeats"
        )
        print("argmax only (s): " + ", ".join(f"{t:.3f}" for t in r["plain"]))
        print("with calibration (s): " + ", ".join(f"{t:.3f}" for t in r["scored"]))
        print(
            f"median argmax only {r['argmax_s']:.3f} s, with calibration {r['calibration_s']:.3f} s: "
            f"ratio {r['ratio']:.3f}"
        )
        return 0
    model, net, desc = resnet18_model()
    model, net = model.to(device).eval(), net.to(device).eval()

    prep = images[: args.prep_images]
    t_ref_prep = _timed(lambda: reference_preprocess(prep), 2)
    t_our_prep = _timed(
        lambda: [to_device_batch(prep[i : i + 512], device) for i in range(0, len(prep), 512)], 2
    )

    ev = images[: args.images]
    predict_labels(model, ev[:64], device=device, precision=args.precision)  # warm-up (kernels, allocator)
    t_our = _timed(
        lambda: predict_labels(
            model, ev, batch_size=args.our_batch_size, device=device, precision=args.precision
        )
    )
    rows = [
        ("preprocessing only (uint8 -> normalized float)", len(prep) / t_ref_prep, len(prep) / t_our_prep)
    ]
    if not args.skip_reference:
        t_ref = _timed(lambda: reference_evaluate(net, ev, args.batch_size, device))
        ours, ref = (
            predict_labels(model, ev, device=device, precision=args.precision),
            reference_evaluate(net, ev, args.batch_size, device),
        )
        agree = float((ours == ref).mean())
        rows.append((f"end to end, {desc}", len(ev) / t_ref, len(ev) / t_our))
    else:
        agree = float("nan")
        rows.append((f"end to end, {desc}", float("nan"), len(ev) / t_our))

    dev_name = (
        torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {args.threads} thread(s)"
    )
    print(
        f"device: {dev_name}; torch {torch.__version__}; precision {args.precision}; "
        f"{args.images} images end to end, {args.prep_images} for preprocessing; "
        f"top-1 predictions agree with the reference path: {agree:.4f}"
    )
    print()
    print("| stage | reference shape (images/s) | robustbench-aux (images/s) | speed-up |")
    print("| --- | ---: | ---: | ---: |")
    for name, ref_ips, our_ips in rows:
        speed = our_ips / ref_ips if ref_ips == ref_ips else float("nan")
        print(f"| {name} | {ref_ips:,.0f} | {our_ips:,.0f} | {speed:.1f}x |")
    full = 950_000 / rows[-1][2]
    print(f"\nprojected full CIFAR-100-C (950,000 images) at this speed: {full:,.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
