"""The report's tables, as pandas frames (written beside the HTML as CSV, rendered in it).

Accuracies are fractions; differences are points (``_pts``) and relative changes percent
(``_pct``), as in :mod:`robustbench_aux.metrics.compare`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from robustbench_aux.catalog import ALL_19, BENCHMARK_15, CLEAN
from robustbench_aux.metrics import accuracy as acc
from robustbench_aux.metrics import compare
from robustbench_aux.metrics.compare import ALPHA  # noqa: F401  (the level every report test uses, re-exported)
from robustbench_aux.metrics.uncertainty import (
    BOOTSTRAP_SAMPLES,
    aggregate_seeds,
    holm,
    mcnemar,
    paired_bootstrap,
    paired_z,
    per_image_score,
    seed_test,
)
from robustbench_aux.report.runs import RunRecord
from robustbench_aux.runinfo import AS_PLAIN_STEPS, AUGMIX_PUBLISHED_LABEL, DATA_READING_METHODS, RunInfo

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


RATIOS = (("mce_norm", "normalized"), ("mce_rel", "relative"))
SPREAD = ("min", "median", "max")  # per-corruption spread of each ratio over its stable corruptions


def normalized_figures(df: pd.DataFrame) -> pd.DataFrame:
    """Per run: mce_norm and mce_rel (fractions) against its reference run, and which run that was.

    Each mean is over the stable benchmark corruptions (:func:`compare.ratio_mce`); ``<name>_n``
    says how many entered it, ``<name>_unstable`` names those left out because the reference
    barely degrades on them (";"-separated), so nothing is dropped without a trace;
    ``<name>_min`` / ``_median`` / ``_max`` give the spread of the per-corruption ratios behind the mean.
    """
    rows = {}
    for rid in df["run_id"].unique():
        ref = reference_for(df, rid)
        row: dict = {"reference_run": ref}
        for name, kind in RATIOS:
            if ref is None:
                row.update({name: np.nan, f"{name}_n": 0, f"{name}_unstable": ""})
                row.update({f"{name}_{q}": np.nan for q in SPREAD})
                continue
            r = compare.ratio_mce(df[df["run_id"] == rid], df[df["run_id"] == ref], kind)
            row.update(
                {name: r["value"], f"{name}_n": r["n_used"], f"{name}_unstable": ";".join(r["unstable"])}
            )
            row.update({f"{name}_{q}": r[q] for q in SPREAD})
        rows[rid] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("run_id")


def ratio_table(df: pd.DataFrame) -> pd.DataFrame:
    """Every per-corruption ratio behind normalized and relative mCE: one row per (run, kind,
    benchmark corruption) with its numerator, denominator, ratio and whether it was left out as
    unstable (``ratios.csv``)."""
    rows = []
    ident = df.drop_duplicates("run_id").set_index("run_id")
    for rid in df["run_id"].unique():
        ref = reference_for(df, rid)
        if ref is None:
            continue
        for name, kind in RATIOS:
            per = compare.ratio_ce(df[df["run_id"] == rid], df[df["run_id"] == ref], kind)
            for corruption, r in per.iterrows():
                if corruption not in BENCHMARK_15:
                    continue
                rows.append(
                    {
                        "run_id": rid,
                        "label": ident.loc[rid, "label"],
                        "arch": ident.loc[rid, "arch"],
                        "seed": ident.loc[rid, "seed"],
                        "reference_run": ref,
                        "ratio": name,
                        "corruption": corruption,
                        "numerator": r["numerator"],
                        "denominator": r["denominator"],
                        "value": r["ratio"],
                        "unstable": bool(r["unstable"]),
                    }
                )
    return pd.DataFrame(rows)


def training_protocol(info: RunInfo) -> str:
    """How a run was trained, as the report shows it: its recipe, AugMix's protocol (shared schedule
    or published), and for naive / per-corruption augmentation which ``data_reading`` ran and, with
    the enlarged dataset, its ``step_budget`` (a full pass per epoch, or plain training's steps)."""
    recipe = info.recipe or "recipe not recorded"
    method = info.method
    if method == "augmix":
        if info.augmix_published:
            return f"{recipe}: AugMix's published protocol"
        return f"{recipe}: shared schedule (not AugMix's published protocol)"
    if method in DATA_READING_METHODS:
        reading = info.data_reading
        text = f"{recipe}; data reading: {reading or 'not recorded'}"
        if reading == "enlarged_dataset":
            budget = info.step_budget
            text += (
                "; plain training's steps per epoch (step_budget = as_plain)"
                if budget == AS_PLAIN_STEPS
                else "; every item each epoch (more steps than plain)"
                if budget
                else "; step budget not recorded (every item each epoch)"
            )
        return text
    return recipe


def run_table(records: list[RunRecord], df: pd.DataFrame) -> pd.DataFrame:
    """One row per run: accuracies, mCE figures and 95 % bootstrap intervals from its summary, how
    it was trained (``training``, :func:`training_protocol`) and its training compute
    (``optimizer_steps``, ``images_seen`` with every view counted; NaN when not recorded)."""
    frame = compare.run_frame(df).set_index("run_id")
    frame = frame.join(normalized_figures(df))
    frame["training"] = ""
    for r in records:
        frame.loc[r.run_id, "training"] = training_protocol(r.info)
        compute = r.compute()
        frame.loc[r.run_id, "optimizer_steps"] = compute["steps"]
        frame.loc[r.run_id, "images_seen"] = compute["images"]
        boot = r.summary.get("bootstrap_95") or {}
        for key in ("clean_acc", "mean_acc_15"):
            ci = boot.get(key) or {}
            frame.loc[r.run_id, f"{key}_low"] = ci.get("low", np.nan)
            frame.loc[r.run_id, f"{key}_high"] = ci.get("high", np.nan)
    order = {lab: i for i, lab in enumerate(compare.label_order(frame["label"]))}
    frame = frame.assign(_o=frame["label"].map(order)).sort_values(["arch", "_o", "seed"]).drop(columns="_o")
    return frame.reset_index()


def method_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (method label, architecture): clean, mean_acc_15/19, mCE, normalized and relative mCE,
    seeds, the fewest corruptions that entered each seed's mean (``*_n`` columns), how its runs
    were trained (``training``: the distinct :func:`training_protocol` texts, ``" | "``-joined),
    their mean ``optimizer_steps`` and ``images_seen``, and the spread of each ratio's
    per-corruption values over the seeds' runs (``<ratio>_min``: the smallest of any seed,
    ``_median``: the mean of the seeds' medians, ``_max``: the largest)."""
    values = ["clean_acc", "mean_acc_15", "mean_acc_19", "mce", "mce_norm", "mce_rel"]
    table = aggregate_seeds(runs, values)
    g = runs.groupby(["label", "arch"], sort=False)
    extra = pd.concat(
        {
            "seeds": g["seed"].apply(lambda s: ",".join(map(str, sorted(s)))),
            **(
                {"training": g["training"].apply(lambda s: " | ".join(sorted(set(s))))}
                if "training" in runs.columns
                else {}
            ),
            **{
                k: g[k].min()
                for k in ("n_corruptions_15", "n_corruptions_19", "mce_norm_n", "mce_rel_n")
                if k in runs.columns
            },
            **{k: g[k].mean() for k in ("optimizer_steps", "images_seen") if k in runs.columns},
            **{
                f"{name}_{q}": getattr(g[f"{name}_{q}"], agg)()
                for name, _ in RATIOS
                for q, agg in zip(SPREAD, ("min", "mean", "max"), strict=True)
                if f"{name}_{q}" in runs.columns
            },
            **{
                k: g[k].apply(lambda s: ";".join(sorted({c for v in s if v for c in str(v).split(";")})))
                for k in ("mce_norm_unstable", "mce_rel_unstable")
                if k in runs.columns
            },
        },
        axis=1,
    )
    table = table.merge(extra.reset_index(), on=["label", "arch"])
    order = {lab: i for i, lab in enumerate(compare.label_order(table["label"]))}
    table = table.assign(_o=table["label"].map(order)).sort_values(["arch", "_o"]).drop(columns="_o")
    return table.reset_index(drop=True)


# AugMix's published numbers (Hendrycks et al., ICLR 2020; RobustBench's CIFAR-100-C leaderboard
# entry of the WRN-40-2 AugMix model): clean accuracy and mean accuracy over the 15 benchmark
# corruptions x 5 severities. Shown only beside runs of the augmix_published recipe of that
# (dataset, architecture): a shared-schedule AugMix is never put next to them.
PUBLISHED_AUGMIX = {("cifar100", "wrn40_2"): {"clean_acc": 0.7628, "mean_acc_15": 0.6411}}
PUBLISHED_AUGMIX_SOURCE = "AugMix (Hendrycks et al., ICLR 2020), WRN-40-2, as listed by RobustBench"


def published_anchor_table(methods: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Rows of ``methods`` labelled ``augmix[published protocol]`` whose (dataset, architecture) has
    published AugMix numbers, with those numbers and the measured minus published difference
    (points). The corruption difference needs all 15 benchmark corruptions (the published figure
    averages them all): with fewer it is NaN. Empty when there is no such run; no other method ever
    gets a row."""
    rows = []
    for _, r in methods.iterrows():
        published = PUBLISHED_AUGMIX.get((str(dataset), str(r["arch"])))
        if r["label"] != AUGMIX_PUBLISHED_LABEL or published is None:
            continue
        n15 = int(r.get("n_corruptions_15", len(BENCHMARK_15)))
        row = {"label": r["label"], "arch": r["arch"], "n_seeds": int(r["n_seeds"]), "n_corruptions_15": n15}
        for key, value in published.items():
            row[f"{key}_mean"] = r[f"{key}_mean"]
            row[f"{key}_std"] = r[f"{key}_std"]
            row[f"published_{key}"] = value
            complete = key == "clean_acc" or n15 >= len(BENCHMARK_15)
            row[f"delta_{key}_pts"] = 100 * (r[f"{key}_mean"] - value) if complete else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def corruption_table(df: pd.DataFrame) -> pd.DataFrame:
    """acc[c] per (label, arch), averaged over seeds; columns in catalog order."""
    wide = acc.corruption_accuracy(df)
    ident = df.drop_duplicates("run_id").set_index("run_id")[["label", "arch"]]
    out = wide.join(ident).groupby(["label", "arch"]).mean()
    return _in_label_order(out.reset_index())


def severity_table(df: pd.DataFrame, corruptions=BENCHMARK_15) -> pd.DataFrame:
    """Mean accuracy over the corruptions at each severity (clean as severity 0), per (label, arch)."""
    curve = acc.severity_curve(df, corruptions)
    curve.insert(0, 0, acc.clean_accuracy(df))
    ident = df.drop_duplicates("run_id").set_index("run_id")[["label", "arch"]]
    out = curve.join(ident).groupby(["label", "arch"]).mean()
    out.columns = [f"s{c}" if c else "clean" for c in out.columns]
    return _in_label_order(out.reset_index())


def _in_label_order(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows by architecture, then in the report's method order (plain first), as in every table."""
    order = {lab: i for i, lab in enumerate(compare.label_order(frame["label"]))}
    frame = frame.assign(_o=frame["label"].map(order)).sort_values(["arch", "_o"], kind="stable")
    return frame.drop(columns="_o").reset_index(drop=True)


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


OVER_SEEDS = "over seeds"  # the significance tables' row of the test over seeds
# The two kinds of test never share a Holm family (docs/metrics.md, "Test families"): per-seed tests
# measure the evaluation noise of one trained pair, seed-level tests the method effect.
PER_SEED = "per seed"
SEED_LEVEL = "over seeds"


def family_name(kind: str, label: str, arch: str, reference: str = PLAIN) -> str:
    """The name of a Holm family of a paired-test table: one method vs its reference (plain, or the
    base method of an ablation) on one architecture, per-seed tests (clean and mean-15 of every seed)
    or seed-level tests (clean and mean-15)."""
    tests = "clean and mean-15 of each seed" if kind == PER_SEED else "clean and mean-15"
    return f"{kind}: {label} vs {reference} ({arch}), {tests}"


def _seed_row(m: RunRecord, p: RunRecord) -> dict | None:
    """Paired tests of one seed's method run against the reference run (plain, or an ablation's base
    method) of the same seed."""
    cm, cp = m.per_image().get((CLEAN, 0)), p.per_image().get((CLEAN, 0))
    if cm is None or cp is None or len(cm) != len(cp):
        return None  # no per-image results, or different test images: no paired test
    dc = paired_bootstrap(cm.astype(np.float64), cp.astype(np.float64))
    mc = mcnemar(cm, cp)
    row = {
        "seeds": str(m.seed),
        "n_seeds": 1,
        "n_images": len(cm),
        "clean_b": mc["b"],  # clean test images only the method gets right
        "clean_c": mc["c"],  # only the reference gets right
        "bootstrap_resamples": BOOTSTRAP_SAMPLES,
        "interval": "95 % bootstrap percentile, unadjusted",
        "delta_clean_pts": 100 * dc["delta"],
        "clean_low_pts": 100 * dc["low"],
        "clean_high_pts": 100 * dc["high"],
        "clean_p_bootstrap": dc["p_value"],
        "clean_p_mcnemar": mc["p_value"],
        "clean_test": "McNemar (exact)",
        "clean_p": mc["p_value"],
    }
    sm, sp = _bench_scores(m), _bench_scores(p)
    if sm is not None and sp is not None and len(sm) == len(sp):
        d = paired_bootstrap(sm, sp)
        row.update(
            {
                "delta_mean15_pts": 100 * d["delta"],
                "mean15_low_pts": 100 * d["low"],
                "mean15_high_pts": 100 * d["high"],
                "mean15_p_bootstrap": d["p_value"],
                "mean15_se_pts": 100 * d["se"],
                "mean15_test": "paired bootstrap (z)",
                "mean15_p": d["p_value_z"],
            }
        )
    return row


def _over_seeds_row(seed_rows: list[dict]) -> dict:
    """A t-test over seeds of the per-seed differences (the seed is the unit of replication)."""
    row: dict = {
        "seeds": ",".join(r["seeds"] for r in seed_rows),
        "n_seeds": len(seed_rows),
        "interval": "none (± = std over seeds)",
    }
    for key, col in (("clean", "delta_clean_pts"), ("mean15", "delta_mean15_pts")):
        vals = [r[col] for r in seed_rows if col in r]
        if len(vals) < 2:
            continue
        t = seed_test(vals)
        row.update(
            {
                col: t["delta"],
                f"{key}_std_pts": t["std"],
                f"{key}_test": f"t over {t['n']} seeds",
                f"{key}_p": t["p_value"],
            }
        )
    return row


def significance_table(records: list[RunRecord]) -> pd.DataFrame:
    """Each method vs plain of the same architecture on the same test images, per seed and over seeds.

    Per matched seed: McNemar's exact test on the clean set and paired bootstraps over test images
    (clean, and the per-image mean over the benchmark corruptions) -- seeds are never concatenated,
    since test-image resampling measures evaluation noise only. With >= 2 matched seeds a row
    ``seed = "over seeds"`` tests the per-seed differences with a t-test. Holm's correction runs
    within named families (``family``, ``family_size``): per (method, architecture), the per-seed tests
    (``clean_p`` and ``mean15_p`` of every seed row) are one family and the seed-level tests (the two
    of the row "over seeds") another, so adding a method never moves another method's adjusted p-values
    and the seed-level family is exactly the claim's; ``*_significant`` is true only where
    the adjusted p-value is <= 0.05, while the intervals stay unadjusted (``interval`` says so).
    Each seed row carries what recomputes its p-values: ``n_images``, McNemar's discordant counts
    ``clean_b`` (images only the method gets right) and ``clean_c`` (only plain), the number of
    ``bootstrap_resamples`` and the bootstrap standard error ``mean15_se_pts``
    (``mean15_p`` = 2 (1 - Φ(|Δ| / se))).
    """
    labels = sorted({r.label for r in records} - {PLAIN})
    table = paired_tests(records, [(label, PLAIN) for label in labels])
    return table.drop(columns=["reference"], errors="ignore")


def ablation_pairs(records: list[RunRecord]) -> list[tuple[str, str]]:
    """(variant, base) for every ablation run among ``records`` whose base method was run too: an
    ablation switches off one part of a method through its ``variant`` option (``auxiliary`` with
    ``variant = "no_penalty"``, labelled ``auxiliary[no_penalty]``). Other bracketed labels (a data
    reading, a step budget, a published protocol) change more than one part and are not paired."""
    labels = {r.label for r in records}
    pairs = set()
    for r in records:
        info = r.info
        if info.variant is not None and r.label == f"{info.method}[{info.variant}]" and info.method in labels:
            pairs.add((r.label, info.method))
    return sorted(pairs)


def ablation_table(records: list[RunRecord]) -> pd.DataFrame:
    """Each ablation variant vs its base method (``auxiliary[no_penalty]`` vs ``auxiliary``), with the
    tests, columns and Holm families of :func:`significance_table` plus the ``reference`` column."""
    return paired_tests(records, ablation_pairs(records))


def paired_tests(records: list[RunRecord], pairs: list[tuple[str, str]]) -> pd.DataFrame:
    """The paired per-seed and over-seed tests of each (method, reference) pair on every architecture
    both were run on (see :func:`significance_table`); one Holm family per pair, architecture and kind."""
    by_key = {(r.label, r.arch, r.seed): r for r in records}
    rows = []
    for label, reference in pairs:
        for arch in sorted({r.arch for r in records if r.label == label}):
            seeds = sorted(
                s for (lab, a, s) in by_key if lab == label and a == arch and (reference, arch, s) in by_key
            )
            seed_rows = []
            for s in seeds:
                row = _seed_row(by_key[(label, arch, s)], by_key[(reference, arch, s)])
                if row is not None:
                    seed_rows.append(
                        {"label": label, "reference": reference, "arch": arch, "seed": str(s), **row}
                    )
            rows.extend(seed_rows)
            if len(seed_rows) >= 2:
                over = _over_seeds_row(seed_rows)
                rows.append(
                    {"label": label, "reference": reference, "arch": arch, "seed": OVER_SEEDS, **over}
                )
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    for key in ("clean", "mean15"):
        if f"{key}_p" not in table.columns:
            table[f"{key}_p"] = np.nan
    table["clean_p_holm"] = np.nan
    table["mean15_p_holm"] = np.nan
    table["family"] = ""
    table["family_size"] = 0
    kind = np.where(table["seed"] == OVER_SEEDS, SEED_LEVEL, PER_SEED)
    groups = table.groupby([table["label"], table["reference"], table["arch"], kind]).groups
    for (label, reference, arch, k), idx in groups.items():
        rows = table.loc[idx]
        family = np.concatenate([rows["clean_p"].to_numpy(float), rows["mean15_p"].to_numpy(float)])
        adjusted = holm(family)
        table.loc[idx, "clean_p_holm"] = adjusted[: len(rows)]
        table.loc[idx, "mean15_p_holm"] = adjusted[len(rows) :]
        table.loc[idx, "family"] = family_name(k, label, arch, reference)
        table.loc[idx, "family_size"] = int(np.isfinite(family).sum())
    for key in ("clean", "mean15"):
        table[f"{key}_significant"] = table[f"{key}_p_holm"] <= ALPHA
    order = {lab: i for i, lab in enumerate(compare.label_order(table["label"]))}
    table = table.assign(
        _o=table["label"].map(order), _s=(table["seed"] == OVER_SEEDS).astype(int)
    ).sort_values(["arch", "_o", "reference", "_s"], kind="stable")
    return table.drop(columns=["_o", "_s"]).reset_index(drop=True)


def _column_blocks(column: str, severities) -> list[tuple[str, int]]:
    """The (corruption, severity) blocks behind an interference column (clean, corruption, category)."""
    if column in ("clean", "clean_acc"):
        return [(CLEAN, 0)]
    members = acc.CATEGORY_SETS.get(column, (column,))
    return [(c, s) for c in members for s in severities]


def _cell_p(pairs: list[tuple[RunRecord, RunRecord]], blocks: list[tuple[str, int]]) -> float:
    """p-value of one interference cell: "the difference is beyond test-image noise in every seed".

    Per paired seed, a paired z-test over test images (seeds are never pooled). Across seeds an
    intersection-union test: the largest per-seed p-value, and 1 when the seeds disagree in sign.
    """
    deltas, ps = [], []
    for m, p in pairs:
        bm, bp = m.per_image(), p.per_image()
        keys = [k for k in blocks if k in bm and k in bp]
        if not keys:
            continue
        sm, sp = per_image_score([bm[k] for k in keys]), per_image_score([bp[k] for k in keys])
        if len(sm) != len(sp):
            continue
        z = paired_z(sm, sp)
        deltas.append(z["delta"])
        ps.append(z["p_value"])
    if not ps:
        return float("nan")
    if len({np.sign(d) for d in deltas}) > 1:
        return 1.0
    return float(max(ps))


def interference_significance(records: list[RunRecord], mat: pd.DataFrame, arch: str) -> pd.DataFrame | None:
    """Holm-adjusted p-values for the cells of an interference matrix (same index and columns).

    ``mat`` is :func:`compare.interference_matrix`'s output for ``arch`` (index labels, or
    (label, severity) for the severity-resolved view). Each method's runs are paired with the
    plain run of the same seed and tested per seed (:func:`_cell_p`); the plain row stays NaN
    (untested). Holm runs over every tested cell of the matrix. ``None`` when no run pair has
    per-image results. With 2-3 seeds a t-test over seeds has too little power to survive a
    correction over hundreds of cells; it is reported for the summary figures (section 8).
    """
    runs = [r for r in records if r.arch == arch]
    plain = {r.seed: r for r in runs if r.label == PLAIN}
    if not plain or not all(p.per_image() for p in plain.values()):
        return None
    by_sev = isinstance(mat.index, pd.MultiIndex)
    severities = sorted({s for r in runs for (c, s) in r.per_image() if c != CLEAN})
    raw = pd.DataFrame(np.nan, index=mat.index, columns=mat.columns)
    for key in mat.index:
        label, sev = key if by_sev else (key, None)
        if label == PLAIN:
            continue
        pairs = [(r, plain[r.seed]) for r in runs if r.label == label and r.seed in plain and r.per_image()]
        if not pairs:
            continue
        for col in mat.columns:
            blocks = _column_blocks(col, [sev] if by_sev else severities)
            raw.loc[key, col] = _cell_p(pairs, blocks)
    if raw.isna().all().all():
        return None
    return pd.DataFrame(holm(raw.to_numpy().ravel()).reshape(raw.shape), index=raw.index, columns=raw.columns)
