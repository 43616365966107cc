"""``robustbench-aux data info|prepare|download-c``: what data is found where; getting CIFAR and CIFAR-C."""

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
# where generated copies go (never under the published folder names)
GENERATED_SUFFIX = "-generated"


def add_parser(sub) -> None:
    p = sub.add_parser("data", help="inspect and prepare datasets", description=__doc__)
    dsub = p.add_subparsers(dest="data_command", metavar="<info|prepare|download-c>", required=True)

    info = dsub.add_parser("info", help="list what is found under the data root, with sizes and checks")
    info.add_argument("--data", help=f"data root (default: ${ENV_VAR}, then ./data)")
    info.set_defaults(func=run_info)

    prep = dsub.add_parser(
        "prepare", help="download (torchvision) and convert a dataset into the array layout"
    )
    prep.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    prep.add_argument("--data", help=f"data root (default: ${ENV_VAR}, then ./data)")
    prep.add_argument(
        "--no-download", action="store_true", help="never use the network; convert a local copy only"
    )
    prep.set_defaults(func=run_prepare)

    dl = dsub.add_parser(
        "download-c",
        help="download the published CIFAR-10-C / CIFAR-100-C (Zenodo), check its MD5, extract it",
        description="Download the published CIFAR-C archive (Zenodo record 2535967 for CIFAR-10-C, 3555552 "
        "for CIFAR-100-C) into <data root>/CIFAR-10-C or CIFAR-100-C. An interrupted download resumes "
        "when rerun; a bad MD5 or a full disk is an error and leaves no half-extracted folder.",
    )
    dl.add_argument(
        "--dataset", required=True, choices=sorted(CIFAR_C_DIRS), help="whose CIFAR-C to download"
    )
    dl.add_argument("--data", help=f"data root (default: ${ENV_VAR}, then ./data)")
    dl.add_argument("--url", help="download from this URL instead (a mirror)")
    dl.add_argument("--md5", help="expected MD5 of the archive at --url (default: the published one)")
    dl.add_argument("--keep-archive", action="store_true", help="keep the .tar beside the extracted folder")
    dl.add_argument("--no-progress", action="store_true", help="no progress bar")
    dl.set_defaults(func=run_download_c)


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
            print(
                f"  {dirname:11s} missing  (published: robustbench-aux data download-c --dataset {name} --data "
                f"{root}; or generate a copy: robustbench-aux corrupt --dataset {name} --preset cifar --out "
                f"{root / (dirname + GENERATED_SUFFIX)})"
            )
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


def run_download_c(args: argparse.Namespace) -> int:
    from robustbench_aux.datasets.download import download_cifar_c

    if args.md5 and not args.url:
        raise UserError("--md5 goes with --url (the published archive's MD5 is built in)")
    target = download_cifar_c(
        args.dataset,
        args.data,
        url=args.url,
        md5=args.md5,
        keep_archive=args.keep_archive,
        progress=False if args.no_progress else None,
    )
    r = CifarCReader(target, num_classes=DATASETS[args.dataset])
    print(f"{target}: {len(r.corruptions)}/19 corruptions, n={r.n:,} per severity ({r.provenance})")
    return 0
