"""The facts a page opens with, and the seen- vs unseen-corruption test.

:func:`method_summaries` turns the significance table into one summary per compared method (per
architecture): first what each seed shows with its own per-seed test ("2 of 2 seeds lose clean
accuracy, -7.0 and -4.5 points, each p < 0.001"), then the seed-level verdict (the method effect,
tested over seeds), then that test's power (the smallest difference it could detect with this many
seeds and this spread). The words follow the tests: a seed "loses" or "gains" by its sign, and only
the seed-level test speaks about the method.

:func:`seen_unseen_table` tests whether a method's change vs plain differs between the CIFAR-C
corruptions its training corruptions cover ("seen") and the rest ("unseen"): per seed a paired
z-test over test images, over seeds a t-test of the per-seed differences.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from robustbench_aux.catalog import ALL_19
from robustbench_aux.metrics import compare
from robustbench_aux.metrics.uncertainty import detectable_difference, paired_z, per_image_score, seed_test
from robustbench_aux.report.numbers import is_missing
from robustbench_aux.report.runs import RunRecord
from robustbench_aux.report.tables import ALPHA, OVER_SEEDS

PLAIN = compare.PLAIN
POWER = 0.8
LEVEL = 0.95
Z = float(stats.norm.ppf(0.5 + LEVEL / 2))

# what each tested difference is called in words
WHAT = {"clean": "clean accuracy", "mean15": "mean accuracy over the 15 corruptions"}
DELTA = {"clean": "delta_clean_pts", "mean15": "delta_mean15_pts"}
TEST = {"clean": "McNemar", "mean15": "paired bootstrap over test images"}


def p_text(p) -> str:
    """A p-value in words: ``p < 0.001`` or ``p = 0.03``."""
    if is_missing(p):
        return "no test"
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def _num(x: float) -> str:
    return f"{x:+.1f}".replace("-", "−")


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def seed_sentence(deltas: list[float], ps: list[float], what: str) -> str:
    """What the seeds show, each with its own test: "2 of 2 seeds lose clean accuracy, −7.0 and −4.5
    points, each p < 0.001", or, when the seeds disagree, each seed's sign, size and p."""
    n = len(deltas)
    signs = {int(np.sign(d)) for d in deltas}
    if len(signs) == 1 and 0 not in signs:
        verb = "lose" if signs == {-1} else "gain"
        if n == 1:
            verb += "s"
        sizes = _join([_num(d) for d in deltas])
        if all(not is_missing(p) and p < 0.001 for p in ps):
            tested = "each p < 0.001" if n > 1 else "p < 0.001"
        else:
            tested = _join([p_text(p) for p in ps]) + (" respectively" if n > 1 else "")
        return f"{n} of {n} seed{'s' if n != 1 else ''} {verb} {what}, {sizes} points, {tested}"
    parts = [f"{_num(d)} ({p_text(p)})" for d, p in zip(deltas, ps, strict=True)]
    return f"the {n} seeds disagree on {what}: {_join(parts)} points"


def seed_level(row: Mapping, key: str) -> dict:
    """The seed-level test of one difference from the significance table's row "over seeds": mean,
    95 % t interval, Holm-adjusted p, the verdict by the claim's rule, and its power."""
    n = int(row.get("n_seeds") or 0)
    delta, std = row.get(DELTA[key]), row.get(f"{key}_std_pts")
    p = row.get(f"{key}_p_holm")
    if n < 2 or is_missing(delta) or is_missing(std):
        return {"n": n, "verdict": "untested"}
    half = float(stats.t.ppf(0.5 + LEVEL / 2, n - 1)) * std / math.sqrt(n)
    low, high = delta - half, delta + half
    if is_missing(p) or p > ALPHA or low <= 0 <= high:
        verdict = compare.INCONCLUSIVE
    else:
        verdict = "significant loss" if delta < 0 else "significant gain"
    return {
        "n": n,
        "delta": float(delta),
        "std": float(std),
        "low": float(low),
        "high": float(high),
        "p_holm": float(p) if not is_missing(p) else math.nan,
        "verdict": verdict,
        "detectable": detectable_difference(float(std), n, ALPHA, POWER),
    }


