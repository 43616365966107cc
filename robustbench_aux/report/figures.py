"""The report's figures, drawn with matplotlib and returned as inline SVG strings.

Text stays text in the SVG (``svg.fonttype = none``), so pages are small and searchable; the
figures need no files and no network. Accuracies are plotted in percent.

One :func:`method_styles` map (colour and marker per method label) is made per report and used by
every figure, so a method looks the same everywhere; legends sit outside the axes; figures are at
most :data:`MAX_WIDTH_IN` wide so that the page shows them at their drawn size (cell numbers stay
readable at 100 % zoom). Each legend entry carries an SVG id ``legend-<figure>-<method slug>``.
"""

from __future__ import annotations

import io
import re

import matplotlib

matplotlib.use("Agg")  # no display needed; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402

from robustbench_aux.catalog import ALL_19  # noqa: E402

STYLE = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.titleweight": "bold",
}
MARKERS = "osD^v<>PXh*pdH8"
# colour-blind-aware palette (Okabe-Ito first, then tab10 tones); plain training is always black
PLAIN_STYLE = ("#000000", "o")
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#D55E00",
    "#56B4E9",
    "#8C564B",
    "#7F7F7F",
    "#BCBD22",
    "#17BECF",
    "#9467BD",
    "#F0E442",
    "#117733",
    "#882255",
    "#44AA99",
    "#999933",
)
MAX_WIDTH_IN = 11.4  # 821 pt = 1094 px: fits the page's content column without scaling down


def method_styles(labels) -> dict[str, tuple[str, str]]:
    """(colour, marker) per method label, in the given order; plain is black circles."""
    styles, i = {}, 0
    for lab in labels:
        if lab == "plain":
            styles[lab] = PLAIN_STYLE
            continue
        styles[lab] = (PALETTE[i % len(PALETTE)], MARKERS[1:][i % (len(MARKERS) - 1)])
        i += 1
    return styles


def slug(label: str) -> str:
    """An id-safe form of a method label (``per_corruption[noise]`` -> ``per_corruption-noise``)."""
    return re.sub(r"[^A-Za-z0-9_]+", "-", label).strip("-") or "method"


def _tag_legend(legend, figure: str) -> None:
    for handle, text in zip(legend.legend_handles, legend.get_texts(), strict=True):
        handle.set_gid(f"legend-{figure}-{slug(text.get_text())}")


