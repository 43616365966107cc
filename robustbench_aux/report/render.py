"""Build a report: load and check runs, compute the tables and figures, write HTML and CSVs.

``build_report(run_paths, out_dir)`` writes ``<out_dir>/index.html`` (self-contained: CSS and SVG
figures inline, no scripts or files fetched) and the tables as CSV beside it.
"""

from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined

from robustbench_aux._version import __version__
from robustbench_aux.catalog import ALL_19
from robustbench_aux.errors import UserError
from robustbench_aux.infra import atomic
from robustbench_aux.infra.paths import inside
from robustbench_aux.infra.versioning import code_version
from robustbench_aux.metrics import compare
from robustbench_aux.report import calibration, cbar, effective, facts, figures, plotdata, tables
from robustbench_aux.report import parity as parity_mod
from robustbench_aux.report.banner import banner_items, framing
from robustbench_aux.report.claim import claim_table
from robustbench_aux.report.csvcells import to_csv
from robustbench_aux.report.formatting import html_table
from robustbench_aux.report.numbers import set_name
from robustbench_aux.report.parity import read_parity as read_parity_results
from robustbench_aux.report.provenance import provenance_rows
from robustbench_aux.report.runs import check_comparable, combined_table, load_runs

log = logging.getLogger(__name__)

# the methods whose per-corruption bars are drawn (others are in the CSV and the heat map)
BAR_METHODS = ("plain", "naive_augmentation", "auxiliary", "augmix")
# the facts of this many methods are shown open under the banner; the others are one line each
FACTS_OPEN = 3
# at most this many methods in the per-corruption change plot (every one is in its CSV)
MAX_CHANGE_METHODS = 4


def change_methods(labels: list[str]) -> list[str]:
    """The methods drawn in the per-corruption change plot: with few methods all of them, else the
    main ones (BAR_METHODS) and auxiliary-training variants, up to :data:`MAX_CHANGE_METHODS`."""
    others = [lab for lab in labels if lab != compare.PLAIN]
    if len(others) <= MAX_CHANGE_METHODS:
        return others
    main = [lab for lab in others if lab in BAR_METHODS]
    variants = [lab for lab in others if lab.startswith("auxiliary[") and lab not in main]
    return (main + variants)[:MAX_CHANGE_METHODS]