def method_summaries(sig: pd.DataFrame) -> list[dict]:
    """One summary per (method, architecture) of the significance table, facts first.

    Each is ``{"label", "reference", "arch", "seeds": [sentence per tested difference], "verdict":
    [sentence per difference], "power": sentence or "", "kind": the mean-15 verdict}``; ``reference``
    is the table's ``reference`` column (an ablation's base method), plain where it has none.
    """
    out: list[dict] = []
    if sig is None or sig.empty:
        return out
    if "reference" not in sig.columns:  # the significance table: every method vs plain
        sig = sig.assign(reference=PLAIN)
    for (label, reference, arch), rows in sig.groupby(["label", "reference", "arch"], sort=False):
        per_seed = rows[rows["seed"] != OVER_SEEDS]
        over = rows[rows["seed"] == OVER_SEEDS]
        size = int(per_seed["family_size"].iloc[0]) if "family_size" in per_seed.columns else 0
        seeds, verdicts, power = [], [], []
        kind = compare.INCONCLUSIVE
        for key, what in WHAT.items():
            col = DELTA[key]
            if col not in per_seed.columns or per_seed[col].isna().all():
                continue
            tested = per_seed[per_seed[col].notna()]
            seeds.append(
                seed_sentence(list(tested[col]), list(tested[f"{key}_p_holm"]), what)
                + f" ({TEST[key]} per seed, Holm over the method's {size} per-seed tests)"
            )
            if over.empty:
                continue
            lv = seed_level(over.iloc[0], key)
            if lv["verdict"] == "untested":
                continue
            verdicts.append(
                f"{what}: {lv['verdict']} ({lv['delta']:+.2f} points, 95 % interval {lv['low']:+.2f} to "
                f"{lv['high']:+.2f}, t over {lv['n']} seeds, "
                + (
                    "no p: the seeds' differences are equal"
                    if is_missing(lv["p_holm"])
                    else f"Holm-adjusted {p_text(lv['p_holm'])} over the method's 2 seed-level tests"
                )
                + ")"
            )
            power.append(
                f"{lv['detectable']:.1f} points in {what} (sd of the per-seed differences {lv['std']:.2f})"
            )
            if key == "mean15":
                kind = lv["verdict"]
        n_seeds = len(per_seed)
        power_text = (
            f"With {n_seeds} seeds and this spread, the seed-level t-test detects (80 % power, α = 0.05) "
            f"only differences of about {_join(power)} or larger."
            if power
            else ""
        )
        if over.empty:
            verdicts.append(
                "one seed: no seed-level test, so nothing is said about the method itself; the per-seed "
                "tests above measure the evaluation noise of this one trained pair only"
            )
            kind = "untested"
        out.append(
            {
                "label": label,
                "reference": reference,
                "arch": arch,
                "n_seeds": n_seeds,
                "seeds": seeds,
                "verdict": verdicts,
                "power": power_text,
                "kind": kind,
            }
        )
    # the claim's method first (auxiliary training, then its variants), then the report's order
    order = {lab: i for i, lab in enumerate(compare.label_order([o["label"] for o in out]))}
    first = {"auxiliary": 0}
    return sorted(
        out,
        key=lambda o: (
            first.get(o["label"], 1 if o["label"].startswith("auxiliary[") else 2),
            o["arch"],
            order[o["label"]],
        ),
    )


# ----------------------------------------------------------------------------- seen vs unseen
def _scores(r: RunRecord, corruptions) -> np.ndarray | None:
    blocks = [v for (c, _), v in sorted(r.per_image().items()) if c in corruptions]
    return per_image_score(blocks) if blocks else None


def _seed_seen_unseen(m: RunRecord, p: RunRecord, seen: list[str], unseen: list[str]) -> dict | None:
    """One seed: Δseen, Δunseen (points, from per-image scores) and their difference tested over test
    images (paired z on d_i = (r_seen − r_unseen) of the method minus that of plain)."""
    sm, um, sp, up = _scores(m, seen), _scores(m, unseen), _scores(p, seen), _scores(p, unseen)
    if any(x is None for x in (sm, um, sp, up)) or len({len(sm), len(um), len(sp), len(up)}) != 1:
        return None
    z = paired_z(sm - um, sp - up)
    return {
        "seen_delta_pts": 100 * float(np.mean(sm - sp)),
        "unseen_delta_pts": 100 * float(np.mean(um - up)),
        "diff_pts": 100 * z["delta"],
        "diff_low_pts": 100 * (z["delta"] - Z * z["se"]),
        "diff_high_pts": 100 * (z["delta"] + Z * z["se"]),
        "diff_p": z["p_value"],
        "test": "paired z over test images (1 seed: evaluation noise)",
        "n_images": z["n"],
    }


