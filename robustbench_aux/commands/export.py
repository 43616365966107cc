"""``robustbench-aux export --format robustbench``: runs in RobustBench's leaderboard JSON shape.

Writes ``<run_id>.json`` per run (link, name, authors, architecture, clean_acc and corruptions_acc
as percent strings, as RobustBench stores them) and ``unaggregated_results.csv`` (per corruption
and severity, fractions) into the output directory.
"""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="export evaluated runs (RobustBench leaderboard JSON)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("runs", nargs="+", help="run directories (with eval/results.csv), or folders holding them")
    p.add_argument("--format", default="robustbench", choices=("robustbench",), help="export format")
    p.add_argument("-o", "--out", required=True, help="output directory")
    p.add_argument(
        "--allow-partial",
        action="store_true",
        help="export runs that lack some of the 15 x 5 benchmark blocks (mean over those present)",
    )
    p.add_argument("--name", help="model name field (default: the paper's title for auxiliary runs)")
    p.add_argument("--link", help="link field")
    p.add_argument("--authors", help="authors field")
    p.add_argument("--venue", help="venue field")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from robustbench_aux.report import export_robustbench

    written = export_robustbench(
        args.runs,
        args.out,
        allow_partial=args.allow_partial,
        name=args.name,
        link=args.link,
        authors=args.authors,
        venue=args.venue,
    )
    for p in written:
        print(f"wrote {p}")
    return 0
