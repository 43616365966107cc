"""GPU time of a reproduction grid from measured training throughput.

    python benchmarks/estimate_grid_time.py [--grid baselines/grids/cifar100.toml]
        [--throughput benchmarks/results/h200-2026-11-26.json] [--train-images 50000]
        [--per-gpu K] [--packing benchmarks/results/packing-h200.json]

Per run: epochs (from its recipe, --epochs and --set, resolved as `train` resolves them) x training
images / the measured images/s of its method and architecture, plus one evaluation. Ablation
variants take their method's rate. A method measured on one architecture only is scaled by the
ratio of plain training's rates (an upper bound where augmentation, not the network, dominates);
the table marks such rows "scaled". Prints one row per run and the total.

Precision: each run's ``train.amp`` (after its recipe and ``--set``) picks the rates: bf16 (``bf16``,
or ``auto`` on a GPU) from ``train_images_per_s``, fp32 (``off``) from ``train_images_per_s_fp32``.
A run whose precision was never measured is printed "unmeasured" and left out of the total, which
then says how many runs it lacks. ``--precision fp32`` prices the whole grid in fp32 instead.

Packing (``--per-gpu K``, K runs at once on one GPU): the total divided by the aggregate-throughput
factor for K measured by ``benchmarks/engine_speed.py packing`` (``benchmarks/gpu_check.sh`` writes
it as ``packing.json``; the K=1 figure is the plain total). Until that file holds a measured factor
for K, the packed total is printed as "unmeasured", never guessed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from robustbench_aux.config import resolve_config
from robustbench_aux.methods import METHODS
from robustbench_aux.sweep.grid import load_sweep

REPO = Path(__file__).resolve().parents[1]


def _flag(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def _sets(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]


def rate(rates: dict, method: str, arch: str) -> tuple[float, str]:
    """(images/s, how it was obtained) for ``method`` on ``arch``."""
    if method in rates.get(arch, {}):
        return rates[arch][method], "measured"
    for other, table in rates.items():
        if method in table and "plain" in table and "plain" in rates.get(arch, {}):
            return table[method] * rates[arch]["plain"] / table["plain"], f"scaled from {other}"
    raise SystemExit(f"error: no measured or scalable throughput for {method} on {arch}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--grid", default=str(REPO / "baselines/grids/cifar100.toml"))
    p.add_argument("--throughput", default=str(REPO / "benchmarks/results/h200-2026-11-26.json"))
    p.add_argument("--train-images", type=int, default=50_000, help="training images per epoch")
    p.add_argument("--precision", choices=("bf16", "fp32"), help="price every run in this precision")
    p.add_argument("--per-gpu", type=int, default=1, help="runs at once per GPU (packing)")
    p.add_argument(
        "--packing",
        default=str(REPO / "benchmarks/results/packing-h200.json"),
        help="aggregate-throughput factors per K (benchmarks/engine_speed.py packing --json)",
    )
    a = p.parse_args(argv)
    measured = json.loads(Path(a.throughput).read_text())
    tables = {"bf16": measured["train_images_per_s"], "fp32": measured.get("train_images_per_s_fp32", {})}
    eval_s = measured.get("evaluate_process_s", 0.0)
    print(f"# {Path(a.grid).name} on {measured['device']} (measured {measured['date']})")
    print("| run | epochs | images/s | source | hours |")
    print("| --- | ---: | ---: | --- | ---: |")
    total, unmeasured = 0.0, []
    jobs = load_sweep(a.grid).jobs
    for job in jobs:
        train = job.steps[0].argv
        method, arch = _flag(train, "--method"), _flag(train, "--arch")
        epochs = _flag(train, "--epochs")
        cfg = resolve_config(
            methods=METHODS,
            method=method,
            arch=arch,
            dataset=_flag(train, "--dataset") or "cifar100",
            seed=int(_flag(train, "--seed") or 0),
            recipe=_flag(train, "--recipe") or "reference",
            overrides=_sets(train),
            epochs=int(epochs) if epochs else None,
        )
        images = cfg.train.n_train or a.train_images
        precision = a.precision or ("fp32" if cfg.train.amp == "off" else "bf16")
        if not tables[precision]:
            unmeasured.append(job.name)
            print(
                f"| {job.name} | {cfg.train.epochs} | unmeasured | no {precision} rate in {Path(a.throughput).name} | |"
            )
            continue
        speed, source = rate(tables[precision], method, arch)
        seconds = cfg.train.epochs * images / speed + eval_s
        total += seconds
        print(
            f"| {job.name} | {cfg.train.epochs} | {speed:,.0f} | {precision}, {source} | {seconds / 3600:.2f} |"
        )
    lacking = f", without {len(unmeasured)} unmeasured run(s): {', '.join(unmeasured)}" if unmeasured else ""
    print(
        f"\ntotal: {total / 3600:.1f} GPU-hours for {len(jobs) - len(unmeasured)} runs on one such GPU "
        f"(+ {measured.get('generate_process_s', 0):.0f} s to generate CIFAR-100-C){lacking}"
    )
    if a.per_gpu > 1:
        factor, source = packing_factor(Path(a.packing), a.per_gpu)
        if factor is None:
            print(f"packed, {a.per_gpu} runs per GPU: unmeasured ({source})")
        else:
            print(
                f"packed, {a.per_gpu} runs per GPU: {total / factor / 3600:.1f} GPU-hours "
                f"(aggregate throughput x{factor:.2f}, {source})"
            )
    return 0


def packing_factor(path: Path, k: int) -> tuple[float | None, str]:
    """(measured aggregate-throughput factor for K runs at once, where it comes from), or (None, why)."""
    if not path.is_file():
        return None, f"no packing measurement: {path} does not exist; run benchmarks/gpu_check.sh on a GPU"
    data = json.loads(path.read_text())
    value = data.get("factor", {}).get(str(k))
    if not isinstance(value, (int, float)):
        measured = [key for key, v in data.get("factor", {}).items() if isinstance(v, (int, float))]
        return (
            None,
            f"{path.name} has no measured factor for K={k} (measured: {', '.join(measured) or 'none'})",
        )
    return float(value), (
        f"{data.get('method', '?')} runs via {data.get('via', '?')} on "
        f"{data.get('gpu', data.get('device', '?'))}, {path.name}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
