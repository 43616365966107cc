"""Training throughput of the real engine: eager vs optimised step per method, and packing.

    python benchmarks/engine_speed.py steps --device cuda --data DIR [--arch resnet18] [--n-train 6000]
        [--methods plain,naive_augmentation,per_corruption,auxiliary,augmix] [--variants fp32,eager,optimised]
        [--budget 240] --json OUT.json
    python benchmarks/engine_speed.py packing --device cuda --data DIR [--method auxiliary] [--ks 1,2,4,8]
        [--mps auto|off] [--budget 120] --json OUT.json

Every number is ``robustbench-aux train`` itself (a subprocess, 2 epochs of ``--n-train`` CIFAR-10
images, the ``reference`` recipe): the images/s of the last epoch from its ``metrics.csv`` (clean
training images per second, each with all its views), so process start, data upload and compilation
are left out. Variants (``--set`` switches of the run, recorded in its config.json):

- ``fp32``: ``amp=off`` (the reference numerics), eager;
- ``eager``: ``amp=bf16``, eager, torch's default SGD kernels (the engine's CUDA defaults so far);
- ``optimised``: ``amp=bf16`` + ``compile=true compile_mode=reduce-overhead`` (CUDA graphs) +
  ``optimizer_impl=fused`` (CUDA only; on the CPU the cell says so).

``packing`` starts K identical runs (seeds 0..K-1) at once, through CUDA MPS when its daemon starts
(``--mps auto``), and sums their last-epoch images/s: the aggregate throughput of K runs on one
device. ``factor`` = aggregate(K) / aggregate(1) is what ``benchmarks/estimate_grid_time.py`` reads.
Runs that would start after ``--budget`` seconds are not started; their cells say "not measured".
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = {
    "fp32": ["amp=off"],
    "eager": ["amp=bf16"],
    "optimised": ["amp=bf16", "compile=true", "compile_mode=reduce-overhead", "optimizer_impl=fused"],
}


def _argv(args, method: str, seed: int, out: Path, sets: list[str]) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "robustbench_aux",
        "train",
        "--method",
        method,
        "--arch",
        args.arch,
        "--recipe",
        "reference",
        "--dataset",
        "cifar10",
        "--data",
        args.data,
        "--n-train",
        str(args.n_train),
        "--epochs",
        str(args.epochs),
        "--seed",
        str(seed),
        "--device",
        args.device,
        "--out",
        str(out),
    ]
    for s in sets:
        argv += ["--set", s]
    return argv


def _last_ips(out: Path) -> float:
    with open(out / "metrics.csv") as f:
        return float(list(csv.DictReader(f))[-1]["images_per_s"])


def _run(argvs: list[list[str]], outs: list[Path], env: dict, limit: float) -> list[float | str]:
    """Start every command at once; the last-epoch images/s of each (or why there is none)."""
    procs = [
        subprocess.Popen(
            a, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ, **env}
        )
        for a in argvs
    ]
    deadline = time.monotonic() + limit
    results: list[float | str] = []
    for p, out in zip(procs, outs):
        try:
            _, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            results.append(f"timed out ({limit:.0f} s)")
            continue
        if p.returncode != 0:
            lines = [ln for ln in err.strip().splitlines() if ln.strip()]
            results.append(f"failed: {(lines or ['exit ' + str(p.returncode)])[-1][:120]}")
        else:
            results.append(_last_ips(out))
    return results


def steps(args, work: Path, start: float) -> dict:
    table: dict[str, dict] = {}
    for method in args.methods:
        table[method] = {}
        for variant in args.variants:
            left = args.budget - (time.monotonic() - start)
            if variant == "optimised" and args.device == "cpu":
                table[method][variant] = "CUDA only"
            elif left < 10:
                table[method][variant] = "not measured (budget)"
            else:
                out = work / f"{method}-{variant}"
                (ips,) = _run(
                    [_argv(args, method, 0, out, VARIANTS[variant])], [out], {}, min(left, args.limit)
                )
                table[method][variant] = ips
            print(f"{method:20s} {variant:10s} {table[method][variant]}", flush=True)
    return {"kind": "steps", "images_per_s": table}


def packing(args, work: Path, start: float) -> dict:
    from robustbench_aux.sweep.mps import start_mps

    daemon, why = (None, "--mps off")
    if args.device == "cuda" and args.mps == "auto" and max(args.ks) > 1:
        daemon, why = start_mps()
    env = daemon.env if daemon else {}
    how = "CUDA MPS" if daemon else ("CPU processes" if args.device == "cpu" else f"plain processes ({why})")
    agg: dict[str, float | str] = {}
    per_run: dict[str, list] = {}
    try:
        for k in args.ks:
            left = args.budget - (time.monotonic() - start)
            if left < 10:
                agg[str(k)] = "not measured (budget)"
                continue
            outs = [work / f"pack{k}-s{s}" for s in range(k)]
            res = _run(
                [_argv(args, args.method, s, o, VARIANTS[args.variant]) for s, o in zip(range(k), outs)],
                outs,
                env,
                min(left, args.limit),
            )
            per_run[str(k)] = res
            agg[str(k)] = (
                sum(res)
                if all(isinstance(r, float) for r in res)
                else next(r for r in res if not isinstance(r, float))
            )
            print(f"K={k}: {agg[str(k)]}", flush=True)
    finally:
        if daemon is not None:
            daemon.stop()
    base = agg.get("1")
    factor = {
        k: (v / base if isinstance(v, float) and isinstance(base, float) else "unmeasured")
        for k, v in agg.items()
    }
    return {
        "kind": "packing",
        "method": args.method,
        "variant": args.variant,
        "via": how,
        "aggregate_images_per_s": agg,
        "factor": factor,
        "per_run_images_per_s": per_run,
    }


def _cell(v) -> str:
    return f"{v:,.0f}" if isinstance(v, float) else str(v)


def markdown(result: dict, args) -> str:
    lines = [
        f"{args.arch}, {args.n_train} CIFAR-10 images x {args.epochs} epochs per run, device {args.device}; "
        "images/s of the last epoch (robustbench-aux train)",
        "",
    ]
    if result["kind"] == "steps":
        variants = args.variants
        lines += [
            "| method | " + " | ".join(variants) + " | optimised / eager |",
            "| --- | " + " | ".join("---:" for _ in variants) + " | ---: |",
        ]
        for method, row in result["images_per_s"].items():
            o, e = row.get("optimised"), row.get("eager")
            ratio = f"{o / e:.2f}x" if isinstance(o, float) and isinstance(e, float) else "n/a"
            lines.append(f"| {method} | " + " | ".join(_cell(row.get(v)) for v in variants) + f" | {ratio} |")
    else:
        lines += [
            f"{result['method']} ({result['variant']}), K runs at once via {result['via']}",
            "",
            "| K | aggregate images/s | factor vs K=1 |",
            "| ---: | ---: | ---: |",
        ]
        for k, v in result["aggregate_images_per_s"].items():
            f = result["factor"][k]
            lines.append(f"| {k} | {_cell(v)} | {f'{f:.2f}x' if isinstance(f, float) else f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("steps", "packing"))
    p.add_argument("--device", default="cuda")
    p.add_argument("--data", required=True, help="data root holding cifar10/")
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--n-train", type=int, default=6000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument(
        "--methods",
        type=lambda s: s.split(","),
        default=["plain", "naive_augmentation", "per_corruption", "auxiliary", "augmix"],
    )
    p.add_argument("--variants", type=lambda s: s.split(","), default=list(VARIANTS))
    p.add_argument("--method", default="auxiliary", help="packing: the method of the K runs")
    p.add_argument("--variant", default="eager", choices=list(VARIANTS), help="packing: the runs' switches")
    p.add_argument("--ks", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4, 8])
    p.add_argument("--mps", choices=("auto", "off"), default="auto")
    p.add_argument("--budget", type=float, default=240, help="seconds after which no run is started")
    p.add_argument("--limit", type=float, default=150, help="seconds one measurement may take")
    p.add_argument("--json", help="write the numbers here")
    p.add_argument("--markdown", help="write the table here")
    args = p.parse_args(argv)
    for v in args.variants:
        if v not in VARIANTS:
            raise SystemExit(f"error: unknown variant {v!r} (choose from {', '.join(VARIANTS)})")
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        result = (steps if args.what == "steps" else packing)(args, Path(tmp), start)
    result.update({"arch": args.arch, "n_train": args.n_train, "epochs": args.epochs, "device": args.device})
    if args.device == "cuda":
        import torch

        result["gpu"] = torch.cuda.get_device_name()
    text = markdown(result, args)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