def _env() -> Environment:
    return Environment(
        loader=PackageLoader("robustbench_aux.report", "templates"),
        autoescape=True,  # every value is escaped; figures are marked safe explicitly
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _write_csv(
    out_dir: Path, name: str, frame: pd.DataFrame, written: list[str], index: bool = False
) -> None:
    atomic.write_text(inside(out_dir, name), to_csv(frame, index=index, float_format="%.6f"))
    written.append(name)


def _cbar_section(df: pd.DataFrame, records, out_dir: Path, written: list[str]) -> dict | None:
    """The CIFAR-C-bar tables (CSV + display rows), or None when no run was evaluated on it."""
    if not cbar.has_cbar(df):
        return None
    frames = {
        "c_bar_methods.csv": cbar.cbar_method_table(df),
        "c_bar_claim.csv": cbar.cbar_claim_table(df, records),
        "c_bar_gap.csv": cbar.cbar_gap_table(df, records),
    }
    for name, frame in frames.items():
        _write_csv(out_dir, name, frame, written)
    section = cbar.html_cbar(*frames.values())
    prov = (records[0].summary.get("provenance") or {}).get("corruptions_bar") or {}
    section["parameters"] = prov.get("parameters") or "not recorded"
    section["provenance"] = prov.get("provenance") or "generated"
    return section


def _precision(records) -> str:
    """The precision of the page's runs in words: training autocast and evaluation precision."""
    train = {r.info.amp for r in records}
    evaluate = {str((r.summary.get("provenance") or {}).get("precision") or "fp32") for r in records}
    train_text = next(iter(train)) if len(train) == 1 else "mixed"
    eval_text = next(iter(evaluate)) if len(evaluate) == 1 else "mixed"
    return train_text if train_text == eval_text else f"train {train_text}, eval {eval_text}"


def _parity_section(df, records, parity, label, out_dir: Path, written: list[str]) -> dict | None:
    """The precision-parity tables (CSV + display rows), or None without ``parity``."""
    if parity is None:
        return None
    other = read_parity_results(parity)
    table = parity_mod.parity_table(df, other)
    spread = parity_mod.seed_spread(df)
    _write_csv(out_dir, "parity.csv", table, written)
    _write_csv(out_dir, "parity_seed_spread.csv", spread, written)
    this, that = _precision(records), label or str(parity)
    return {
        "this": this,
        "other": that,
        "source": str(parity),
        "table": parity_mod.html_parity(table, this, that),
        "summary": parity_mod.parity_summary(table, spread),
    }


@dataclass
class PageTables:
    """The tables a page is built from (each also written as a CSV)."""

    df: pd.DataFrame
    runs: pd.DataFrame
    methods: pd.DataFrame
    sig: pd.DataFrame
    ablation: pd.DataFrame
    claim: pd.DataFrame
    ratios: pd.DataFrame
    per_corr: pd.DataFrame
    sev: pd.DataFrame
    fam: pd.DataFrame
    seen_unseen: pd.DataFrame
    change_seeds: pd.DataFrame
    change: pd.DataFrame
    sev_seeds: pd.DataFrame
    curves: pd.DataFrame
    no_curves: list[str]
    published: pd.DataFrame


def compute_tables(records, shared, df: pd.DataFrame) -> PageTables:
    """Step 1: every table of the page from the loaded runs and their combined results table."""
    configs = {r.run_id: r.config for r in records}
    runs = tables.run_table(records, df)
    methods = tables.method_table(runs)
    sig = tables.significance_table(records)
    ablation = tables.ablation_table(records)
    claim = claim_table(df, records, sig)
    ratios = tables.ratio_table(df)
    per_corr = tables.corruption_table(df)
    sev = tables.severity_table(df)
    fam = tables.family_table(df, configs)
    seen_unseen = facts.seen_unseen_table(records, configs)
    change_seeds, change = plotdata.corruption_change_data(df)
    sev_seeds = plotdata.severity_per_seed(df)
    curves, no_curves = plotdata.training_curve_data(records)
    published = tables.published_anchor_table(methods, shared.dataset)
    return PageTables(
        df=df,
        runs=runs,
        methods=methods,
        sig=sig,
        ablation=ablation,
        claim=claim,
        ratios=ratios,
        per_corr=per_corr,
        sev=sev,
        fam=fam,
        seen_unseen=seen_unseen,
        change_seeds=change_seeds,
        change=change,
        sev_seeds=sev_seeds,
        curves=curves,
        no_curves=no_curves,
        published=published,
    )


def write_tables(t: PageTables, out_dir: Path, written: list[str]) -> None:
    """Step 2: the tables as CSV beside the page (the optional ones only when they have rows)."""
    for name, frame in (
        ("runs.csv", t.runs),
        ("methods.csv", t.methods),
        ("claim.csv", t.claim),
        ("per_corruption.csv", t.per_corr),
        ("severity.csv", t.sev),
        ("families.csv", t.fam),
        ("significance.csv", t.sig),
        ("ratios.csv", t.ratios),
        ("results_long.csv", t.df),
        ("per_corruption_change.csv", t.change),
        ("per_corruption_change_per_seed.csv", t.change_seeds),
        ("severity_per_seed.csv", t.sev_seeds),
    ):
        _write_csv(out_dir, name, frame, written)
    for name, frame in (
        ("augmix_published_anchor.csv", t.published),
        ("ablation.csv", t.ablation),
        ("seen_unseen.csv", t.seen_unseen),
        ("training_curves.csv", t.curves),
    ):
        if not frame.empty:
            _write_csv(out_dir, name, frame, written)


def page_notes(df: pd.DataFrame, claim: pd.DataFrame, archs: list[str], n15: int) -> list[str]:
    """The notes above the page: what is left out for want of a plain run, a claim pair or the 15."""
    notes: list[str] = []
    if not tables.has_plain(df):
        notes.append(
            "No plain-training run was given: normalized mCE, the paper-claim comparison, arrows "
            "in the trade-off plot, the interference matrix and the significance tests need one "
            "and are left out."
        )
    elif claim.empty:
        notes.append(
            "No auxiliary-training run shares an architecture with a plain run: the paper-claim "
            "comparison is left out."
        )
    missing_plain = [a for a in archs if not tables.has_plain(df, a)]
    if missing_plain and tables.has_plain(df):
        notes.append(f"No plain run for {', '.join(missing_plain)}: its normalized figures are left out.")
    if n15 < 15:
        notes.append(
            f"Only {n15} of the 15 benchmark corruptions were evaluated: mean_acc_15 and mCE average "
            "those present and are not comparable with published 15-corruption numbers."
        )
    return notes


def interference_section(
    records, df: pd.DataFrame, archs: list[str], out_dir: Path, written: list[str]
) -> list[dict]:
    """Step 3 (per architecture with a plain run): the interference matrices and their tests as CSV,
    and the heat maps."""
    from markupsafe import Markup

    interference = []
    for arch in archs:
        if not tables.has_plain(df, arch):
            continue
        mat = compare.interference_matrix(df, arch=arch)
        by_sev = compare.interference_matrix(df, arch=arch, by_severity=True)
        _write_csv(out_dir, f"interference_{arch}.csv", mat, written, index=True)
        _write_csv(out_dir, f"interference_by_severity_{arch}.csv", by_sev, written, index=True)
        p_mat = tables.interference_significance(records, mat, arch)
        p_sev = tables.interference_significance(records, by_sev, arch)
        for name, p in (
            (f"interference_p_holm_{arch}.csv", p_mat),
            (f"interference_by_severity_p_holm_{arch}.csv", p_sev),
        ):
            if p is not None:
                _write_csv(out_dir, name, p, written, index=True)
        mask = None if p_mat is None else (p_mat <= tables.ALPHA).rename(columns={"clean_acc": "clean"})
        mask_sev = None if p_sev is None else p_sev <= tables.ALPHA
        # the reference row is 0 by definition: the maps show only the compared methods
        mat = mat.rename(columns={"clean_acc": "clean"}).drop(index=compare.PLAIN, errors="ignore")
        by_sev = by_sev.drop(index=compare.PLAIN, level="label", errors="ignore")
        if mat.empty:
            continue
        interference.append(
            {
                "arch": arch,
                "tested": p_mat is not None,
                "svg": Markup(figures.interference(mat, arch, mask)),
                "svg_severity": Markup(figures.interference_by_severity(by_sev, arch, mask_sev)),
                "csv": f"interference_{arch}.csv",
                "csv_severity": f"interference_by_severity_{arch}.csv",
            }
        )
    return interference


def method_facts(t: PageTables) -> list[dict]:
    """The facts under the banner: each method vs plain (with its seen/unseen sentence), then each
    ablation variant vs its base method."""
    summaries = facts.method_summaries(t.sig)
    for summ in summaries:
        summ["seen_unseen"] = (
            facts.seen_unseen_sentence(t.seen_unseen, summ["label"], summ["arch"])
            if not t.seen_unseen.empty
            else ""
        )
    return summaries + [{**summ, "seen_unseen": ""} for summ in facts.method_summaries(t.ablation)]


def build_report(
    run_paths,
    out_dir: str | Path,
    *,
    title: str | None = None,
    note: str | None = None,
    produced_by: str | None = None,
    parity: str | Path | None = None,
    parity_label: str | None = None,
) -> Path:
    """Write the report for the given runs into ``out_dir``; returns the path of ``index.html``.
    ``produced_by`` (the command behind the runs and the page) becomes the provenance box's first row;
    ``parity`` (another precision's results_long.csv or report directory, named ``parity_label``) adds
    the precision-parity section.

    The steps: load and check the runs, compute the tables (:func:`compute_tables`), write them as
    CSV (:func:`write_tables`, then the optional sections' own), draw the figures and assemble the
    template's context (:func:`page_context`), render."""
    records = load_runs(run_paths)
    shared = check_comparable(records)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir} exists and is not a directory; choose another -o")
    df = combined_table(records)
    written: list[str] = []
    t = compute_tables(records, shared, df)
    write_tables(t, out_dir, written)
    context = page_context(
        records,
        shared,
        t,
        out_dir,
        written,
        title=title,
        note=note,
        produced_by=produced_by,
        parity=parity,
        parity_label=parity_label,
    )
    html = _env().get_template("report.html.j2").render(**context)
    index = atomic.write_text(inside(out_dir, "index.html"), html)
    log.info("wrote %s and %d CSV files", index, len(written))
    return index


