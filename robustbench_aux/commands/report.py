"""``robustbench-aux report``: one self-contained HTML page and CSV tables from evaluated runs.

The page opens with a banner listing every way the runs depart from the paper's setting (generated
or small CIFAR-C, one seed, other dataset/architecture, fewer epochs, recorded protocol deviations),
then holds the paper's claim vs the runs (four readings), the method x architecture table,
the clean-vs-robust trade-off, interference heat maps, seen/unseen families, severity curves,
per-corruption bars, paired tests vs plain (and each ablation variant vs its base method), an
optional precision-parity check (--parity) and a provenance box. Runs evaluated on different data
(dataset, corruption set, preset, published vs generated) are refused.
"""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser(
        "report",
        help="render an HTML report (+ CSV tables) from evaluated runs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "runs",
        nargs="+",
        help="run directories (with eval/results.csv) or runs' evidence folders (reports/<name>/evidence/*, "
        "no checkpoint needed), or folders holding them",
    )
    p.add_argument("-o", "--out", required=True, help="output directory, e.g. reports/<name>/")
    p.add_argument("--title", help="page title (default: architectures and dataset)")
    p.add_argument("--note", help="a 'Built from:' line shown at the top of the page (what the runs are)")
    p.add_argument(
        "--produced-by",
        help="the command that produced the runs and this report, shown in the provenance box "
        "(reproduce passes its own command line and grid checksum)",
    )
    p.add_argument(
        "--parity",
        help="a results_long.csv (or the report directory holding one) of the same methods, architectures "
        "and seeds run in another precision: shown as a precision-parity check (section 9b), never in "
        "the comparison",
    )
    p.add_argument(
        "--parity-label",
        help="what the --parity runs are, for the headers (e.g. 'fp32'; default: the --parity path)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from robustbench_aux.report import build_report

    if args.parity_label and not args.parity:
        from robustbench_aux.errors import UserError

        raise UserError("--parity-label names the --parity runs; give --parity too")
    index = build_report(
        args.runs,
        args.out,
        title=args.title,
        note=args.note,
        produced_by=args.produced_by,
        parity=args.parity,
        parity_label=args.parity_label,
    )
    print(f"wrote {index} (open it in a browser; CSV tables beside it)")
    return 0
