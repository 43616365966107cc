"""CIFAR-10-C-bar: speed of the batched corruptions vs the per-image port, and the fidelity table.

    python benchmarks/cbar.py [--device cpu|cuda] [--batch 1000] [--n-ref 20] [--threads 1]
    python benchmarks/cbar.py --fidelity 256      # the fidelity table of docs/corruptions.md instead

Speed, per corruption over its 5 severities: ms per image of our batched path (a batch of
``--batch`` CIFAR-10 test images, best of ``--repeats`` after a warm-up) and of the per-image numpy
port of the authors' algorithms (``tests/cbar_reference.py``: their per-pixel formulation, one image
at a time, on the first ``--n-ref`` of the same images), the ratio, its median over the ten, and the
estimated time of a whole CIFAR-10-C-bar (10 x 5 x 10,000 images) each way.

Fidelity, per corruption (worst severity): the port's own random draws injected into ours, compared
value by value (% within 1 grey level, mean |diff|, mean signed diff, max |diff|); and our own
sampler against the port's sampler by distribution (gap of the mean and of the std of corrupted −
clean, relative to the port's std), next to the same gap between two runs of the port with other
seeds (the sampling noise of that measure at this N).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import cbar_reference as ref  # noqa: E402

from robustbench_aux.catalog import CBAR_10, SEVERITIES  # noqa: E402
from robustbench_aux.corruptions import corrupt_batch  # noqa: E402
from robustbench_aux.datasets import load_dataset  # noqa: E402

FULL_PER_CORRUPTION = 5 * 10_000


def time_ours(x: torch.Tensor, name: str, repeats: int) -> float:
    g = torch.Generator(device=x.device).manual_seed(0)
    for s in SEVERITIES:  # warm-up: the cached matrices of every severity
        corrupt_batch(x[:8], name, s, preset=ref.PRESET, generator=g)
    best = float("inf")
    for _ in range(repeats):
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
        t0 = time.perf_counter()
        for s in SEVERITIES:
            corrupt_batch(x, name, s, preset=ref.PRESET, generator=g)
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
        best = min(best, time.perf_counter() - t0)
    return best / (len(SEVERITIES) * len(x))


def time_port(images: np.ndarray, name: str) -> float:
    t0 = time.perf_counter()
    for s in SEVERITIES:
        ref.port_batch(images, name, s)
    return (time.perf_counter() - t0) / (len(SEVERITIES) * len(images))


def speed(images: np.ndarray, device: str, n_ref: int, repeats: int, names) -> None:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device)
    rows = []
    print("| corruption | ours ms/img | per-image port ms/img | speed-up |")
    print("| --- | ---: | ---: | ---: |")
    for name in names:
        ours = time_ours(x, name, repeats)
        port = time_port(images[:n_ref], name)
        rows.append((name, ours, port))
        print(f"| {name} | {1e3 * ours:.4f} | {1e3 * port:.3f} | {port / ours:.1f}x |", flush=True)
    ratios = [p / o for _, o, p in rows]
    print()
    print(
        f"median speed-up over the {len(rows)}: {statistics.median(ratios):.1f}x "
        f"(min {min(ratios):.1f}x, max {max(ratios):.1f}x)"
    )
    total_ours = sum(o for _, o, _ in rows) * FULL_PER_CORRUPTION
    total_port = sum(p for _, _, p in rows) * FULL_PER_CORRUPTION
    print(f"whole-set ratio (sum of times): {total_port / total_ours:.1f}x")
    print("estimated full CIFAR-10-C-bar (500,000 images), one process:")
    print(f"  ours ({device}):       {total_ours:8.1f} s")
    print(f"  per-image port (CPU): {total_port:8.1f} s  ({total_port / 3600:.2f} h)")


def fidelity(images: np.ndarray, names) -> None:
    print(
        "| corruption | % ≤1 (min) | max mean abs | mean signed, severities 1-5 | max abs | own gap mean/std | port vs port | ok |"
    )
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: | --- |")
    clean = images.astype(np.float64)
    for name in names:
        rows = [ref.measure(images, name, s) for s in SEVERITIES]
        noise = []
        for s in SEVERITIES:
            a, _ = ref.port_batch(images, name, s, seed=1)
            b, _ = ref.port_batch(images, name, s, seed=2)
            da, db = a.astype(np.float64) - clean, b.astype(np.float64) - clean
            scale = max(da.std(), 1e-9)
            noise.append((abs(da.mean() - db.mean()) / scale, abs(da.std() - db.std()) / scale))
        agree = min(r["agree_1"] for r in rows)
        own = (max(r["mean_gap"] for r in rows), max(r["std_gap"] for r in rows))
        rr = (max(n[0] for n in noise), max(n[1] for n in noise))
        signed = " / ".join(f"{r['mean_signed']:+.4f}" for r in rows)
        ok = agree >= 99.5 and all(abs(r["mean_signed"]) <= 0.3 for r in rows)
        print(
            f"| {name} | {agree:.2f} | {max(r['mean_abs'] for r in rows):.4f} | {signed} | "
            f"{max(r['max_abs'] for r in rows)} | {100 * own[0]:.1f}% / {100 * own[1]:.1f}% | "
            f"{100 * rr[0]:.1f}% / {100 * rr[1]:.1f}% | {'yes' if ok else 'NO'} |",
            flush=True,
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--batch", type=int, default=1000, help="images per batch for our path")
    p.add_argument("--n-ref", type=int, default=20, help="images for the per-image port")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--corruptions", help="comma-separated subset (default: all ten)")
    p.add_argument("--fidelity", type=int, metavar="N", help="print the fidelity table on N images and exit")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    names = args.corruptions.split(",") if args.corruptions else list(CBAR_10)
    n = args.fidelity or args.batch
    images = np.array(load_dataset("cifar10", args.data, n_test=n).test_x)
    print(
        f"CIFAR-10 test images from {args.data}: {len(images)}; torch {torch.__version__}, threads {args.threads}"
    )
    if args.fidelity:
        fidelity(images, names)
    else:
        speed(images, args.device, args.n_ref, args.repeats, names)


if __name__ == "__main__":
    main()
