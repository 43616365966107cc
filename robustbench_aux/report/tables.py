"""The report's tables, as pandas frames (written beside the HTML as CSV, rendered in it).

Accuracies are fractions; differences are points (``_pts``) and relative changes percent
(``_pct``), as in :mod:`robustbench_aux.metrics.compare`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from robustbench_aux.corruptions.catalog import ALL_19, BENCHMARK_15
from robustbench_aux.metrics import accuracy as acc
from robustbench_aux.metrics import compare
from robustbench_aux.metrics.tidy import CLEAN
from robustbench_aux.metrics.uncertainty import aggregate_seeds, mcnemar, paired_bootstrap, per_image_score
from robustbench_aux.report.runs import RunRecord

PLAIN = compare.PLAIN


def has_plain(df: pd.DataFrame, arch: str | None = None) -> bool:
    sub = df if arch is None else df[df["arch"] == arch]
    return bool((sub["label"] == PLAIN).any())


def reference_for(df: pd.DataFrame, run_id: str) -> str | None:
    """The reference run for normalized CE: plain, same architecture, same seed (else lowest seed)."""
    runs = df.drop_duplicates("run_id").set_index("run_id")
    me = runs.loc[run_id]
    plain = runs[(runs["label"] == PLAIN) & (runs["arch"] == me["arch"])]
    if plain.empty:
        return None
    same = plain[plain["seed"] == me["seed"]]
    return str((same if len(same) else plain.sort_values("seed")).index[0])


def normalized_figures(df: pd.DataFrame) -> pd.DataFrame:
    """Per run: mce_norm and mce_rel (fractions) against its reference run, and which run that was."""
    rows = {}
    for rid in df["run_id"].unique():
        ref = reference_for(df, rid)
        if ref is None:
            rows[rid] = {"reference_run": None, "mce_norm": np.nan, "mce_rel": np.nan}
            continue
        run, rtab = df[df["run_id"] == rid], df[df["run_id"] == ref]
        rows[rid] = {
            "reference_run": ref,
            "mce_norm": compare.normalized_mce(run, rtab),
            "mce_rel": compare.relative_mce(run, rtab),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("run_id")


def run_table(records: list[RunRecord], df: pd.DataFrame) -> pd.DataFrame:
    """One row per run: accuracies, mCE figures and 95 % bootstrap intervals from its summary."""
    frame = compare.run_frame(df).set_index("run_id")
    frame = frame.join(normalized_figures(df))
    for r in records:
        boot = r.summary.get("bootstrap_95") or {}
        for key in ("clean_acc", "mean_acc_15"):
            ci = boot.get(key) or {}
            frame.loc[r.run_id, f"{key}_low"] = ci.get("low", np.nan)
            frame.loc[r.run_id, f"{key}_high"] = ci.get("high", np.nan)
    order = {lab: i for i, lab in enumerate(compare.label_order(frame["label"]))}
    frame = frame.assign(_o=frame["label"].map(order)).sort_values(["arch", "_o", "seed"]).drop(columns="_o")
    return frame.reset_index()


def method_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (method label, architecture): clean, mean_acc_15, mean_acc_19, mCE, normalized mCE, seeds."""
    values = ["clean_acc", "mean_acc_15", "mean_acc_19", "mce", "mce_norm"]
    table = aggregate_seeds(runs, values)
    seeds = runs.groupby(["label", "arch"], sort=False)["seed"].apply(lambda s: ",".join(map(str, sorted(s))))
    table = table.merge(seeds.rename("seeds").reset_index(), on=["label", "arch"])
    order = {lab: i for i, lab in enumerate(compare.label_order(table["label"]))}
    table = table.assign(_o=table["label"].map(order)).sort_values(["arch", "_o"]).drop(columns="_o")
    return table.reset_index(drop=True)


def claim_table(df: pd.DataFrame, label: str = "auxiliary") -> pd.DataFrame:
    """The paper's claim vs this run: Δclean and Δrobustness of ``label`` over plain, both readings."""
    h = compare.headline(df, label=label)
    if h.empty:
        return h
    h = h.copy()
    h.insert(1, "method", label)
    h["paper_delta_clean_pts"] = compare.PAPER_DELTA_CLEAN_PTS
    h["paper_robustness"] = compare.PAPER_ROBUSTNESS
    h["closer_reading"] = [
        compare.closest_reading(a, r) for a, r in zip(h["robust_abs_pts"], h["robust_rel_pct"], strict=True)
    ]
    return h


def corruption_table(df: pd.DataFrame) -> pd.DataFrame:
    """acc[c] per (label, arch), averaged over seeds; columns in catalog order."""
    wide = acc.corruption_accuracy(df)
    ident = df.drop_duplicates("run_id").set_index("run_id")[["label", "arch"]]
    out = wide.join(ident).groupby(["label", "arch"]).mean()
    return out.reset_index()


