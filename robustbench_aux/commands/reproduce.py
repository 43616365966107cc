"""``robustbench-aux reproduce``: prepare data, get CIFAR-C, train + evaluate a grid, write the report.

``make reproduce-cifar100`` and ``make demo`` call this with their grid files
(``baselines/grids/cifar100.toml``, ``baselines/grids/demo.toml``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from robustbench_aux.commands.sweep import add_packing_options, add_sweep_filters, visible_gpus
from robustbench_aux.infra.shipped import resolve_grid
from robustbench_aux.orchestrate.pipeline import Pipeline, run_pipeline
from robustbench_aux.sweep import load_sweep
from robustbench_aux.sweep.job import shown


def add_parser(sub) -> None:
    p = sub.add_parser(
        "reproduce", help="the whole pipeline: data, CIFAR-C, grid of runs, report", description=__doc__
    )
    p.add_argument(
        "--grid",
        required=True,
        help="grid TOML file, or a shipped grid by name: cifar100, demo, cpu_cifar10, augmix_published (baselines/grids/)",
    )
    p.add_argument("--report", required=True, help="report directory (index.html and CSV tables)")
    p.add_argument("--no-download", action="store_true", help="never download the dataset")
    p.add_argument(
        "--download-c",
        action="store_true",
        help="download the published CIFAR-C (data download-c) when it is not under the data "
        "root; generate it only if that fails (no network)",
    )
    p.add_argument(
        "--generate-n",
        type=int,
        help="when CIFAR-C must be generated: only the first N test images (default: all)",
    )
    p.add_argument("--workers", type=int, default=1, help="parallel runs on the CPU (default 1)")
    p.add_argument(
        "--stop-after",
        choices=("train", "report"),
        default="report",
        help="train: only train the grid's runs (skipping finished ones, resuming interrupted ones) and "
        "record the invocation; a later reproduce evaluates them and writes the report (default: report)",
    )
    p.add_argument("--hint", default="", help="text appended to a missing-dataset error (used by make demo)")
    add_packing_options(p)
    add_sweep_filters(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from robustbench_aux.commands.sweep import overrides_from

    overrides = overrides_from(args)
    grid = resolve_grid(args.grid)
    # the command line first, then the grid's [defaults], then the built-in defaults
    defaults = load_sweep(grid).defaults
    dataset = overrides.pop("dataset", None) or defaults.get("dataset") or "cifar100"
    data = Path(overrides.pop("data", None) or defaults.get("data") or "data")
    out = Path(overrides.pop("out", None) or defaults.get("out") or f"runs/{dataset}")
    corruptions = overrides.pop("corruptions", None)
    pipeline = Pipeline(
        grid=grid,
        dataset=dataset,
        data=data,
        out=out,
        report=Path(args.report),
        download=not args.no_download,
        generate_n=args.generate_n,
        filters={"methods": args.methods, "archs": args.archs, "seeds": args.seeds},
        overrides=overrides,
        workers=args.workers,
        gpus=args.gpus or visible_gpus(),
        per_gpu=args.per_gpu,
        mps=args.mps,
        hint=f"; {args.hint}" if args.hint else "",
        corruptions=Path(corruptions) if corruptions else None,
        download_c=args.download_c,
        stop_after=args.stop_after,
        command=shown(args.argv) if getattr(args, "argv", None) else "",
    )
    index = run_pipeline(pipeline)
    if args.stop_after == "train":
        print(f"trained; invocation recorded in {pipeline.report / 'reproduction.json'}")
    else:
        print(f"report: {index}")
    return 0
