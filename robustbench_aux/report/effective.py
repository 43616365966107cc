"""The report's effective robustness: each method's mean corrupted accuracy against a line in logit
space (docs/metrics.md#effective-robustness).

Two lines, named wherever a number uses one:

- **the RobustBench line**, fitted to the shipped published (clean, mean corruption accuracy over
  the 15) pairs of the report's dataset (``robustbench_aux/reference/``; single-pass entries
  without extra data);
- **this report's line**, fitted to the report's own (method, architecture) seed means when there
  are at least :data:`MIN_OWN_MODELS` of them.

``effective_robustness.csv``: per (method, architecture) the seed means of clean accuracy and
mean_acc_15, each line's prediction, and the effective robustness (points) as mean, std and a 95 %
t interval over seeds (none with one seed), with whether the method's mean clean accuracy lies
inside the line's clean-accuracy range; ``effective_runs.csv`` the same per run. ``effective_lines.csv``: each line's a,
b, models and range. The page says plainly
when runs are outside the RobustBench line's range (an extrapolation) and when CIFAR-C was
generated rather than published (the line's points are on the published files).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from robustbench_aux.catalog import BENCHMARK_15
from robustbench_aux.infra import atomic
from robustbench_aux.infra.paths import inside
from robustbench_aux.metrics import compare
from robustbench_aux.metrics.effective import (
    MIN_OWN_MODELS,
    SOURCE,
    LogitLine,
    effective_robustness,
    fit_logit_line,
    reference_line,
)
from robustbench_aux.report.csvcells import to_csv
from robustbench_aux.report.formatting import spec_rows

LEVEL = 0.95
OWN = "own"
REFERENCE = "robustbench"


def own_line(runs: pd.DataFrame) -> LogitLine | None:
    """The line fitted to the seed means of the (label, arch) models of ``runs`` (from
    :func:`compare.run_frame`), or None with fewer than :data:`MIN_OWN_MODELS` of them."""
    means = runs.groupby(["label", "arch"])[["clean_acc", "mean_acc_15"]].mean().dropna()
    if len(means) < MIN_OWN_MODELS or means["clean_acc"].nunique() < 2:
        return None
    return fit_logit_line(
        means["clean_acc"],
        means["mean_acc_15"],
        name="this report's runs",
        models=f"{len(means)} (method, architecture) seed means of this report",
    )


def _interval(values: np.ndarray) -> tuple[float, float, float, float, str]:
    v = values[np.isfinite(values)]
    n = len(v)
    mean = float(v.mean()) if n else math.nan
    if n < 2:
        return mean, math.nan, math.nan, math.nan, "none (1 seed)" if n == 1 else "none"
    sd = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + LEVEL / 2, n - 1)) * sd / math.sqrt(n)
    return mean, sd, mean - half, mean + half, f"t over {n} seeds"


def effective_table(runs: pd.DataFrame, lines: dict[str, LogitLine]) -> pd.DataFrame:
    """Per (label, arch): seeds, clean_acc / mean_acc_15 seed means, and per line k in ``lines``
    ``pred_<k>`` (the line's accuracy at the mean clean accuracy), ``er_<k>_pts`` (mean over seeds
    of the runs' effective robustness), ``_std``, ``_low``, ``_high``, ``interval_<k>``,
    ``in_range_<k>`` (the mean clean accuracy inside the line's range; ``effective_runs.csv`` says
    it per run)."""
    rows = []
    for (label, arch), g in runs.groupby(["label", "arch"], sort=False):
        row: dict = {
            "label": label,
            "arch": arch,
            "n_seeds": len(g),
            "clean_acc": float(g["clean_acc"].mean()),
            "mean_acc_15": float(g["mean_acc_15"].mean()),
        }
        for key, line in lines.items():
            er = effective_robustness(g["clean_acc"], g["mean_acc_15"], line)
            mean, sd, lo, hi, how = _interval(er)
            row.update(
                {
                    f"pred_{key}": float(line.predict(row["clean_acc"])),
                    f"er_{key}_pts": mean,
                    f"er_{key}_pts_std": sd,
                    f"er_{key}_pts_low": lo,
                    f"er_{key}_pts_high": hi,
                    f"interval_{key}": how,
                    # judged at the method's point (its mean clean accuracy), as plotted
                    f"in_range_{key}": bool(line.in_range(row["clean_acc"])),
                }
            )
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    order = {lab: i for i, lab in enumerate(compare.label_order(table["label"]))}
    table = table.assign(_o=table["label"].map(order)).sort_values(["arch", "_o"], kind="stable")
    return table.drop(columns="_o").reset_index(drop=True)


def overlay(lines: dict[str, LogitLine]):
    """A function drawing the lines on one trade-off panel (``figures.tradeoff(overlay=...)``): over
    the panel's clean-accuracy range, solid inside a line's fitted range and dotted outside it."""

    def draw(ax, arch) -> None:
        lo, hi = ax.get_xlim()
        y0, y1 = ax.get_ylim()
        x = np.linspace(max(lo, 0.5), min(hi, 99.5), 200)
        style = {REFERENCE: ("#777777", "-"), OWN: ("#444444", "-.")}
        for key, line in lines.items():
            color, ls = style.get(key, ("#777777", "--"))
            y = 100 * line.predict(x / 100)
            inside_range = line.in_range(x / 100)
            name = "RobustBench line" if key == REFERENCE else "this report's line"
            outside = ~inside_range
            label = f"{name} (logit fit; dotted where extrapolated)"
            ax.plot(np.where(inside_range, x, np.nan), y, color=color, ls=ls, lw=1.3, label=label)
            if outside.any():  # one legend entry per line: the dotted part is named in its label
                ax.plot(np.where(outside, x, np.nan), y, color=color, ls=":", lw=1.3, label="_nolegend_")
            y0, y1 = min(y0, float(np.nanmin(y))), max(y1, float(np.nanmax(y)))
        ax.set_xlim(lo, hi)
        ax.set_ylim(y0, y1)

    return draw


def effective_section(
    runs: pd.DataFrame, dataset: str, provenance: str, n15: int, out_dir: Path, written: list[str]
) -> dict:
    """Write ``effective_robustness.csv`` / ``effective_lines.csv`` and return the template context
    (``lines``: the lines drawn on the trade-off plot, for :func:`overlay`)."""
    lines: dict[str, LogitLine] = {}
    if n15 == 0:  # no benchmark corruption evaluated: nothing to set against a line
        return {
            "lines": lines,
            "table": None,
            "notes": ["No benchmark corruption was evaluated: effective robustness needs mean_acc_15."],
        }
    ref = reference_line(dataset) if dataset in ("cifar10", "cifar100") else None
    if ref is not None:
        lines[REFERENCE] = ref
    own = own_line(runs)
    if own is not None:
        lines[OWN] = own
    n_models = int(runs.groupby(["label", "arch"]).ngroups)
    context: dict = {
        "lines": lines,
        "source": SOURCE,
        "dataset": dataset,
        "n_models": n_models,
        "min_own": MIN_OWN_MODELS,
        "generated": provenance != "published",
        "partial": n15 < len(BENCHMARK_15),
        "n15": n15,
        "table": None,
        "notes": [],
    }
    if not lines:
        context["notes"].append(
            f"No reference line for {dataset}: the shipped leaderboards are CIFAR-10 and CIFAR-100, and "
            f"this report has {n_models} distinct models (a line of its own needs {MIN_OWN_MODELS})."
        )
        return context
    table = effective_table(runs, lines)
    atomic.write_text(
        inside(out_dir, "effective_robustness.csv"), to_csv(table, index=False, float_format="%.6f")
    )
    atomic.write_text(
        inside(out_dir, "effective_lines.csv"),
        to_csv(
            pd.DataFrame([{"key": k, **line.as_row()} for k, line in lines.items()]),
            index=False,
            float_format="%.6f",
        ),
    )
    per_run = runs[["run_id", "label", "arch", "seed", "clean_acc", "mean_acc_15"]].copy()
    for key, line in lines.items():
        per_run[f"pred_{key}"] = line.predict(per_run["clean_acc"])
        per_run[f"er_{key}_pts"] = effective_robustness(per_run["clean_acc"], per_run["mean_acc_15"], line)
        per_run[f"in_range_{key}"] = line.in_range(per_run["clean_acc"])
    atomic.write_text(
        inside(out_dir, "effective_runs.csv"), to_csv(per_run, index=False, float_format="%.6f")
    )
    written += ["effective_robustness.csv", "effective_lines.csv", "effective_runs.csv"]
    notes = context["notes"]
    if ref is not None:
        outside = table[~table[f"in_range_{REFERENCE}"]]
        if not outside.empty:
            notes.append(
                f"Outside the RobustBench line's range: its models' clean accuracies span "
                f"{100 * ref.clean_min:.1f}–{100 * ref.clean_max:.1f} %, and "
                f"{', '.join(f'{r.label} ({r.arch}, {100 * r.clean_acc:.1f} %)' for r in outside.itertuples())} "
                "lie outside it: their effective robustness against this line is an extrapolation, read it "
                "with that caveat."
            )
        if context["generated"]:
            notes.append(
                "These runs were evaluated on generated CIFAR-C, the RobustBench points on the published "
                "CIFAR-10-C / CIFAR-100-C files: the two are not the same images, so a distance from the line "
                "mixes the method's effect with the difference between the corruption files."
            )
    else:
        notes.append(
            f"No RobustBench line for {dataset} (the shipped leaderboards are CIFAR-10 and CIFAR-100)."
        )
    if context["partial"]:
        notes.append(
            f"Only {n15} of the 15 benchmark corruptions were evaluated: the runs' corrupted accuracy is a mean "
            "over those, the line's over all 15; the comparison is not like for like."
        )
    if own is None:
        notes.append(
            f"No line of this report's own: it has {n_models} distinct (method, architecture) models, "
            f"a line needs {MIN_OWN_MODELS}."
        )
    spec = [
        ("method", lambda r: (r["label"], "label")),
        ("architecture", lambda r: r["arch"]),
        ("seeds", lambda r: int(r["n_seeds"])),
        ("clean acc. (%)", lambda r: f"{100 * r['clean_acc']:.2f}"),
        (f"mean acc. {n15 if n15 < 15 else 15} (%)", lambda r: f"{100 * r['mean_acc_15']:.2f}"),
    ]
    for key in lines:
        name = "RobustBench line" if key == REFERENCE else "this report's line"
        spec += [
            (f"{name}: predicted (%)", (lambda k: lambda r: f"{100 * r[f'pred_{k}']:.2f}")(key)),
            (
                f"effective robustness vs {name} (points) [95 % interval]",
                (lambda k: lambda r: _er_cell(r, k))(key),
            ),
        ]
    context["table"] = spec_rows(table, spec)
    context["line_rows"] = [
        {
            "name": line.name,
            "equation": f"logit(acc_C) = {line.a:.3f} · logit(acc_clean) {'+' if line.b >= 0 else '−'} {abs(line.b):.3f}",
            "models": line.models,
            "range": f"{100 * line.clean_min:.1f}–{100 * line.clean_max:.1f} %",
            "sd": "–" if not np.isfinite(line.residual_sd) else f"{line.residual_sd:.3f}",
        }
        for line in lines.values()
    ]
    return context


def _er_cell(r, key: str):
    mean, lo, hi = r[f"er_{key}_pts"], r[f"er_{key}_pts_low"], r[f"er_{key}_pts_high"]
    if not np.isfinite(mean):
        return "–"
    text = f"{mean:+.2f}" + (f" [{lo:+.2f}, {hi:+.2f}]" if np.isfinite(lo) else f" ({r[f'interval_{key}']})")
    if not r[f"in_range_{key}"]:
        text += " (extrapolated)"
        return text, "partial", "outside the line's clean-accuracy range: an extrapolation"
    return text
