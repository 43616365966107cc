"""``robustbench-aux export --format robustbench``: runs in RobustBench's leaderboard JSON shape.

Writes ``<Name><Year><Word>.json`` per run (link, name, authors, architecture, clean_acc and
corruptions_acc as percent strings, as RobustBench stores them) and ``unaggregated_results.csv``
(per corruption and severity, fractions) into the output directory. Runs of a published method are
labelled as reproductions (Zhang2020Auxiliary_Repro_ResNet18); this suite's baselines and models
evaluated with ``evaluate --model`` are named RobustbenchAux<Year><Method>_<Arch>.

Refused unless --allow-nonstandard (which marks the entry): generated CIFAR-C, fewer than 10,000
images per block, datasets other than cifar10 / cifar100.

CIFAR-C-bar results are never exported (RobustBench has no C-bar track): the footnote of such a
run's entry says so and a note is printed; a run evaluated on CIFAR-C-bar only, or a CIFAR-C-bar
directory given instead of a run, is an error.
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
    p.add_argument(
        "--allow-nonstandard",
        action="store_true",
        help="export runs RobustBench would not accept (generated CIFAR-C, < 10,000 images per block, other "
        "datasets); the entry gets a 'nonstandard' list and a NON-STANDARD footnote",
    )
    p.add_argument(
        "--model-id", help="file name of a single exported run, <Name><Year><Word> (e.g. Smith2024Robust)"
    )
    p.add_argument(
        "--name", help="model name field (default: the paper's title plus 'reproduction' for auxiliary runs)"
    )
    p.add_argument("--link", help="link field")
    p.add_argument("--authors", help="authors field: who trained the model (default: empty)")
    p.add_argument("--venue", help="venue field")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from robustbench_aux.report import export_robustbench
    from robustbench_aux.report.export import cbar_note
    from robustbench_aux.report.runs import load_runs

    written = export_robustbench(
        args.runs,
        args.out,
        allow_partial=args.allow_partial,
        allow_nonstandard=args.allow_nonstandard,
        model_id=args.model_id,
        name=args.name,
        link=args.link,
        authors=args.authors,
        venue=args.venue,
    )
    for p in written:
        print(f"wrote {p}")
    note = cbar_note(load_runs(args.runs))
    if note:
        print(note)
    return 0
