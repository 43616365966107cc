"""Speed of the batched corruptions vs imagecorruptions' per-image loop, side by side in one run.

    python benchmarks/corruptions.py [--device cpu|cuda] [--batch 1000] [--n-ref 50] [--threads 1]
    python benchmarks/corruptions.py --fidelity 256     # the fidelity table instead (CPU)
    python benchmarks/corruptions.py --severity 500     # mean |change| per severity instead (CPU)

Per corruption (all 5 severities): ms per image of our batched path at the ``cifar`` and the
``imagenet`` preset, of imagecorruptions 1.1.2 (``imagenet`` parameters, one image at a time, on
the CPU), the speed-up at the same (imagenet) preset, and the estimated time to generate a full
CIFAR-100-C (19 corruptions x 5 severities x 10,000 images = 950,000 images) each way.
Images: the first ``--batch`` test images of CIFAR-10 from ``--data`` (synthetic if absent).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

# One thread for every library on both sides (numpy's BLAS and OpenCV inside imagecorruptions too),
# set before they are imported; torch's own threads follow --threads.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from robustbench_aux.corruptions import ALL_19, corrupt_batch, select_corruptions  # noqa: E402
from robustbench_aux.corruptions.compat import reference_corrupt  # noqa: E402
from robustbench_aux.datasets import load_dataset  # noqa: E402
from robustbench_aux.errors import UserError  # noqa: E402

FULL_PER_CORRUPTION = 5 * 10_000  # images per corruption file of CIFAR-100-C


def load_images(data: str, n: int) -> tuple[np.ndarray, str]:
    try:
        d = load_dataset("cifar10", data, n_test=n)
        return np.array(d.test_x), d.meta.get("copy", "cifar10")
    except UserError:
        d = load_dataset("synthetic10", n_test=n)
        return np.array(d.test_x), "synthetic (CIFAR-10 not found)"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ours(x: torch.Tensor, name: str, preset: str, repeats: int) -> float:
    """Seconds per image over the 5 severities (best of ``repeats``), after one warm-up pass."""
    g = torch.Generator(device=x.device).manual_seed(0)
    corrupt_batch(x[:8], name, 5, preset=preset, generator=g)  # warm-up: caches, textures, kernels
    best = float("inf")
    for _ in range(repeats):
        sync(x.device)
        start = time.perf_counter()
        for s in range(1, 6):
            corrupt_batch(x, name, s, preset=preset, generator=g)
        sync(x.device)
        best = min(best, time.perf_counter() - start)
    return best / (5 * len(x))


def time_reference(images: np.ndarray, name: str) -> float:
    reference_corrupt(images[:1], name, 1, seeds=[0])  # warm-up: the import, first-call costs
    start = time.perf_counter()
    for s in range(1, 6):
        reference_corrupt(images, name, s, seeds=np.arange(len(images)))
    return (time.perf_counter() - start) / (5 * len(images))


def fidelity_table(images: np.ndarray, names: list[str]) -> None:
    """Per corruption, over its 5 severities: the imagenet preset against imagecorruptions. For random
    corruptions, also two reference runs with different seeds against each other (sampling noise)."""
    from robustbench_aux.corruptions.fidelity import _gaps, measure_fidelity

    n = len(images)
    clean = images.astype(np.float64)
    print(f"# fidelity on {n} images per severity (imagenet preset vs imagecorruptions 1.1.2)")
    print(
        "| corruption | method | min % ≤1 | max mean abs | mean signed, severities 1-5 | max abs "
        "| own gap mean/std | ref vs ref | ok |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for name in names:
        rs = [measure_fidelity(images, name, s, seed=s) for s in range(1, 6)]
        gap = f"{max(r.mean_gap for r in rs) * 100:.1f}% / {max(r.std_gap for r in rs) * 100:.1f}%"
        ref_gap = "–"
        if rs[0].method != "deterministic":
            pairs = [
                _gaps(
                    reference_corrupt(images, name, s, seeds=np.arange(n) + 7_777_777 + s),
                    reference_corrupt(images, name, s, seeds=np.arange(n) + s * 100_003),
                    clean,
                )
                for s in range(1, 6)
            ]
            ref_gap = f"{max(p[0] for p in pairs) * 100:.1f}% / {max(p[1] for p in pairs) * 100:.1f}%"
        ok = "yes" if all(r.passed for r in rs) else "NO"
        if rs[0].method == "distribution":
            cells = "– | – | – | –"
        else:
            agree = min(r.agree_1 for r in rs)
            signed = " / ".join(f"{r.mean_signed:+.4f}" for r in rs)
            cells = f"{agree:.2f} | {max(r.mean_abs for r in rs):.4f} | {signed} | {max(r.max_abs for r in rs):.0f}"
        print(f"| {name} | {rs[0].method} | {cells} | {gap} | {ref_gap} | {ok} |", flush=True)


def severity_table(images: np.ndarray, names: list[str]) -> None:
    """Mean absolute change from the clean image (grey levels) per severity: ours at both presets and
    imagecorruptions (imagenet parameters)."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    print(f"# mean |corrupted - clean| in grey levels, severities 1..5, on {len(images)} images")
    print("| corruption | ours cifar | ours imagenet | imagecorruptions |")
    print("| --- | --- | --- | --- |")
    for name in names:
        cells = []
        for preset in ("cifar", "imagenet"):
            vals = []
            for s in range(1, 6):
                y = corrupt_batch(x, name, s, preset=preset, generator=torch.Generator().manual_seed(s))
                vals.append(float((y.float() - x.float()).abs().mean()))
            cells.append(" / ".join(f"{v:.1f}" for v in vals))
        ref = [np.abs(reference_corrupt(images, name, s).astype(float) - images).mean() for s in range(1, 6)]
        cells.append(" / ".join(f"{v:.1f}" for v in ref))
        print(f"| {name} | {' | '.join(cells)} |", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    p.add_argument("--batch", type=int, default=1000, help="images per batch for our path")
    p.add_argument("--n-ref", type=int, default=50, help="images for the imagecorruptions loop")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--corruptions", help="comma-separated subset (default: all 19)")
    p.add_argument("--json", help="also write the rows to this JSON file")
    p.add_argument("--fidelity", type=int, metavar="N", help="print the fidelity table on N images and exit")
    p.add_argument(
        "--severity", type=int, metavar="N", help="print mean |change| per severity on N images and exit"
    )
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    try:
        import cv2

        cv2.setNumThreads(
            1
        )  # OpenCV (used by imagecorruptions and our spatter/frost helpers) single-threaded
    except ImportError:
        pass
    device = torch.device(a.device)
    names = select_corruptions(a.corruptions) if a.corruptions else list(ALL_19)
    if a.fidelity:
        return fidelity_table(load_images(a.data, a.fidelity)[0], names)
    if a.severity:
        return severity_table(load_images(a.data, a.severity)[0], names)
    images, label = load_images(a.data, max(a.batch, a.n_ref))
    x = torch.from_numpy(images[: a.batch]).permute(0, 3, 1, 2).contiguous().to(device)
    print(
        f"# device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
        f"torch threads {torch.get_num_threads()}, batch {a.batch}, reference images {a.n_ref}, data: {label}"
    )
    rows = []
    print("| corruption | ours cifar ms/img | ours imagenet ms/img | imagecorruptions ms/img | speed-up |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in names:
        cifar = time_ours(x, name, "cifar", a.repeats) * 1e3
        imagenet = time_ours(x, name, "imagenet", a.repeats) * 1e3
        ref = time_reference(images[: a.n_ref], name) * 1e3
        rows.append(
            {
                "corruption": name,
                "ours_cifar_ms": cifar,
                "ours_imagenet_ms": imagenet,
                "reference_ms": ref,
                "speedup": ref / imagenet,
            }
        )
        print(f"| {name} | {cifar:.4f} | {imagenet:.4f} | {ref:.3f} | {ref / imagenet:.1f}x |", flush=True)
    speedups = [r["speedup"] for r in rows]
    total = {
        k: sum(r[k] for r in rows) * FULL_PER_CORRUPTION / 1e3
        for k in ("ours_cifar_ms", "ours_imagenet_ms", "reference_ms")
    }
    print(
        f"\nmedian speed-up (imagenet preset vs imagecorruptions): {statistics.median(speedups):.1f}x "
        f"(min {min(speedups):.1f}x, max {max(speedups):.1f}x)"
    )
    print("estimated full CIFAR-100-C (950,000 images) for these corruptions, one process:")
    print(f"  ours, cifar preset:       {total['ours_cifar_ms']:9.1f} s")
    print(f"  ours, imagenet preset:    {total['ours_imagenet_ms']:9.1f} s")
    print(
        f"  imagecorruptions (CPU):   {total['reference_ms']:9.1f} s  ({total['reference_ms'] / 3600:.2f} h)"
    )
    if a.json:
        Path(a.json).write_text(
            json.dumps(
                {
                    "device": str(device),
                    "threads": a.threads,
                    "batch": a.batch,
                    "rows": rows,
                    "totals_s": total,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