def seen_unseen_table(records: list[RunRecord], configs: Mapping[str, Mapping]) -> pd.DataFrame:
    """Per method trained on corruptions, architecture and paired seed: the change vs plain over its
    seen-family CIFAR-C corruptions and over the unseen ones (points), and the difference seen −
    unseen with a 95 % interval and a test; with two or more seeds a row "over seeds" (t interval and
    t-test of the per-seed differences: the method effect). Empty without per-image results."""
    by_key = {(r.label, r.arch, r.seed): r for r in records}
    rows = []
    for label, arch in sorted({(r.label, r.arch) for r in records}):
        if label == PLAIN:
            continue
        runs = [r for (lab, a, _), r in sorted(by_key.items()) if lab == label and a == arch]
        trained = compare.training_corruptions(configs.get(runs[0].run_id, {}))
        if not trained:
            continue
        present = {c for r in runs for (c, _) in r.per_image()}
        seen = [c for c in compare.seen_corruptions(trained) if c in present]
        unseen = [c for c in ALL_19 if c in present and c not in seen]
        if not seen or not unseen:
            continue
        start = len(rows)
        seed_rows = []
        for r in runs:
            plain = by_key.get((PLAIN, arch, r.seed))
            row = None if plain is None else _seed_seen_unseen(r, plain, seen, unseen)
            if row is not None:
                seed_rows.append({"label": label, "arch": arch, "seed": str(r.seed), **row})
        rows.extend(seed_rows)
        if len(seed_rows) >= 2:
            diffs = [s["diff_pts"] for s in seed_rows]
            t = seed_test(diffs)
            half = float(stats.t.ppf(0.5 + LEVEL / 2, t["n"] - 1)) * t["std"] / math.sqrt(t["n"])
            rows.append(
                {
                    "label": label,
                    "arch": arch,
                    "seed": OVER_SEEDS,
                    "seen_delta_pts": float(np.mean([s["seen_delta_pts"] for s in seed_rows])),
                    "unseen_delta_pts": float(np.mean([s["unseen_delta_pts"] for s in seed_rows])),
                    "diff_pts": t["delta"],
                    "diff_low_pts": t["delta"] - half,
                    "diff_high_pts": t["delta"] + half,
                    "diff_p": t["p_value"],
                    "test": f"t over {t['n']} seeds (the method effect)",
                    "n_images": seed_rows[0]["n_images"],
                }
            )
        for row in rows[start:]:
            row.update({"n_seen": len(seen), "n_unseen": len(unseen), "seen": ", ".join(seen)})
    return pd.DataFrame(rows)


def seen_unseen_sentence(table: pd.DataFrame, label: str, arch: str) -> str:
    """What the seen-vs-unseen test says, in words no stronger than the test."""
    rows = table[(table["label"] == label) & (table["arch"] == arch)]
    if rows.empty:
        return ""
    over = rows[rows["seed"] == OVER_SEEDS]
    r = over.iloc[0] if len(over) else rows.iloc[0]
    level = "over seeds" if len(over) else f"seed {r['seed']} only (evaluation noise)"
    evidence = (
        f"seen {r['seen_delta_pts']:+.2f} vs unseen {r['unseen_delta_pts']:+.2f} points; difference "
        f"{r['diff_pts']:+.2f}, 95 % interval {r['diff_low_pts']:+.2f} to {r['diff_high_pts']:+.2f}, "
        f"{p_text(r['diff_p'])}, {level}"
    )
    significant = (
        not is_missing(r["diff_p"])
        and r["diff_p"] <= ALPHA
        and not (r["diff_low_pts"] <= 0 <= r["diff_high_pts"])
    )
    if not significant:
        return f"{label} ({arch}): no difference between seen and unseen corruptions is shown ({evidence})."
    where = "seen" if r["diff_pts"] > 0 else "unseen"
    return (
        f"{label} ({arch}): the change vs plain is {abs(r['diff_pts']):.2f} points better on the {where} "
        f"corruptions than on the others ({evidence})."
    )
