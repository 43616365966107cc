"""Turning report tables into display rows: percent with units, mean ± std (n), signed deltas.

``html_table(frame, kind)`` returns ``{"columns": [...], "rows": [[{"text", "cls"}, ...]]}`` for
the template; the CSV files keep the unformatted numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd

from robustbench_aux.corruptions.catalog import ALL_19


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


def _sign(x) -> str:
    if _nan(x):
        return ""
    return "pos" if x > 0 else "neg" if x < 0 else ""


def _ci(mean, low, high, scale: float = 100.0) -> str:
    if _nan(mean):
        return "–"
    if _nan(low):
        return f"{scale * mean:.2f}"
    return f"{scale * mean:.2f} [{scale * low:.2f}, {scale * high:.2f}]"


def _p(p) -> str:
    return "–" if _nan(p) else ("< 0.001" if p < 0.001 else f"{p:.3f}")


Cell = tuple[str, str]


def _pct_of(column: str) -> Callable[[pd.Series], str]:
    return lambda r: pct(r[column], 1)


Spec = list[tuple[str, Callable[[pd.Series], Cell | str]]]


def _spec(kind: str, frame: pd.DataFrame) -> Spec:
    if kind == "claim":
        return [
            ("architecture", lambda r: r["arch"]),
            ("seeds (paired)", lambda r: f"{int(r['n_seeds'])} ({'yes' if r['paired'] else 'no'})"),
            (
                "Δ clean accuracy (points)",
                lambda r: (
                    pm(r["delta_clean_pts"], r["delta_clean_pts_std"], 1, 2, True),
                    _sign(r["delta_clean_pts"]),
                ),
            ),
            ("paper Δ clean (points)", lambda r: f"+{r['paper_delta_clean_pts']:.2f}"),
            (
                "Δ robustness, absolute: mCE(plain) − mCE(aux) (points)",
                lambda r: (
                    pm(r["robust_abs_pts"], r["robust_abs_pts_std"], 1, 2, True),
                    _sign(r["robust_abs_pts"]),
                ),
            ),
            (
                "Δ robustness, relative: ÷ mCE(plain) (%)",
                lambda r: (
                    pm(r["robust_rel_pct"], r["robust_rel_pct_std"], 1, 2, True),
                    _sign(r["robust_rel_pct"]),
                ),
            ),
            ("paper robustness (reading unstated)", lambda r: f"{r['paper_robustness']:.2f}"),
            ("closer reading", lambda r: r["closer_reading"]),
        ]
    if kind == "methods":

        def agg(col):
            return lambda r: pm(r[f"{col}_mean"], r[f"{col}_std"])

        return [
            ("method", lambda r: (r["label"], "label")),
            ("architecture", lambda r: r["arch"]),
            ("seeds (n)", lambda r: f"{r['seeds']} ({int(r['n_seeds'])})"),
            ("clean acc. (%)", agg("clean_acc")),
            ("mean acc. 15 (%)", agg("mean_acc_15")),
            ("mean acc. 19 (%)", agg("mean_acc_19")),
            ("mCE (%)", agg("mce")),
            ("normalized mCE vs plain (%)", agg("mce_norm")),
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
            (
                "Δ seen (points)",
                lambda r: (pm(r["seen_delta_pts"], None, 1, 2, True), _sign(r["seen_delta_pts"])),
            ),
            (
                "Δ unseen (points)",
                lambda r: (pm(r["unseen_delta_pts"], None, 1, 2, True), _sign(r["unseen_delta_pts"])),
            ),
            ("corruptions seen / unseen", lambda r: f"{int(r['n_seen'])} / {int(r['n_unseen'])}"),
            ("seen-family CIFAR-C corruptions", lambda r: (r["seen"], "wrap")),
        ]
    if kind == "significance":
        has15 = "delta_mean15_pts" in frame.columns
        spec: Spec = [
            ("method", lambda r: (r["label"], "label")),
            ("architecture", lambda r: r["arch"]),
            ("seeds", lambda r: r["seeds"]),
            (
                "Δ clean (points) [95 % CI]",
                lambda r: (
                    _ci(r["delta_clean_pts"], r["clean_low_pts"], r["clean_high_pts"], 1),
                    _sign(r["delta_clean_pts"]),
                ),
            ),
            ("p (paired bootstrap)", lambda r: _p(r["clean_p_bootstrap"])),
            ("p (McNemar)", lambda r: _p(r["clean_p_mcnemar"])),
        ]
        if has15:
            spec += [
                (
                    "Δ mean acc. 15 (points) [95 % CI]",
                    lambda r: (
                        _ci(r["delta_mean15_pts"], r["mean15_low_pts"], r["mean15_high_pts"], 1),
                        _sign(r["delta_mean15_pts"]),
                    ),
                ),
                ("p (paired bootstrap)", lambda r: _p(r["mean15_p_bootstrap"])),
            ]
        return spec
    if kind == "runs":
        return [
            ("run", lambda r: (r["run_id"], "mono")),
            ("method", lambda r: (r["label"], "label")),
            ("arch.", lambda r: r["arch"]),
            ("seed", lambda r: str(r["seed"])),
            (
                "clean acc. (%) [95 % CI]",
                lambda r: _ci(r["clean_acc"], r["clean_acc_low"], r["clean_acc_high"]),
            ),
            (
                "mean acc. 15 (%) [95 % CI]",
                lambda r: _ci(r["mean_acc_15"], r["mean_acc_15_low"], r["mean_acc_15_high"]),
            ),
            ("mean acc. 19 (%)", lambda r: pct(r["mean_acc_19"])),
            ("mCE (%)", lambda r: pct(r["mce"])),
            ("normalized mCE (%)", lambda r: pct(r["mce_norm"])),
            ("relative mCE (%)", lambda r: pct(r["mce_rel"])),
            ("reference", lambda r: (r["reference_run"] or "–", "mono")),
        ]
    raise ValueError(f"unknown table kind {kind!r}")


def html_table(frame: pd.DataFrame, kind: str) -> dict:
    """Display rows for ``frame`` formatted as table ``kind`` (see the module docstring)."""
    spec = _spec(kind, frame)
    rows = []
    for _, r in frame.iterrows():
        row = []
        for _, fn in spec:
            v = fn(r)
            text, cls = v if isinstance(v, tuple) else (v, "")
            row.append({"text": str(text), "cls": cls})
        rows.append(row)
    return {"columns": [h for h, _ in spec], "rows": rows, "kind": kind}


def provenance_rows(records, shared: dict) -> list[tuple[str, str]]:
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
        ("dataset", str(shared["dataset"])),
        (
            "dataset copy",
            distinct(
                lambda r: (
                    (by[r.run_id].get("data") or {}).get("copy")
                    or (by[r.run_id].get("data") or {}).get("source")
                )
            ),
        ),
        ("clean test images", str(shared["clean test images"])),
        (
            "corruptions",
            f"{shared['corruption provenance (published/generated)'] or 'unknown'} "
            f"({shared['corruption preset'] or 'unknown'} preset)",
        ),
        (
            "corruption set",
            f"{shared['corruption set']}, {shared['images per corruption block']} images per block",
        ),
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
        ("code versions (evaluation)", distinct(lambda r: by[r.run_id].get("code_version"))),
        ("code versions (training)", distinct(lambda r: r.config.get("code_version"))),
        ("torch", distinct(lambda r: by[r.run_id].get("torch"))),
        ("devices", distinct(lambda r: by[r.run_id].get("device"))),
        ("normalization (from run configs)", distinct(lambda r: r.config.get("normalization"))),
    ]
