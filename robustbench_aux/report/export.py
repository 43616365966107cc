"""Export evaluated runs in RobustBench's leaderboard shape (``model_info/<dataset>/corruptions``).

RobustBench keeps one JSON per model (accuracies as percent *strings* with two decimals, its
convention, not ours) and an ``unaggregated_results.csv`` with a two-row header (corruption,
severity) over the 15 benchmark corruptions in alphabetical order, holding fractions.
``corruptions_acc`` is the mean over those 15 corruptions x 5 severities.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from robustbench_aux import atomic
from robustbench_aux.corruptions.catalog import BENCHMARK_15, SEVERITIES
from robustbench_aux.errors import UserError
from robustbench_aux.paths import component, inside
from robustbench_aux.report.runs import RunRecord, load_runs

PAPER = {
    "link": "https://doi.org/10.1109/CVPR42600.2020.00045",
    "authors": "Linfeng Zhang, Muzhou Yu, Tong Chen, Zhenda Shi, Chenglong Bao, Kaisheng Ma",
    "venue": "CVPR 2020",
    "name": "Auxiliary Training: Towards Accurate and Robust Models",
}
ARCH_NAMES = {
    "resnet18": "ResNet-18",
    "resnet50": "ResNet-50",
    "resnet101": "ResNet-101",
    "resnet152": "ResNet-152",
    "wrn40_2": "WideResNet-40-2",
}
UNAGGREGATED = "unaggregated_results.csv"


def _unfinished(r: RunRecord) -> bool:
    """Evaluated from ``last.pt``: training had not finished."""
    return (r.summary.get("provenance") or {}).get("checkpoint_finished") is False


def _complete(r: RunRecord, allow_partial: bool) -> tuple[pd.DataFrame, list[str]]:
    if _unfinished(r) and not allow_partial:
        raise UserError(
            f"run {r.run_id} was evaluated from an unfinished checkpoint (last.pt); finish its training "
            "and evaluate it again, or pass --allow-partial (the entry is then marked partial)"
        )
    t = r.table[r.table["corruption"].isin(BENCHMARK_15)]
    have = set(zip(t["corruption"], t["severity"], strict=True))
    missing = [f"{c}/{s}" for c in BENCHMARK_15 for s in SEVERITIES if (c, s) not in have]
    if missing and not allow_partial:
        raise UserError(
            f"run {r.run_id} lacks {len(missing)} of the 75 benchmark blocks "
            f"(e.g. {', '.join(missing[:3])}); "
            "RobustBench's corruptions_acc averages all 15 x 5: evaluate them, or pass --allow-partial"
        )
    return t, missing


def robustbench_entry(r: RunRecord, *, allow_partial: bool = False, **fields) -> dict:
    """One run as a RobustBench leaderboard JSON entry (``fields`` override link, name, authors, venue)."""
    t, missing = _complete(r, allow_partial)
    clean = float(r.table.loc[r.table["corruption"] == "clean", "acc"].iloc[0])
    corr = float(t["acc"].mean())  # equal n per block: the mean over blocks is the mean over images
    is_paper_method = r.label.split("[")[0] == "auxiliary"
    cp = r.corruption_provenance
    entry = {
        "link": PAPER["link"] if is_paper_method else "",
        "name": PAPER["name"] if is_paper_method else f"{r.label} (robustbench-aux baseline)",
        "authors": PAPER["authors"] if is_paper_method else "",
        "additional_data": False,
        "number_forward_passes": 1,
        "dataset": str(r.table["dataset"].iloc[0]),
        "venue": PAPER["venue"] if is_paper_method else "",
        "architecture": ARCH_NAMES.get(r.arch, r.arch),
        "eps": None,
        "clean_acc": f"{100 * clean:.2f}",
        "reported": "",
        "corruptions_acc": f"{100 * corr:.2f}",
        "footnote": f"robustbench-aux run {r.run_id} ({r.label}, seed {r.seed}); corruptions "
        f"{cp.get('provenance', 'unknown')} ({cp.get('preset', '?')} preset)",
    }
    entry.update({k: v for k, v in fields.items() if v is not None})
    reasons = ([f"{len(missing)} of 75 benchmark blocks missing"] if missing else []) + (
        ["unfinished training (last.pt)"] if _unfinished(r) else []
    )
    if reasons:  # only with --allow-partial: never a leaderboard entry without the mark
        entry["partial"] = True
        entry["footnote"] += f"; PARTIAL: {', '.join(reasons)}"
    return entry


def unaggregated_table(records: list[RunRecord]) -> pd.DataFrame:
    """Rows = run ids, columns = (corruption, severity) over the 15 in alphabetical order, fractions."""
    cols = pd.MultiIndex.from_product([sorted(BENCHMARK_15), list(SEVERITIES)])
    rows = {}
    for r in records:
        t = r.table[r.table["corruption"].isin(BENCHMARK_15)]
        rows[r.run_id] = t.set_index(["corruption", "severity"])["acc"].reindex(cols)
    return pd.DataFrame(rows).T.reindex(columns=cols)


def export_robustbench(
    run_paths, out_dir: str | Path, *, allow_partial: bool = False, **fields
) -> list[Path]:
    """Write ``<run_id>.json`` per run and ``unaggregated_results.csv`` into ``out_dir``."""
    records = load_runs(run_paths)
    out_dir = Path(out_dir)
    entries = [(r, robustbench_entry(r, allow_partial=allow_partial, **fields)) for r in records]
    # every target checked before the first write: a refusal leaves the output directory as it was
    targets = [inside(out_dir, f"{component(r.run_id, 'run id')}.json") for r, _ in entries]
    unaggregated = inside(out_dir, UNAGGREGATED)
    written = [atomic.write_json(target, e) for target, (_, e) in zip(targets, entries)]
    table = unaggregated_table(records)
    written.append(atomic.write_text(unaggregated, table.to_csv(float_format="%.4f")))
    return written
