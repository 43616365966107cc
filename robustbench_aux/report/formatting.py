"""Turning report tables into display rows: percent with units, mean ± std (n), signed deltas.

``html_table(frame, kind)`` returns ``{"columns": [...], "rows": [[{"text", "cls"}, ...]]}`` for
the template; the CSV files keep the unformatted numbers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np
import pandas as pd

from robustbench_aux.catalog import ALL_19, CBAR_10
from robustbench_aux.metrics.compare import PAPER_DELTA_CLEAN_PTS, PAPER_ROBUSTNESS
from robustbench_aux.report.banner import deviation_text, deviations, reference_epochs
from robustbench_aux.report.runs import SharedFacts
from robustbench_aux.runinfo import AS_PLAIN_STEPS, DATA_READING_METHODS, DEFAULT_DATA_READING


def _nan(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def pct(x, digits: int = 2) -> str:
    """A fraction as percent text (no % sign: the column header carries the unit)."""
    return "–" if _nan(x) else f"{100 * x:.{digits}f}"


def pm(mean, std, scale: float = 100.0, digits: int = 2, signed: bool = False) -> str:
    """``mean ± std`` (std omitted when NaN, i.e. a single seed)."""
    if _nan(mean):
        return "–"
    m = f"{scale * mean:+.{digits}f}" if signed else f"{scale * mean:.{digits}f}"
    return m if _nan(std) else f"{m} ± {scale * std:.{digits}f}"


def _ci(mean, low, high, scale: float = 100.0) -> str:
    if _nan(mean):
        return "–"
    if _nan(low):
        return f"{scale * mean:.2f}"
    return f"{scale * mean:.2f} [{scale * low:.2f}, {scale * high:.2f}]"


def interval(mean, low, high, digits: int = 2) -> str:
    """A signed number with its interval: ``-2.27 [-5.18, +0.87]`` (the bare number without one)."""
    if _nan(mean):
        return "–"
    if _nan(low) or _nan(high):
        return f"{mean:+.{digits}f} [no interval]"
    return f"{mean:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"


def interval_source(text) -> str:
    """A short name for what a claim interval rests on (the full text goes in the tooltip)."""
    text = str(text or "")
    if text.startswith("t over"):
        return text
    if text.startswith("bootstrap"):
        return "bootstrap over test images"
    if text.startswith("combined"):
        return "the architectures' intervals"
    return "none"


def count(x) -> str:
    """An image or step count with thousands separators ("not recorded" when unknown)."""
    return "not recorded" if _nan(x) else f"{int(round(float(x))):,}"


def spread(r, col: str) -> str:
    """``min / median / max`` of a ratio's per-corruption values, in percent."""
    vals = [r.get(f"{col}_{q}") for q in ("min", "median", "max")]
    return "–" if any(_nan(v) for v in vals) else " / ".join(f"{100 * v:.0f}" for v in vals)


def _p(p) -> str:
    return "–" if _nan(p) else ("< 0.001" if p < 0.001 else f"{p:.3f}")


Cell = tuple  # (text, css class) or (text, css class, tooltip)


def _pct_of(column: str) -> Callable[[pd.Series], str]:
    return lambda r: pct(r[column], 1)


def ratio_cell(value, std, n_used, unstable: str, n_set: int = 15, scale: float = 100.0) -> Cell:
    """A normalized / relative mCE cell: the number with how many corruptions entered it.

    ``unstable`` lists (";"-separated) corruptions left out because the reference barely degrades
    on them; with none left the cell reads "unstable" instead of a meaningless ratio.
    """
    left_out = [c for c in str(unstable or "").split(";") if c]
    note = f"{len(left_out)} unstable: {', '.join(left_out)}" if left_out else ""
    if _nan(value):
        return ("unstable", "unstable", note) if left_out else ("–", "", "")
    n = int(n_used) if not _nan(n_used) else n_set
    text = pm(value, std, scale)
    if n < n_set or left_out:
        text += f" ({n} of {n_set})"
    return (text, "partial" if left_out else "", note)


def set_name(n: int, full: int) -> str:
    """``15`` for a full set, ``3 of 15`` for a subset: a mean never carries a full-set name alone."""
    return str(full) if n >= full else f"{n} of {full}"


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
    sizes = sorted({int(v) for v in frame.loc[rows, "family_size"] if not _nan(v)})
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


