"""``robustbench-aux train``: train one method on one architecture and dataset into a run directory.

Examples::

    robustbench-aux train --method auxiliary --recipe reference --arch resnet18 --dataset cifar100 \\
        --data data --seed 0 --out runs/aux_r18_s0
    robustbench-aux train --method per_corruption --recipe smoke --arch test_tiny --dataset synthetic100 \\
        --seed 0 --out runs/smoke_noise --set corruption=noise
    torchrun --nproc_per_node=2 -m robustbench_aux train ...   # DDP, one process per GPU
"""

from __future__ import annotations

import argparse

from robustbench_aux.config import recipe_names, resolve_config
from robustbench_aux.corruptions.training import list_train_corruptions
from robustbench_aux.methods import METHODS
from robustbench_aux.models import MODELS


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a method (plain, naive_augmentation, per_corruption, auxiliary, augmix) into a run dir",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--method", help=f"training method ({', '.join(METHODS.names())})")
    p.add_argument(
        "--recipe",
        default="reference",
        help=f"shipped recipe ({', '.join(recipe_names())}) or a .toml file (default: reference)",
    )
    p.add_argument("--arch", help="architecture (see --list-models)")
    p.add_argument("--dataset", help="cifar10, cifar100 or synthetic<K> (e.g. synthetic100)")
    p.add_argument(
        "--data",
        help="data root holding <dataset>/ in the array layout (default: $ROBUSTBENCH_AUX_DATA, then ./data)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the model init and of every data-side draw")
    p.add_argument("--out", help="run directory to create (or to continue with --resume)")
    p.add_argument(
        "--epochs", type=int, help="number of epochs; rescales the recipe's milestones and penalty start"
    )
    p.add_argument(
        "--n-train", type=int, help="train on the first N training images (same as --set n_train=N)"
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe value, e.g. --set lr=0.05 --set corruption=noise --set milestones=[2,4]",
    )
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its last.pt")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: CUDA if available)")
    p.add_argument(
        "--threads",
        type=int,
        help="CPU threads of this process (default: torch's, i.e. $OMP_NUM_THREADS or all cores); "
        "recorded in config.json",
    )
    p.add_argument("--list-methods", action="store_true", help="list the training methods and exit")
    p.add_argument("--list-models", action="store_true", help="list the architectures and exit")
    p.add_argument(
        "--list-corruptions", action="store_true", help="list the training-corruption specs and exit"
    )
    p.set_defaults(func=run_train)


def _listing(args) -> bool:
    if args.list_methods:
        for name in METHODS.names():
            doc = (METHODS.get(name).__doc__ or "").strip().splitlines()
            print(f"{name:20s} {doc[0] if doc else ''}")
    if args.list_models:
        for name in MODELS.names():
            doc = (MODELS.get(name).__doc__ or "").strip().splitlines()
            print(f"{name:12s} {doc[0] if doc else ''}")
    if args.list_corruptions:
        print("\n".join(list_train_corruptions()))
    return args.list_methods or args.list_models or args.list_corruptions


def run_train(args: argparse.Namespace) -> int:
    from robustbench_aux.engine.trainer import train
    from robustbench_aux.errors import UserError
    from robustbench_aux.infra.devices import set_threads

    if _listing(args):
        return 0
    set_threads(args.threads)
    missing = [f"--{k}" for k in ("method", "arch", "dataset", "out") if not getattr(args, k)]
    if missing:
        raise UserError(f"train needs {', '.join(missing)} (see robustbench-aux train --help)")
    overrides = list(args.overrides)
    if args.n_train is not None:
        overrides.append(f"train.n_train={args.n_train}")
    cfg = resolve_config(
        methods=METHODS,
        method=args.method,
        arch=args.arch,
        dataset=args.dataset,
        seed=args.seed,
        recipe=args.recipe,
        overrides=overrides,
        epochs=args.epochs,
    )
    result = train(cfg, data_root=args.data, out=args.out, device=args.device, resume=args.resume)
    if not result.is_main:
        return 0
    if result.status == "already finished":
        print(
            f"{result.out} is already finished (final.pt exists); nothing to do. Use a new --out to retrain."
        )
        return 0
    last = result.rows[-1] if result.rows else {}
    print(
        f"trained {cfg.method} / {cfg.arch} on {cfg.dataset}: {len(result.rows)} epochs, "
        f"final loss {last.get('loss', float('nan')):.4f}, "
        f"train acc {last.get('train_acc', float('nan')):.4f}; "
        f"run directory {result.out}"
    )
    return 0
