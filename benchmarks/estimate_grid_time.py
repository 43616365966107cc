"""GPU time of a reproduction grid from measured training throughput.

    python benchmarks/estimate_grid_time.py [--grid baselines/grids/cifar100.toml]
        [--throughput benchmarks/results/h200-2026-11-26.json] [--train-images 50000]

Per run: epochs (from its recipe, --epochs and --set, resolved as `train` resolves them) x training
images / the measured images/s of its method and architecture, plus one evaluation. Ablation
variants take their method's rate. A method measured on one architecture only is scaled by the
ratio of plain training's rates (an upper bound where augmentation, not the network, dominates);
the table marks such rows "scaled". Prints one row per run and the total.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from robustbench_aux.config import resolve_config
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
    a = p.parse_args(argv)
    measured = json.loads(Path(a.throughput).read_text())
    rates = measured["train_images_per_s"]
    eval_s = measured.get("evaluate_process_s", 0.0)
    print(f"# {Path(a.grid).name} on {measured['device']} (measured {measured['date']})")
    print("| run | epochs | images/s | source | hours |")
    print("| --- | ---: | ---: | --- | ---: |")
    total = 0.0
    jobs = load_sweep(a.grid).jobs
    for job in jobs:
        train = job.steps[0].argv
        method, arch = _flag(train, "--method"), _flag(train, "--arch")
        epochs = _flag(train, "--epochs")
        cfg = resolve_config(
            method=method,
            arch=arch,
            dataset=_flag(train, "--dataset") or "cifar100",
            seed=int(_flag(train, "--seed") or 0),
            recipe=_flag(train, "--recipe") or "reference",
            overrides=_sets(train),
            epochs=int(epochs) if epochs else None,
        )
        images = cfg.train.n_train or a.train_images
        speed, source = rate(rates, method, arch)
        seconds = cfg.train.epochs * images / speed + eval_s
        total += seconds
        print(f"| {job.name} | {cfg.train.epochs} | {speed:,.0f} | {source} | {seconds / 3600:.2f} |")
    print(
        f"\ntotal: {total / 3600:.1f} GPU-hours for {len(jobs)} runs on one such GPU "
        f"(+ {measured.get('generate_process_s', 0):.0f} s to generate CIFAR-100-C)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
