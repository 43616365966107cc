"""``robustbench-aux corrupt``: generate CIFAR-10-C / CIFAR-100-C (or CIFAR-C-bar) in the published layout.

Examples::

    robustbench-aux corrupt --dataset cifar100 --data ./data --preset cifar --out ./data/CIFAR-100-C-gen
    robustbench-aux corrupt --dataset cifar10 --data ./data --preset cifar10-c-bar \
        --out ./data/CIFAR-10-C-bar-generated

``--preset cifar10-c-bar`` writes the ten CIFAR-10-C-bar corruptions (a separate benchmark) with
the published CIFAR-10-C-bar levels; on CIFAR-100 the same levels are this suite's choice.
"""

from __future__ import annotations

import argparse
import os
import time

from robustbench_aux.corruptions import CORRUPTIONS, PRESETS, select_corruptions
from robustbench_aux.corruptions.generate import NOTE, generate_cifar_c
from robustbench_aux.corruptions.presets import CBAR_PRESET
from robustbench_aux.datasets import CifarCReader, load_dataset
from robustbench_aux.datasets.cifar_c import CBAR_DIRS, PUBLISHED_DIRS
from robustbench_aux.datasets.loading import ENV_VAR
from robustbench_aux.errors import UserError, comma_list
from robustbench_aux.infra.devices import set_threads
from robustbench_aux.lock import exclusive


def add_parser(sub) -> None:
    p = sub.add_parser(
        "corrupt",
        help="generate CIFAR-C (the 19 corruptions x 5 severities) in the published layout",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dataset", help="cifar10, cifar100 or synthetic<K> (e.g. synthetic100)")
    p.add_argument(
        "--data", help=f"data root holding <dataset>/ in the array layout (default: ${ENV_VAR}, then ./data)"
    )
    p.add_argument("--out", help="output directory (created; rerunning the same command resumes it)")
    p.add_argument(
        "--preset",
        default="cifar",
        help=f"parameter preset: {', '.join(PRESETS)} (default: cifar; {CBAR_PRESET}: the ten CIFAR-C-bar corruptions)",
    )
    p.add_argument(
        "--corruptions", help="comma-separated names (default: all of the preset: 19, or 10 for C-bar)"
    )
    p.add_argument(
        "--tags", help="comma-separated tags all chosen corruptions must carry, e.g. benchmark or noise"
    )
    p.add_argument(
        "--severities", default="1,2,3,4,5", help="comma-separated severities (default: 1,2,3,4,5)"
    )
    p.add_argument("--n", type=int, help="use only the first N test images (default: all)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:1 (default: cpu)")
    p.add_argument(
        "--workers",
        type=int,
        help="processes for the CPU-only JPEG path (default: the CPU count, at most 8; 1 = in this process)",
    )
    p.add_argument(
        "--threads",
        type=int,
        help="CPU threads of this process (default: torch's, $OMP_NUM_THREADS or all cores)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--batch-size", type=int, default=1000, help="images per batch on the device (default: 1000)"
    )
    p.add_argument("--list", action="store_true", help="list the corruptions with their tags and exit")
    p.set_defaults(func=run)


def _parse_severities(text: str) -> list[int]:
    try:
        return [int(s) for s in comma_list(text)]
    except ValueError:
        raise UserError(f"--severities must be comma-separated integers in 1..5, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    if args.list:
        for name in select_corruptions(args.corruptions, args.tags, preset=args.preset):
            info = CORRUPTIONS.entry(name)
            print(f"{name:18s} {info.info.get('device', 'any'):6s} {', '.join(sorted(info.tags))}")
        return 0
    if not args.dataset or not args.out:
        raise UserError(
            "corrupt needs --dataset and --out (e.g. --dataset cifar100 --out ./data/CIFAR-100-C-generated)"
        )
    if args.n is not None and args.n < 1:
        raise UserError(f"--n must be at least 1, got {args.n}")
    set_threads(args.threads)
    if not 0 <= args.seed <= 2**32 - 1:
        raise UserError(f"--seed must be in 0..{2**32 - 1}, got {args.seed}")
    _check_out_name(args.out, args.preset)
    names = select_corruptions(args.corruptions, args.tags, preset=args.preset)
    if not names:
        raise UserError(f"no corruption matches --corruptions {args.corruptions!r} --tags {args.tags!r}")
    data = load_dataset(args.dataset, args.data, n_test=args.n)
    start = time.perf_counter()
    with exclusive(args.out, "--out"):  # one writer per output directory
        manifest = _generate(args, data, names)
    reader = CifarCReader(args.out, num_classes=data.num_classes)  # what evaluation will read
    print(
        f"{args.out}: {reader.label}, {len(reader.corruptions)} corruption files x severities {list(reader.severities)} x "
        f"{reader.n:,} images ({manifest['preset']} preset, seed {manifest['seed']}, {NOTE}) "
        f"in {time.perf_counter() - start:.1f} s"
    )
    return 0


def _check_out_name(out: str, preset: str) -> None:
    """CIFAR-C-bar never goes into a folder named like CIFAR-C, nor CIFAR-C into a C-bar folder."""
    from pathlib import Path

    name = Path(out).name
    looks_bar = "c-bar" in name.lower() or "c_bar" in name.lower()
    if preset == CBAR_PRESET and (name in PUBLISHED_DIRS or name.endswith("-C-generated")):
        raise UserError(
            f"--out {out} is named like CIFAR-C; write CIFAR-C-bar into a folder of its own, "
            f"e.g. {Path(out).parent / CBAR_DIRS['cifar10']}"
        )
    if preset != CBAR_PRESET and looks_bar:
        raise UserError(f"--out {out} is named like CIFAR-C-bar but --preset {preset} writes CIFAR-C")


def _generate(args, data, names) -> dict:
    return generate_cifar_c(
        data.test_x,
        data.test_y,
        args.out,
        preset=args.preset,
        corruptions=names,
        severities=_parse_severities(args.severities),
        n=args.n,
        device=args.device,
        workers=args.workers if args.workers is not None else min(8, os.cpu_count() or 1),
        seed=args.seed,
        batch_size=args.batch_size,
        source=data.describe(),
    )
