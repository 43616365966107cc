"""``robustbench-aux data info|prepare``: what data is found where, and converting CIFAR."""

from __future__ import annotations

import argparse
from pathlib import Path

from robustbench_aux.datasets import (
    DATASETS,
    CifarCReader,
    prepare_dataset,
    read_array_dir,
    resolve_data_root,
)
from robustbench_aux.datasets.loading import ENV_VAR
from robustbench_aux.errors import UserError

CIFAR_C_DIRS = {"cifar10": "CIFAR-10-C", "cifar100": "CIFAR-100-C"}


def add_parser(sub) -> None:
    p = sub.add_parser("data", help="inspect and prepare datasets", description=__doc__)
    dsub = p.add_subparsers(dest="data_command", metavar="<info|prepare>", required=True)

    info = dsub.add_parser("info", help="list what is found under the data root, with sizes and checks")
    info.add_argument("--data", help=f"data root (default: ${ENV_VAR}, then ./data)")
    info.set_defaults(func=run_info)

    prep = dsub.add_parser("prepare", help="download (torchvision) and convert a dataset into the array layout")
    prep.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    prep.add_argument("--data", help=f"data root (default: ${ENV_VAR}, then ./data)")
    prep.add_argument("--no-download", action="store_true", help="never use the network; convert a local copy only")
    prep.set_defaults(func=run_prepare)


def _size(path: Path) -> str:
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0
    return f"{total / 2**20:,.1f} MiB"


def run_info(args: argparse.Namespace) -> int:
    root = resolve_data_root(args.data)
    print(f"data root: {root.resolve()}{'' if root.is_dir() else '  (does not exist)'}")
    for name, k in DATASETS.items():
        target = root / name
        if not target.is_dir():
            print(f"  {name:9s} missing  (robustbench-aux data prepare --dataset {name} --data {root})")
            continue
        try:
            d = read_array_dir(target, name, num_classes=k)
            print(
                f"  {name:9s} ok       {target}  train {len(d.train_y):,}  test {len(d.test_y):,}  "
                f"classes {d.num_classes}  {_size(target)}"
            )
        except UserError as exc:
            print(f"  {name:9s} BROKEN   {exc}")
    for name, dirname in CIFAR_C_DIRS.items():
        target = root / dirname
        if not target.is_dir():
            print(f"  {dirname:11s} missing  (published: Zenodo; or robustbench-aux corrupt --out {target})")
            continue
        try:
            r = CifarCReader(target, num_classes=DATASETS[name])
            print(
                f"  {dirname:11s} ok       {target}  {len(r.corruptions)}/19 corruptions  n={r.n:,} per "
                f"severity  {r.provenance}{f' ({r.preset} preset)' if r.preset else ''}  {_size(target)}"
            )
        except UserError as exc:
            print(f"  {dirname:11s} BROKEN   {exc}")
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    target = prepare_dataset(args.dataset, args.data, download=not args.no_download)
    d = read_array_dir(target, args.dataset, num_classes=DATASETS[args.dataset])
    print(f"{args.dataset}: {len(d.train_y):,} train / {len(d.test_y):,} test images in {target}")
    return 0
