"""Turning report tables into display rows: one column spec per table kind.

``html_table(frame, kind)`` returns ``{"columns": [...], "rows": [[{"text", "cls"}, ...]]}`` for
the template, with the columns of ``TABLE_COLUMNS[kind]`` (``claim_columns``, ``methods_columns``,
...); the cells' number text comes from numbers.py. The CSV files keep the unformatted numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd

from robustbench_aux.catalog import ALL_19
from robustbench_aux.metrics.compare import PAPER_DELTA_CLEAN_PTS, PAPER_ROBUSTNESS
from robustbench_aux.report.numbers import (
    Cell,
    count,
    interval,
    interval_source,
    is_missing,
    p_cell,
    pct,
    pm,
    ratio_cell,
    set_name,
    spread,
    with_ci,
)


def _pct_of(column: str) -> Callable[[pd.Series], str]:
    return lambda r: pct(r[column], 1)


def _n_min(frame: pd.DataFrame, column: str, full: int) -> int:
    return int(frame[column].min()) if column in frame.columns and len(frame) else full


Spec = list[tuple[str, Callable[[pd.Series], Cell | str]]]


def _significant(r, key: str) -> str:
    """The css class of a difference cell: coloured only when its Holm-adjusted test says so."""
    sig = r.get(f"{key}_significant")
    if not (isinstance(sig, bool | np.bool_) and bool(sig)):
        return ""
    delta = r["delta_clean_pts" if key == "clean" else "delta_mean15_pts"]
    return "pos" if delta > 0 else "neg" if delta < 0 else ""


def _sizes(frame: pd.DataFrame, rows) -> str:
    sizes = sorted({int(v) for v in frame.loc[rows, "family_size"] if not is_missing(v)})
    return " or ".join(map(str, sizes)) if sizes else "0"


def significance_family_header(frame: pd.DataFrame) -> str:
    """The Holm families of the significance table, named with their sizes, for a column header."""
    if "family_size" not in frame.columns or frame.empty:
        return "no family"
    over = frame["seed"] == "over seeds"
    parts = [f"seed rows: Holm over the method's {_sizes(frame, ~over)} per-seed tests"]
    if over.any():
        parts.append(f"over seeds: over its {_sizes(frame, over)} seed-level tests")
    return "; ".join(parts)


def claim_family_header(frame: pd.DataFrame) -> str:
    """The claim's Holm family for its column header: the method's own clean and mean-15 tests."""
    sizes = {
        int(m.group(1))
        for text in frame.get("family", pd.Series(dtype=str)).astype(str)
        for m in [re.match(r"Holm over (\d+) tests", text)]
        if m
    }
    size = " or ".join(map(str, sorted(sizes))) if sizes else "2"
    return f"Holm over {size} tests: clean, mean-15"


def claim_columns(frame: pd.DataFrame) -> Spec:
    """The paper-claim table: each reading of the robustness gain with its interval, the verdict."""
    n15 = set_name(_n_min(frame, "n_corruptions_15", 15), 15)
    n19 = set_name(_n_min(frame, "n_corruptions_19", 19), 19)

    def reading(col):
        def cell(r):
            std = r.get(f"{col}_std")
            note = "" if is_missing(std) else f"± {std:.2f} (std over seeds)"
            return (interval(r[col], r.get(f"{col}_low"), r.get(f"{col}_high")), "", note)

        return cell

    return [
        ("architecture", lambda r: (r["arch"], "brk")),
        ("seeds (paired)", lambda r: f"{int(r['n_seeds'])} ({'yes' if r['paired'] else 'no'})"),
        (
            "95 % interval from",
            lambda r: (interval_source(r.get("interval")), "brk", str(r.get("interval") or "")),
        ),
        (
            f"Δ clean accuracy (points) [95 % interval]; paper {PAPER_DELTA_CLEAN_PTS:+.2f}",
            reading("delta_clean_pts"),
        ),
        (f"absolute, {n15} corruptions (points) [95 % interval]", reading("robust_abs_pts_15")),
        (f"relative, {n15} corruptions (%) [95 % interval]", reading("robust_rel_pct_15")),
        (f"absolute, {n19} corruptions (points) [95 % interval]", reading("robust_abs_pts_19")),
        (f"relative, {n19} corruptions (%) [95 % interval]", reading("robust_rel_pct_19")),
        (
            f"Holm-adjusted p, Δ mean acc. {n15} ({claim_family_header(frame)})",
            lambda r: (p_cell(r.get("robust_p_holm")), "", str(r.get("family") or "")),
        ),
        (
            f"verdict: which reading of {PAPER_ROBUSTNESS:.2f} matches",
            lambda r: (r["matching_reading"], "wrap verdict"),
        ),
    ]


def methods_columns(frame: pd.DataFrame) -> Spec:
    """The per-method table: accuracy, mCE and its normalized / relative forms, compute."""
    n15 = set_name(_n_min(frame, "n_corruptions_15", 15), 15)
    n19 = set_name(_n_min(frame, "n_corruptions_19", 19), 19)

    def agg(col):
        return lambda r: pm(r[f"{col}_mean"], r[f"{col}_std"])

    def ratio(col):
        return lambda r: ratio_cell(
            r[f"{col}_mean"], r[f"{col}_std"], r.get(f"{col}_n"), r.get(f"{col}_unstable")
        )

    return [
        ("method", lambda r: (r["label"], "label")),
        ("architecture", lambda r: r["arch"]),
        ("training (recipe; data reading / protocol)", lambda r: (r.get("training") or "–", "wrap")),
        ("optimizer steps", lambda r: count(r.get("optimizer_steps"))),
        ("images seen (all views)", lambda r: count(r.get("images_seen"))),
        ("seeds (n)", lambda r: f"{r['seeds']} ({int(r['n_seeds'])})"),
        ("clean acc. (%)", agg("clean_acc")),
        (f"mean acc. {n15} (%)", agg("mean_acc_15")),
        (f"mean acc. {n19} (%)", agg("mean_acc_19")),
        (f"mCE, {n15} (%)", agg("mce")),
        ("normalized mCE vs plain (%)", ratio("mce_norm")),
        ("relative mCE vs plain (%)", ratio("mce_rel")),
        (
            "relative CE per corruption (%): min / median / max",
            lambda r: (spread(r, "mce_rel"), "", f"normalized CE: {spread(r, 'mce_norm')}"),
        ),
    ]


def published_columns(frame: pd.DataFrame) -> Spec:
    """The published-anchor table: measured against published clean and mean-15 accuracy."""
    n15 = set_name(_n_min(frame, "n_corruptions_15", 15), 15)
    return [
        ("method", lambda r: (r["label"], "label")),
        ("architecture", lambda r: r["arch"]),
        ("seeds", lambda r: str(int(r["n_seeds"]))),
        ("clean acc. (%), measured", lambda r: pm(r["clean_acc_mean"], r["clean_acc_std"])),
        ("published", lambda r: pct(r["published_clean_acc"])),
        ("Δ (points)", lambda r: pm(r["delta_clean_acc_pts"], None, 1, 2, True)),
        (f"mean acc. {n15} (%), measured", lambda r: pm(r["mean_acc_15_mean"], r["mean_acc_15_std"])),
        ("published", lambda r: pct(r["published_mean_acc_15"])),
        ("Δ (points)", lambda r: pm(r["delta_mean_acc_15_pts"], None, 1, 2, True)),
    ]


def per_corruption_columns(frame: pd.DataFrame) -> Spec:
    """Accuracy per corruption (one column per CIFAR-C corruption present)."""
    cols = [c for c in ALL_19 if c in frame.columns]
    return [("method", lambda r: (r["label"], "label")), ("arch.", lambda r: r["arch"])] + [
        (c.replace("_", " "), _pct_of(c)) for c in cols
    ]


def families_columns(frame: pd.DataFrame) -> Spec:
    """Seen vs unseen corruption families per method trained on corruptions."""
    return [
        ("method", lambda r: (r["label"], "label")),
        ("architecture", lambda r: r["arch"]),
        ("trained on", lambda r: r["trained_on"]),
        ("Δ seen (points)", lambda r: pm(r["seen_delta_pts"], None, 1, 2, True)),
        ("Δ unseen (points)", lambda r: pm(r["unseen_delta_pts"], None, 1, 2, True)),
        ("corruptions seen / unseen", lambda r: f"{int(r['n_seen'])} / {int(r['n_unseen'])}"),
        ("seen-family CIFAR-C corruptions", lambda r: (r["seen"], "wrap")),
    ]


def seen_unseen_columns(frame: pd.DataFrame) -> Spec:
    """The seen - unseen gap test per method and seed."""
    return [
        ("method", lambda r: (r["label"], "label")),
        *([("vs", lambda r: (r["reference"], "label"))] if "reference" in frame.columns else []),
        ("architecture", lambda r: r["arch"]),
        ("seed", lambda r: (r["seed"], "label" if r["seed"] == "over seeds" else "")),
        ("Δ seen vs plain (points)", lambda r: pm(r["seen_delta_pts"], None, 1, 2, True)),
        ("Δ unseen vs plain (points)", lambda r: pm(r["unseen_delta_pts"], None, 1, 2, True)),
        (
            "seen − unseen (points) [95 % interval]",
            lambda r: interval(r["diff_pts"], r.get("diff_low_pts"), r.get("diff_high_pts")),
        ),
        ("p (unadjusted: one question per method)", lambda r: p_cell(r.get("diff_p"))),
        ("test", lambda r: (str(r["test"]), "wrap")),
        (
            "corruptions seen / unseen",
            lambda r: (f"{int(r['n_seen'])} / {int(r['n_unseen'])}", "", r["seen"]),
        ),
    ]


def significance_columns(frame: pd.DataFrame) -> Spec:
    """The significance table: differences vs the reference with their tests, per seed and over seeds."""
    n15 = set_name(_n_min(frame, "n_corruptions_15", 15), 15)

    def delta(key, col, low, high):
        def cell(r):
            if r["seed"] == "over seeds":
                text = pm(r.get(col), r.get(f"{key}_std_pts"), 1, 2, True)
            else:
                text = with_ci(r.get(col), r.get(low), r.get(high), 1)
            return (text, _significant(r, key))

        return cell

    def pcell(key):
        return lambda r: (
            f"{p_cell(r.get(f'{key}_p'))} → {p_cell(r.get(f'{key}_p_holm'))}",
            "",
            f"{r.get(f'{key}_test') or ''}; Holm over {r.get('family_size')} tests ({r.get('family')})",
        )

    spec: Spec = [
        ("method", lambda r: (r["label"], "label")),
        *([("vs", lambda r: (r["reference"], "label"))] if "reference" in frame.columns else []),
        ("architecture", lambda r: r["arch"]),
        ("seed", lambda r: (r["seed"], "label" if r["seed"] == "over seeds" else "")),
        ("test images", lambda r: count(r.get("n_images")) if not is_missing(r.get("n_images")) else "–"),
        (
            "Δ clean (points) [unadjusted 95 % CI] / ± std over seeds",
            delta("clean", "delta_clean_pts", "clean_low_pts", "clean_high_pts"),
        ),
        ("test", lambda r: str(r.get("clean_test") or "–")),
        (
            "McNemar b / c",
            lambda r: (
                "–"
                if is_missing(r.get("clean_b"))
                else (
                    f"{int(r['clean_b'])} / {int(r['clean_c'])}",
                    "",
                    "b: only the method right, c: only "
                    + (str(r["reference"]) if "reference" in frame.columns else "plain"),
                )
            ),
        ),
        (f"p → Holm-adjusted p ({significance_family_header(frame)})", pcell("clean")),
    ]
    if "delta_mean15_pts" in frame.columns:
        spec += [
            (
                f"Δ mean acc. {n15} (points) [unadjusted 95 % CI] / ± std",
                delta("mean15", "delta_mean15_pts", "mean15_low_pts", "mean15_high_pts"),
            ),
            ("test", lambda r: str(r.get("mean15_test") or "–")),
            (f"p → Holm-adjusted p ({significance_family_header(frame)})", pcell("mean15")),
        ]
    return spec


def runs_columns(frame: pd.DataFrame) -> Spec:
    """One row per run: accuracy with its interval, mCE and ratios, the reference run."""
    n15 = set_name(_n_min(frame, "n_corruptions_15", 15), 15)
    n19 = set_name(_n_min(frame, "n_corruptions_19", 19), 19)
    return [
        ("run", lambda r: (r["run_id"], "mono")),
        ("method", lambda r: (r["label"], "label")),
        ("arch.", lambda r: r["arch"]),
        ("training", lambda r: (r.get("training") or "–", "wrap")),
        ("seed", lambda r: str(r["seed"])),
        ("optimizer steps", lambda r: count(r.get("optimizer_steps"))),
        ("images seen (all views)", lambda r: count(r.get("images_seen"))),
        (
            "clean acc. (%) [95 % CI]",
            lambda r: with_ci(r["clean_acc"], r["clean_acc_low"], r["clean_acc_high"]),
        ),
        (
            f"mean acc. {n15} (%) [95 % CI]",
            lambda r: with_ci(r["mean_acc_15"], r["mean_acc_15_low"], r["mean_acc_15_high"]),
        ),
        (f"mean acc. {n19} (%)", lambda r: pct(r["mean_acc_19"])),
        (f"mCE, {n15} (%)", lambda r: pct(r["mce"])),
        (
            "normalized mCE (%)",
            lambda r: ratio_cell(r["mce_norm"], None, r["mce_norm_n"], r["mce_norm_unstable"]),
        ),
        (
            "relative mCE (%)",
            lambda r: ratio_cell(r["mce_rel"], None, r["mce_rel_n"], r["mce_rel_unstable"]),
        ),
        ("reference", lambda r: (r["reference_run"] or "–", "mono")),
    ]


# the column spec of each table kind html_table knows
TABLE_COLUMNS: dict[str, Callable[[pd.DataFrame], Spec]] = {
    "claim": claim_columns,
    "methods": methods_columns,
    "published": published_columns,
    "per_corruption": per_corruption_columns,
    "families": families_columns,
    "seen_unseen": seen_unseen_columns,
    "significance": significance_columns,
    "runs": runs_columns,
}


def spec_rows(frame: pd.DataFrame, spec, kind: str = "") -> dict:
    """The display rows of ``frame`` under ``spec``, a list of (column header, function of a row);
    a function returns the cell's text, or (text, css class[, tooltip])."""
    rows = []
    for _, r in frame.iterrows():
        row = []
        for _, fn in spec:
            v = fn(r)
            text, cls, title = (tuple(v) + ("", ""))[:3] if isinstance(v, tuple) else (v, "", "")
            row.append({"text": str(text), "cls": cls, "title": title})
        rows.append(row)
    return {"columns": [h for h, _ in spec], "rows": rows, "kind": kind}


def html_table(frame: pd.DataFrame, kind: str) -> dict:
    """Display rows for ``frame`` formatted as table ``kind`` (see the module docstring)."""
    columns = TABLE_COLUMNS.get(kind)
    if columns is None:
        raise ValueError(f"unknown table kind {kind!r}")
    return spec_rows(frame, columns(frame), kind)