def severity_table(df: pd.DataFrame, corruptions=BENCHMARK_15) -> pd.DataFrame:
    """Mean accuracy over the corruptions at each severity (clean as severity 0), per (label, arch)."""
    curve = acc.severity_curve(df, corruptions)
    curve.insert(0, 0, acc.clean_accuracy(df))
    ident = df.drop_duplicates("run_id").set_index("run_id")[["label", "arch"]]
    out = curve.join(ident).groupby(["label", "arch"]).mean()
    out.columns = [f"s{c}" if c else "clean" for c in out.columns]
    return out.reset_index()


def family_table(df: pd.DataFrame, configs: dict[str, dict]) -> pd.DataFrame:
    """Seen- vs unseen-family corruption means of methods trained on corruptions, Δ vs plain (points)."""
    rows = []
    for arch in sorted(df["arch"].unique()):
        if not has_plain(df, arch):
            continue
        mat = compare.interference_matrix(df, arch=arch)
        labels = df[df["arch"] == arch].drop_duplicates("label").set_index("label")["run_id"]
        for label in mat.index:
            trained = compare.training_corruptions(configs.get(labels[label], {}))
            if not trained:
                continue
            seen = [c for c in compare.seen_corruptions(trained) if c in mat.columns]
            unseen = [c for c in ALL_19 if c in mat.columns and c not in seen]
            rows.append(
                {
                    "label": label,
                    "arch": arch,
                    "trained_on": "+".join(trained),
                    "seen": ", ".join(seen) or "none in CIFAR-C",
                    "seen_delta_pts": float(mat.loc[label, seen].mean()) if seen else np.nan,
                    "unseen_delta_pts": float(mat.loc[label, unseen].mean()) if unseen else np.nan,
                    "n_seen": len(seen),
                    "n_unseen": len(unseen),
                }
            )
    return pd.DataFrame(rows)


def _bench_scores(r: RunRecord) -> np.ndarray | None:
    blocks = [v for (c, _), v in r.per_image().items() if c in BENCHMARK_15]
    return per_image_score(blocks) if blocks else None


def significance_table(records: list[RunRecord]) -> pd.DataFrame:
    """Each method vs plain of the same architecture on the same test images, seeds matched.

    Δ is averaged over the matched seeds image by image, then bootstrapped over test images
    (paired); the clean McNemar test pools the discordant counts of the matched seeds.
    """
    by_key = {(r.label, r.arch, r.seed): r for r in records}
    rows = []
    for label, arch in sorted({(r.label, r.arch) for r in records}):
        if label == PLAIN:
            continue
        pairs = [
            (by_key[(label, arch, s)], by_key[(PLAIN, arch, s)])
            for (lab, a, s) in by_key
            if lab == label and a == arch and (PLAIN, arch, s) in by_key
        ]
        pairs = [(m, p) for m, p in pairs if (CLEAN, 0) in m.per_image() and (CLEAN, 0) in p.per_image()]
        if not pairs:
            continue
        clean_m = [m.per_image()[(CLEAN, 0)] for m, _ in pairs]
        clean_p = [p.per_image()[(CLEAN, 0)] for _, p in pairs]
        if len({len(x) for x in clean_m + clean_p}) != 1:
            continue  # different test images: no paired test
        row = {"label": label, "arch": arch, "seeds": ",".join(str(m.seed) for m, _ in pairs)}
        dc = paired_bootstrap(np.mean(clean_m, axis=0), np.mean(clean_p, axis=0))
        mc = mcnemar(np.concatenate(clean_m), np.concatenate(clean_p))
        row.update(
            {
                "delta_clean_pts": 100 * dc["delta"],
                "clean_low_pts": 100 * dc["low"],
                "clean_high_pts": 100 * dc["high"],
                "clean_p_bootstrap": dc["p_value"],
                "clean_p_mcnemar": mc["p_value"],
            }
        )
        sm = [_bench_scores(m) for m, _ in pairs]
        sp = [_bench_scores(p) for _, p in pairs]
        if all(x is not None for x in sm + sp) and len({len(x) for x in sm + sp}) == 1:
            d = paired_bootstrap(np.mean(sm, axis=0), np.mean(sp, axis=0))
            row.update(
                {
                    "delta_mean15_pts": 100 * d["delta"],
                    "mean15_low_pts": 100 * d["low"],
                    "mean15_high_pts": 100 * d["high"],
                    "mean15_p_bootstrap": d["p_value"],
                }
            )
        rows.append(row)
    table = pd.DataFrame(rows)
    if len(table):
        order = {lab: i for i, lab in enumerate(compare.label_order(table["label"]))}
        table = table.assign(_o=table["label"].map(order)).sort_values(["arch", "_o"]).drop(columns="_o")
    return table.reset_index(drop=True)