def to_svg(fig) -> str:
    """The figure as an ``<svg>`` element (XML prolog and DOCTYPE stripped), then closed."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _bottom_legend(fig, axes, figure: str, height_in: float) -> None:
    """Collect the handles of every panel (first occurrence wins) and put one legend below them."""
    seen: dict[str, object] = {}
    for ax in np.ravel(axes):
        for h, n in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(n, h)
    if not seen:
        return
    ncol = 5
    rows = (len(seen) - 1) // ncol + 1
    legend_in = 0.28 * rows + 0.25
    fig.tight_layout(rect=(0, legend_in / height_in, 1, 1))
    leg = fig.legend(
        list(seen.values()),
        list(seen),
        loc="lower center",
        ncol=min(ncol, len(seen)),
        frameon=False,
        bbox_to_anchor=(0.5, 0.0),
    )
    _tag_legend(leg, figure)


def tradeoff(
    methods: pd.DataFrame,
    labels: list[str],
    styles: dict | None = None,
    set_name: str = "15",
    overlay=None,
) -> str:
    """Clean (x) vs mean_acc_15 (y) per (method, architecture), seed std as error bars, arrows from plain.
    ``overlay(ax, arch)``, when given, draws more on each panel (the effective-robustness lines)."""
    archs = sorted(methods["arch"].unique())
    styles = styles or method_styles(labels)
    width = min(MAX_WIDTH_IN, 5.2 * len(archs) + 0.4)
    height = 4.4 + 0.28 * ((len(labels) - 1) // 5 + 1)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, len(archs), figsize=(width, height), squeeze=False)
        for ax, arch in zip(axes[0], archs, strict=True):
            sub = methods[methods["arch"] == arch].set_index("label")
            plain = sub.loc["plain"] if "plain" in sub.index else None
            for lab in labels:
                if lab not in sub.index:
                    continue
                color, marker = styles[lab]
                r = sub.loc[lab]
                x, y = 100 * r["clean_acc_mean"], 100 * r["mean_acc_15_mean"]
                xerr = 100 * np.nan_to_num(r["clean_acc_std"])
                yerr = 100 * np.nan_to_num(r["mean_acc_15_std"])
                if plain is not None and lab != "plain":
                    ax.annotate(
                        "",
                        xy=(x, y),
                        xytext=(100 * plain["clean_acc_mean"], 100 * plain["mean_acc_15_mean"]),
                        arrowprops={"arrowstyle": "->", "color": color, "alpha": 0.55, "lw": 1.2},
                    )
                ax.errorbar(
                    x,
                    y,
                    xerr=xerr,
                    yerr=yerr,
                    fmt=marker,
                    color=color,
                    markersize=8 if lab == "plain" else 7,
                    capsize=3,
                    label=lab,
                    markeredgecolor=color,
                )
            ax.margins(0.12)
            if overlay is not None:
                overlay(ax, arch)
            ax.set_title(arch)
            ax.set_xlabel("clean accuracy (%)")
            ax.set_ylabel(f"mean corruption accuracy, {set_name} corruptions (%)")
        _bottom_legend(fig, axes, "tradeoff", height)
        return to_svg(fig)


UNTESTED_GREY = "#ececec"  # a cell not shown to differ from plain (or not tested) is grey, not coloured


def _heatmap(
    ax, mat: pd.DataFrame, norm, annotate: bool = True, fontsize: float = 7.5, separators=(), significant=None
):
    """Annotated heat map; with ``significant`` (bool frame like ``mat``) only those cells are coloured."""
    data = mat.to_numpy(dtype=float)
    shown = data.copy()
    if significant is not None:
        shown[~significant.reindex(index=mat.index, columns=mat.columns).fillna(False).to_numpy(bool)] = (
            np.nan
        )
    cmap = plt.get_cmap("RdBu").with_extremes(bad=UNTESTED_GREY)
    im = ax.imshow(np.ma.masked_invalid(shown), cmap=cmap, norm=norm, aspect="auto")
    ax.set_xticks(
        range(mat.shape[1]), [str(c).replace("_", " ") for c in mat.columns], rotation=50, ha="right"
    )
    ax.set_yticks(range(mat.shape[0]), [str(i) for i in mat.index])
    ax.tick_params(labelbottom=True, labelsize=8.5)
    ax.grid(False)
    for j in separators:
        ax.axvline(j - 0.5, color="black", lw=1.2)
    if annotate:
        for (i, j), v in np.ndenumerate(data):
            if np.isfinite(v):
                strong = np.isfinite(shown[i, j]) and abs(v) > 0.6 * norm.vmax
                ax.text(
                    j,
                    i,
                    f"{v:+.1f}",
                    ha="center",
                    va="center",
                    fontsize=fontsize,
                    color="white" if strong else "black",
                )
    return im


def _norm(values: np.ndarray) -> TwoSlopeNorm:
    finite = values[np.isfinite(values)]
    vmax = max(float(np.abs(finite).max()) if finite.size else 1.0, 0.5)
    return TwoSlopeNorm(vcenter=0.0, vmin=-vmax, vmax=vmax)


def _separators(cols: list) -> list[int]:
    seps = [1] if cols and cols[0] == "clean" else []
    first_cat = next((j for j, c in enumerate(cols) if c not in ALL_19 and c != "clean"), None)
    if first_cat is not None:
        seps.append(first_cat)
    return seps


def interference(mat: pd.DataFrame, arch: str, significant: pd.DataFrame | None = None) -> str:
    """Heat map of Δaccuracy vs plain (points), averaged over severities; diverging, centred on 0.

    With ``significant`` only cells whose corrected test says so are coloured; the rest are grey.
    """
    with plt.rc_context(STYLE):
        height = 0.36 * mat.shape[0] + 2.6
        fig, ax = plt.subplots(figsize=(MAX_WIDTH_IN, height), layout="constrained")
        norm = _norm(mat.to_numpy(dtype=float))
        im = _heatmap(ax, mat, norm, separators=_separators(list(mat.columns)), significant=significant)
        ax.set_xlabel("evaluated on  (clean | CIFAR-C corruptions | category means)")
        ax.set_ylabel("trained with")
        ax.set_title(f"{arch}: accuracy change vs plain training (points, mean over severities 1-5)")
        fig.colorbar(im, ax=ax, fraction=0.025, pad=0.01, label="Δ accuracy (points)")
        return to_svg(fig)


def interference_by_severity(mat: pd.DataFrame, arch: str, significant: pd.DataFrame | None = None) -> str:
    """The severity-resolved matrix: one heat map per severity, shared colour scale, every panel
    with its own column labels."""
    severities = sorted(mat.index.get_level_values("severity").unique())
    with plt.rc_context(STYLE):
        labels = list(dict.fromkeys(mat.index.get_level_values("label")))
        panel = 0.36 * len(labels) + 1.9  # rows plus the rotated column labels under each panel
        fig, axes = plt.subplots(
            len(severities),
            1,
            figsize=(MAX_WIDTH_IN, panel * len(severities) + 0.6),
            squeeze=False,
            layout="constrained",
        )
        norm = _norm(mat.to_numpy(dtype=float))
        for ax, s in zip(axes[:, 0], severities, strict=True):
            sig = None if significant is None else significant.xs(s, level="severity")
            im = _heatmap(ax, mat.xs(s, level="severity").loc[labels], norm, significant=sig)
            ax.set_title(f"severity {s}", loc="left", fontsize=10)
        fig.suptitle(f"{arch}: accuracy change vs plain training by severity (points)", fontweight="bold")
        fig.colorbar(
            im, ax=axes[:, 0].tolist(), fraction=0.02, pad=0.01, label="Δ accuracy (points)", aspect=40
        )
        return to_svg(fig)


def severity_curves(
    sev: pd.DataFrame, labels: list[str], styles: dict | None = None, set_name: str = "15"
) -> str:
    """Accuracy vs severity (clean at 0), mean over the 15 corruptions, one panel per architecture."""
    archs = sorted(sev["arch"].unique())
    styles = styles or method_styles(labels)
    cols = [c for c in sev.columns if c == "clean" or c.startswith("s")]
    xs = [0 if c == "clean" else int(c[1:]) for c in cols]
    width = min(MAX_WIDTH_IN, 5.2 * len(archs) + 0.4)
    height = 4.0 + 0.28 * ((len(labels) - 1) // 5 + 1)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, len(archs), figsize=(width, height), squeeze=False, sharey=True)
        for ax, arch in zip(axes[0], archs, strict=True):
            sub = sev[sev["arch"] == arch].set_index("label")
            for lab in labels:
                if lab in sub.index:
                    color, marker = styles[lab]
                    ax.plot(
                        xs,
                        100 * sub.loc[lab, cols].to_numpy(float),
                        marker=marker,
                        color=color,
                        label=lab,
                        lw=2 if lab == "plain" else 1.4,
                    )
            ax.set_xticks(xs, ["clean" if x == 0 else str(x) for x in xs])
            ax.set_xlabel("corruption severity")
            ax.set_ylabel(f"accuracy (%), mean over {set_name} corruptions")
            ax.set_title(arch)
        _bottom_legend(fig, axes, "severity", height)
        return to_svg(fig)


def corruption_bars(
    table: pd.DataFrame, labels: list[str], corruptions: list[str], styles: dict | None = None
) -> str:
    """Grouped bars: accuracy per corruption (mean over severities) for the given labels, per architecture."""
    archs = sorted(table["arch"].unique())
    styles = styles or method_styles(labels)
    width = 0.8 / max(len(labels), 1)
    height = 3.4 * len(archs) + 1.3 + 0.28 * ((len(labels) - 1) // 5 + 1)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(len(archs), 1, figsize=(MAX_WIDTH_IN, height), squeeze=False, sharex=True)
        x = np.arange(len(corruptions))
        for ax, arch in zip(axes[:, 0], archs, strict=True):
            sub = table[table["arch"] == arch].set_index("label")
            for i, lab in enumerate(labels):
                if lab in sub.index:
                    ax.bar(
                        x + (i - (len(labels) - 1) / 2) * width,
                        100 * sub.loc[lab, corruptions].to_numpy(float),
                        width,
                        color=styles[lab][0],
                        label=lab,
                    )
            ax.set_ylabel("accuracy (%)")
            ax.set_title(f"{arch}: accuracy per corruption (mean over severities)", loc="left")
            ax.grid(axis="x", visible=False)
            ax.set_xlim(-0.6, len(corruptions) - 0.4)
        axes[-1][0].set_xticks(x, [c.replace("_", " ") for c in corruptions], rotation=45, ha="right")
        _bottom_legend(fig, axes, "bars", height)
        return to_svg(fig)