def _spec(kind: str, frame: pd.DataFrame) -> Spec:
    n15 = set_name(_n_min(frame, "n_corruptions_15", 15), 15)
    n19 = set_name(_n_min(frame, "n_corruptions_19", 19), 19)
    if kind == "claim":

        def reading(col):
            def cell(r):
                std = r.get(f"{col}_std")
                note = "" if _nan(std) else f"± {std:.2f} (std over seeds)"
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
                lambda r: (_p(r.get("robust_p_holm")), "", str(r.get("family") or "")),
            ),
            (
                f"verdict: which reading of {PAPER_ROBUSTNESS:.2f} matches",
                lambda r: (r["matching_reading"], "wrap verdict"),
            ),
        ]
    if kind == "methods":

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
    if kind == "published":
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
    if kind == "per_corruption":
        cols = [c for c in ALL_19 if c in frame.columns]
        return [("method", lambda r: (r["label"], "label")), ("arch.", lambda r: r["arch"])] + [
            (c.replace("_", " "), _pct_of(c)) for c in cols
        ]
    if kind == "families":
        return [
            ("method", lambda r: (r["label"], "label")),
            ("architecture", lambda r: r["arch"]),
            ("trained on", lambda r: r["trained_on"]),
            ("Δ seen (points)", lambda r: pm(r["seen_delta_pts"], None, 1, 2, True)),
            ("Δ unseen (points)", lambda r: pm(r["unseen_delta_pts"], None, 1, 2, True)),
            ("corruptions seen / unseen", lambda r: f"{int(r['n_seen'])} / {int(r['n_unseen'])}"),
            ("seen-family CIFAR-C corruptions", lambda r: (r["seen"], "wrap")),
        ]
    if kind == "seen_unseen":
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
            ("p (unadjusted: one question per method)", lambda r: _p(r.get("diff_p"))),
            ("test", lambda r: (str(r["test"]), "wrap")),
            (
                "corruptions seen / unseen",
                lambda r: (f"{int(r['n_seen'])} / {int(r['n_unseen'])}", "", r["seen"]),
            ),
        ]
    if kind == "significance":

        def delta(key, col, low, high):
            def cell(r):
                if r["seed"] == "over seeds":
                    text = pm(r.get(col), r.get(f"{key}_std_pts"), 1, 2, True)
                else:
                    text = _ci(r.get(col), r.get(low), r.get(high), 1)
                return (text, _significant(r, key))

            return cell

        def pcell(key):
            return lambda r: (
                f"{_p(r.get(f'{key}_p'))} → {_p(r.get(f'{key}_p_holm'))}",
                "",
                f"{r.get(f'{key}_test') or ''}; Holm over {r.get('family_size')} tests ({r.get('family')})",
            )

        spec: Spec = [
            ("method", lambda r: (r["label"], "label")),
            *([("vs", lambda r: (r["reference"], "label"))] if "reference" in frame.columns else []),
            ("architecture", lambda r: r["arch"]),
            ("seed", lambda r: (r["seed"], "label" if r["seed"] == "over seeds" else "")),
            ("test images", lambda r: count(r.get("n_images")) if not _nan(r.get("n_images")) else "–"),
            (
                "Δ clean (points) [unadjusted 95 % CI] / ± std over seeds",
                delta("clean", "delta_clean_pts", "clean_low_pts", "clean_high_pts"),
            ),
            ("test", lambda r: str(r.get("clean_test") or "–")),
            (
                "McNemar b / c",
                lambda r: (
                    "–"
                    if _nan(r.get("clean_b"))
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
    if kind == "runs":
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
                lambda r: _ci(r["clean_acc"], r["clean_acc_low"], r["clean_acc_high"]),
            ),
            (
                f"mean acc. {n15} (%) [95 % CI]",
                lambda r: _ci(r["mean_acc_15"], r["mean_acc_15_low"], r["mean_acc_15_high"]),
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
    raise ValueError(f"unknown table kind {kind!r}")


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
    return spec_rows(frame, _spec(kind, frame), kind)


def _deviation_summary(records) -> str:
    per: dict[str, list[str]] = {}
    for r in records:
        for d in deviations(r):
            per.setdefault(deviation_text(d), []).append(r.run_id)
    if not per:
        return "none recorded"
    return "; ".join(f"{t} [{len(ids)} of {len(records)} runs]" for t, ids in sorted(per.items()))


def _count_summary(records, keep, value) -> str:
    per: dict[str, int] = {}
    kept = [r for r in records if keep(r.info)]
    for r in kept:
        per[value(r.info)] = per.get(value(r.info), 0) + 1
    if not kept:
        return "no such run"
    return "; ".join(f"{v} [{n} of {len(kept)} runs]" for v, n in sorted(per.items()))


def _data_reading_summary(records) -> str:
    return _count_summary(
        records,
        lambda i: i.method in DATA_READING_METHODS,
        lambda i: i.data_reading or "not recorded",
    )


def _step_budget_summary(records) -> str:
    return _count_summary(
        records,
        lambda i: i.data_reading == DEFAULT_DATA_READING,
        lambda i: {
            AS_PLAIN_STEPS: "as_plain (plain training's steps per epoch)",
            None: "not recorded (every item each epoch)",
        }.get(i.step_budget, f"{i.step_budget} (every item each epoch)"),
    )


def _augmix_summary(records) -> str:
    return _count_summary(
        records,
        lambda i: i.method == "augmix",
        lambda i: (
            "AugMix's published protocol (augmix_published)"
            if i.augmix_published
            else f"shared schedule (recipe {i.recipe or '?'})"
        ),
    )


def corruption_sets(records, shared: SharedFacts) -> str:
    """The evaluated corruption benchmarks, each counted on its own: CIFAR-C (of its 19) and
    CIFAR-10-C-bar (of its ten) are two benchmarks, never one count."""
    t = records[0].table
    blocks = t[t["corruption"] != "clean"]
    parts = []
    for name, members in (("CIFAR-C", ALL_19), ("CIFAR-10-C-bar", CBAR_10)):
        sub = blocks[blocks["corruption"].isin(members)]
        if sub.empty:
            continue
        sevs = sorted(int(x) for x in sub["severity"].unique())
        shown = (
            f"{sevs[0]}–{sevs[-1]}"
            if sevs == list(range(sevs[0], sevs[-1] + 1))
            else ", ".join(map(str, sevs))
        )
        parts.append(
            f"{name}: {sub['corruption'].nunique()} of {len(members)} corruptions × severities {shown}"
        )
    text = "; ".join(parts) or "no corruptions"
    if len(parts) > 1:
        text += " (two separate benchmarks)"
    return f"{text}; {shared.images_per_block:,} images per block"


def provenance_rows(records, shared: SharedFacts) -> list[tuple[str, str]]:
    """(name, value) pairs for the provenance box: data, corruptions, seeds, versions."""

    def distinct(get) -> str:
        vals = sorted({str(v) for v in (get(r) for r in records) if v not in (None, "")})
        return ", ".join(vals) if vals else "not recorded"

    prov = [r.summary.get("provenance") or {} for r in records]
    by = {r.run_id: p for r, p in zip(records, prov, strict=True)}
    seeds = {}
    for r in records:
        seeds.setdefault((r.label, r.arch), []).append(r.seed)
    manifests = {k for p in prov for k in ((p.get("corruptions") or {}).get("manifest_sha256") or {})}
    return [
        ("dataset", shared.dataset),
        (
            "dataset copy",
            distinct(
                lambda r: (
                    (by[r.run_id].get("data") or {}).get("copy")
                    or (by[r.run_id].get("data") or {}).get("source")
                )
            ),
        ),
        ("clean test images", str(shared.clean_test_images)),
        (
            "corruptions",
            f"{shared.corruption_provenance or 'unknown'} ({shared.corruption_preset or 'unknown'} preset)",
        ),
        ("corruption sets", corruption_sets(records, shared)),
        (
            "corruption directory",
            distinct(lambda r: (by[r.run_id].get("corruptions") or {}).get("corruptions_dir")),
        ),
        ("manifest checksums", f"{len(manifests)} files listed" if manifests else "none (no manifest)"),
        (
            "seeds",
            "; ".join(
                f"{lab} / {a}: {','.join(map(str, sorted(s)))}" for (lab, a), s in sorted(seeds.items())
            ),
        ),
        (
            "recipe, epochs (reference schedule)",
            distinct(
                lambda r: f"{r.info.recipe or '?'}, {r.info.epochs} epochs ({reference_epochs(r.info)})"
            ),
        ),
        ("protocol deviations", _deviation_summary(records)),
        ("data reading (naive / per-corruption runs)", _data_reading_summary(records)),
        ("step budget (enlarged-dataset runs)", _step_budget_summary(records)),
        ("AugMix protocol", _augmix_summary(records)),
        ("code versions (evaluation)", distinct(lambda r: by[r.run_id].get("code_version"))),
        ("code versions (training)", distinct(lambda r: r.info.code_version)),
        ("torch", distinct(lambda r: by[r.run_id].get("torch"))),
        ("devices", distinct(lambda r: by[r.run_id].get("device"))),
        ("normalization (from run configs)", distinct(lambda r: r.info.normalization)),
    ]