def page_context(
    records,
    shared,
    t: PageTables,
    out_dir: Path,
    written: list[str],
    *,
    title,
    note,
    produced_by,
    parity,
    parity_label,
) -> dict:
    """The template's context: the optional sections (writing their CSVs into ``out_dir``), the
    figures and the display tables."""
    from markupsafe import Markup

    df = t.df
    labels = compare.label_order(df["label"].unique())
    styles = figures.method_styles(labels)  # one colour and marker per method, in every figure
    archs = sorted(df["arch"].unique())
    claim, seen_unseen, change, curves = t.claim, t.seen_unseen, t.change, t.curves
    c_bar = _cbar_section(df, records, out_dir, written)
    parity_ctx = _parity_section(df, records, parity, parity_label, out_dir, written)
    n15 = int(df[df["corruption"].isin(compare.BENCHMARK_15)]["corruption"].nunique())
    notes = page_notes(df, claim, archs, n15)
    interference = interference_section(records, df, archs, out_dir, written)
    provenance_kind = str(shared.corruption_provenance)
    effective_ctx = effective.effective_section(
        compare.run_frame(df), shared.dataset, provenance_kind, n15, out_dir, written
    )
    calibration_ctx = calibration.calibration_section(df, records, out_dir, labels, styles, written)
    # the code that rendered this page: a committed page must come from committed code (no ".dirty")
    page_version = code_version()
    corruptions = [c for c in ALL_19 if c in t.per_corr.columns]
    bar_labels = [lab for lab in labels if lab in BAR_METHODS] or labels[:4]
    change_labels = change_methods(labels)
    return {
        "title": title or f"Corruption robustness report: {', '.join(archs)} on {shared.dataset}",
        "note": note,
        "notes": notes,
        "generated": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "version": __version__,
        "n_runs": len(records),
        "claim": html_table(claim, "claim") if not claim.empty else None,
        "reading": claim["matching_reading"].iloc[-1] if not claim.empty else None,
        "claim_row": claim["arch"].iloc[-1] if not claim.empty else None,
        "banner": banner_items(records, shared),
        "framing": framing(records),
        "facts": method_facts(t),
        "facts_open": FACTS_OPEN,
        "seen_unseen": html_table(seen_unseen, "seen_unseen") if not seen_unseen.empty else None,
        "seen_unseen_text": [
            facts.seen_unseen_sentence(seen_unseen, lab, arch)
            for lab, arch in dict.fromkeys(
                zip(seen_unseen.get("label", []), seen_unseen.get("arch", []), strict=True)
            )
        ]
        if not seen_unseen.empty
        else [],
        "change": (
            Markup(figures.corruption_change(t.change_seeds, change, change_labels, corruptions, styles))
            if corruptions and not change.empty and change_labels
            else None
        ),
        "change_labels": change_labels,
        "training": Markup(figures.training_curves(curves, labels, styles)) if not curves.empty else None,
        "no_curves": t.no_curves,
        "verdict": claim["verdict"].iloc[-1] if not claim.empty else None,
        "paper": {"clean": compare.PAPER_DELTA_CLEAN_PTS, "robust": compare.PAPER_ROBUSTNESS},
        "methods": html_table(t.methods, "methods"),
        "published": html_table(t.published, "published") if not t.published.empty else None,
        "published_source": tables.PUBLISHED_AUGMIX_SOURCE,
        "generated_data": not shared.published,
        "tradeoff": Markup(
            figures.tradeoff(
                t.methods,
                labels,
                styles,
                set_name(n15, 15),
                overlay=effective.overlay(effective_ctx["lines"]),
            )
        ),
        "effective": effective_ctx,
        "calibration": {**calibration_ctx, "svg": Markup(calibration_ctx.get("svg", ""))},
        "interference": interference,
        "severity": Markup(figures.severity_curves(t.sev, labels, styles, set_name(n15, 15), t.sev_seeds)),
        "bars": (
            Markup(figures.corruption_bars(t.per_corr, bar_labels, corruptions, styles))
            if corruptions
            else None
        ),
        "per_corruption": html_table(t.per_corr, "per_corruption"),
        "families": html_table(t.fam, "families") if not t.fam.empty else None,
        "significance": html_table(t.sig, "significance") if not t.sig.empty else None,
        "ablation": html_table(t.ablation, "significance") if not t.ablation.empty else None,
        "runs": html_table(t.runs, "runs"),
        "provenance": ([("produced by", produced_by)] if produced_by else [])
        + provenance_rows(records, shared)
        + [("code version (this page)", page_version)],
        "page_version": page_version,
        "c_bar": c_bar,
        "parity": parity_ctx,
        "csv_files": written,
    }
