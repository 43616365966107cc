"""``robustbench-aux evaluate``: clean and CIFAR-C accuracy of a run directory or checkpoint.

Evaluates the clean test set of the run's dataset and every (corruption, severity) block of the
CIFAR-C directory, batched on the device, and writes ``<run>/eval/results.csv`` (tidy long table)
and ``<run>/eval/summary.json``. Finished blocks are kept in ``<run>/eval/per_image/``: rerunning
the same command after a kill continues where it stopped.
"""

from __future__ import annotations

import argparse

from robustbench_aux.datasets.loading import ENV_VAR


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _severities(text: str) -> list[int]:
    try:
        return [int(t) for t in _names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"severities must be integers 1..5 separated by commas, got {text!r}"
        ) from None


def add_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a run (or checkpoint) on the clean test set and a CIFAR-C directory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", help="run directory (holding final.pt or last.pt) or a checkpoint file")
    p.add_argument(
        "--corruptions",
        metavar="DIR",
        help="CIFAR-C directory (published or generated layout); omit to evaluate the clean test set only",
    )
    p.add_argument("--data", help=f"data root holding the clean test set (default: ${ENV_VAR}, then ./data)")
    p.add_argument("--n", type=int, help="evaluate only the first N images of every block (default: all)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="images per forward pass (default: 256 on CPU, 1024 on GPU)",
    )
    p.add_argument(
        "--precision",
        default="fp32",
        choices=("fp32", "bf16", "fp16"),
        help="autocast precision of the forward pass (default: fp32)",
    )
    p.add_argument(
        "--corruption-names", type=_names, metavar="A,B", help="only these corruptions (default: all present)"
    )
    p.add_argument(
        "--severities",
        type=_severities,
        default=[1, 2, 3, 4, 5],
        metavar="1,2,..",
        help="severities to evaluate (default: 1,2,3,4,5)",
    )
    p.add_argument(
        "--reference",
        metavar="RUN",
        help="an evaluated run (e.g. plain training of the same "
        "architecture and seed) for normalized and relative mCE in the summary",
    )
    p.add_argument(
        "--out", help="evaluation directory (default: <run>/eval, or <checkpoint>_eval/ beside a file)"
    )
    p.add_argument(
        "--restart",
        action="store_true",
        help="discard stored blocks of a different evaluation in the output directory",
    )
    p.add_argument(
        "--no-verify", action="store_true", help="skip checking CIFAR-C files against manifest sha256"
    )
    p.set_defaults(func=run)


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"


def run(args: argparse.Namespace) -> int:
    from robustbench_aux.errors import UserError
    from robustbench_aux.evaluation import evaluate_run

    if args.batch_size is not None and args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    bad = [s for s in args.severities if not 1 <= s <= 5]
    if bad:
        raise UserError(f"--severities must be in 1..5, got {bad[0]}")

    res = evaluate_run(
        args.run,
        args.corruptions,
        data_root=args.data,
        n=args.n,
        device=args.device,
        out=args.out,
        reference=args.reference,
        batch_size=args.batch_size,
        precision=args.precision,
        corruptions=args.corruption_names,
        severities=args.severities,
        restart=args.restart,
        verify=not args.no_verify,
    )
    s = res.summary
    c = s["provenance"]["corruptions"]
    print(f"{s['run_id']}  ({s['label']}, {s['arch']}, seed {s['seed']}, {s['dataset']})")
    print(f"  clean_acc    {_pct(s['clean_acc'])}  (n={s['n_clean']})")
    if c.get("provenance"):
        print(f"  mean_acc_15  {_pct(s['mean_acc_15'])}  ({s['n_corruptions_15']}/15 corruptions present)")
        print(f"  mean_acc_19  {_pct(s['mean_acc_19'])}  ({s['n_corruptions_19']}/19 corruptions present)")
        print(f"  mCE          {_pct(s['mce'])}  (unnormalized, CIFAR convention)")
        if s.get("mce_normalized") is not None:
            print(f"  mCE_norm     {100 * s['mce_normalized']:.2f} %  vs {s['reference_run']}")
        preset = c.get("preset") or "unknown"
        print(f"  corruptions  {c['provenance']} ({preset} preset), n={s['n_per_block']} per block")
    ips = s["timing"].get("images_per_second")
    speed = f", {ips:,.0f} images/s" if ips else ""
    print(f"  wrote {res.out_dir}/results.csv and summary.json ({s['timing']['seconds']:.1f} s{speed})")
    return 0
