"""The report's figures, drawn with matplotlib and returned as inline SVG strings.

Text stays text in the SVG (``svg.fonttype = none``), so pages are small and searchable; the
figures need no files and no network. Accuracies are plotted in percent.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display needed; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402

from robustbench_aux.corruptions.catalog import ALL_19  # noqa: E402

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
MARKERS = "osD^v<>PXh*p"


def to_svg(fig) -> str:
    """The figure as an ``<svg>`` element (XML prolog and DOCTYPE stripped), then closed."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _colors(labels) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10")
    return {lab: cmap(i % 10) for i, lab in enumerate(labels)}


def tradeoff(methods: pd.DataFrame, labels: list[str]) -> str:
    """Clean (x) vs mean_acc_15 (y) per (method, architecture), seed std as error bars, arrows from plain."""
    archs = sorted(methods["arch"].unique())
    colors = _colors(labels)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, len(archs), figsize=(5.2 * len(archs), 4.4), squeeze=False)
        for ax, arch in zip(axes[0], archs, strict=True):
            sub = methods[methods["arch"] == arch].set_index("label")
            plain = sub.loc["plain"] if "plain" in sub.index else None
            for i, lab in enumerate(labels):
                if lab not in sub.index:
                    continue
                r = sub.loc[lab]
                x, y = 100 * r["clean_acc_mean"], 100 * r["mean_acc_15_mean"]
                xerr = 100 * np.nan_to_num(r["clean_acc_std"])
                yerr = 100 * np.nan_to_num(r["mean_acc_15_std"])
                if plain is not None and lab != "plain":
                    ax.annotate(
                        "",
                        xy=(x, y),
                        xytext=(100 * plain["clean_acc_mean"], 100 * plain["mean_acc_15_mean"]),
                        arrowprops={"arrowstyle": "->", "color": colors[lab], "alpha": 0.55, "lw": 1.2},
                    )
                ax.errorbar(
                    x,
                    y,
                    xerr=xerr,
                    yerr=yerr,
                    fmt=MARKERS[i % len(MARKERS)],
                    color=colors[lab],
                    markersize=8 if lab == "plain" else 6.5,
                    capsize=3,
                    label=lab,
                    markeredgecolor="black" if lab == "plain" else colors[lab],
                )
            ax.set_title(arch)
            ax.set_xlabel("clean accuracy (%)")
            ax.set_ylabel("mean corruption accuracy, 15 corruptions (%)")
        handles, names = axes[0][0].get_legend_handles_labels()
        fig.legend(
            handles,
            names,
            loc="lower center",
            ncol=min(5, len(names)),
            frameon=False,
            bbox_to_anchor=(0.5, -0.02 - 0.045 * ((len(names) - 1) // 5)),
        )
        fig.tight_layout(rect=(0, 0.08 + 0.04 * ((len(names) - 1) // 5), 1, 1))
        return to_svg(fig)


def _heatmap(ax, mat: pd.DataFrame, norm, annotate: bool = True, fontsize: float = 7.5, separators=()):
    data = mat.to_numpy(dtype=float)
    im = ax.imshow(np.ma.masked_invalid(data), cmap="RdBu", norm=norm, aspect="auto")
    ax.set_xticks(range(mat.shape[1]), [str(c) for c in mat.columns], rotation=55, ha="right")
    ax.set_yticks(range(mat.shape[0]), [str(i) for i in mat.index])
    ax.grid(False)
    for j in separators:
        ax.axvline(j - 0.5, color="black", lw=1.2)
    if annotate:
        for (i, j), v in np.ndenumerate(data):
            if np.isfinite(v):
                strong = abs(v) > 0.6 * norm.vmax
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


def interference(mat: pd.DataFrame, arch: str) -> str:
    """Heat map of Δaccuracy vs plain (points), averaged over severities; diverging, centred on 0."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(max(8.0, 0.55 * mat.shape[1] + 3), 0.45 * mat.shape[0] + 2.2))
        norm = _norm(mat.to_numpy(dtype=float))
        cols = list(mat.columns)
        seps = [1] if cols and cols[0] == "clean" else []
        first_cat = next((j for j, c in enumerate(cols) if c not in ALL_19 and c != "clean"), None)
        if first_cat is not None:
            seps.append(first_cat)
        im = _heatmap(ax, mat, norm, separators=seps)
        ax.set_xlabel("evaluated on  (clean | CIFAR-C corruptions | category means)")
        ax.set_ylabel("trained with")
        ax.set_title(f"{arch}: accuracy change vs plain training (points, mean over severities 1-5)")
        fig.colorbar(im, ax=ax, fraction=0.025, pad=0.01, label="Δ accuracy (points)")
        return to_svg(fig)


def interference_by_severity(mat: pd.DataFrame, arch: str) -> str:
    """The severity-resolved matrix: one heat map per severity, shared colour scale."""
    severities = sorted(mat.index.get_level_values("severity").unique())
    with plt.rc_context(STYLE):
        labels = list(dict.fromkeys(mat.index.get_level_values("label")))
        size = (max(8.0, 0.5 * mat.shape[1] + 3), (0.3 * len(labels) + 0.6) * len(severities) + 1.5)
        fig, axes = plt.subplots(
            len(severities), 1, figsize=size, sharex=True, squeeze=False, layout="constrained"
        )
        norm = _norm(mat.to_numpy(dtype=float))
        for ax, s in zip(axes[:, 0], severities, strict=True):
            im = _heatmap(ax, mat.xs(s, level="severity").loc[labels], norm, fontsize=6.5)
            ax.set_title(f"severity {s}", loc="left", fontsize=10)
        fig.suptitle(f"{arch}: accuracy change vs plain training by severity (points)", fontweight="bold")
        fig.colorbar(
            im, ax=axes[:, 0].tolist(), fraction=0.02, pad=0.01, label="Δ accuracy (points)", aspect=40
        )
        return to_svg(fig)


def severity_curves(sev: pd.DataFrame, labels: list[str]) -> str:
    """Accuracy vs severity (clean at 0), mean over the 15 corruptions, one panel per architecture."""
    archs = sorted(sev["arch"].unique())
    colors = _colors(labels)
    cols = [c for c in sev.columns if c == "clean" or c.startswith("s")]
    xs = [0 if c == "clean" else int(c[1:]) for c in cols]
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, len(archs), figsize=(5.2 * len(archs), 4.0), squeeze=False, sharey=True)
        for ax, arch in zip(axes[0], archs, strict=True):
            sub = sev[sev["arch"] == arch].set_index("label")
            for i, lab in enumerate(labels):
                if lab in sub.index:
                    ax.plot(
                        xs,
                        100 * sub.loc[lab, cols].to_numpy(float),
                        marker=MARKERS[i % len(MARKERS)],
                        color=colors[lab],
                        label=lab,
                        lw=2 if lab == "plain" else 1.4,
                    )
            ax.set_xticks(xs, ["clean" if x == 0 else str(x) for x in xs])
            ax.set_xlabel("corruption severity")
            ax.set_ylabel("accuracy (%), mean over the 15 corruptions")
            ax.set_title(arch)
        axes[0][-1].legend(fontsize=8, frameon=False, loc="lower left")
        fig.tight_layout()
        return to_svg(fig)


def corruption_bars(table: pd.DataFrame, labels: list[str], corruptions: list[str]) -> str:
    """Grouped bars: accuracy per corruption (mean over severities) for the given labels, per architecture."""
    archs = sorted(table["arch"].unique())
    colors = _colors(labels)
    width = 0.8 / max(len(labels), 1)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            len(archs),
            1,
            figsize=(max(9.0, 0.62 * len(corruptions) + 2), 3.6 * len(archs)),
            squeeze=False,
            sharex=True,
        )
        x = np.arange(len(corruptions))
        for ax, arch in zip(axes[:, 0], archs, strict=True):
            sub = table[table["arch"] == arch].set_index("label")
            for i, lab in enumerate(labels):
                if lab in sub.index:
                    ax.bar(
                        x + (i - (len(labels) - 1) / 2) * width,
                        100 * sub.loc[lab, corruptions].to_numpy(float),
                        width,
                        color=colors[lab],
                        label=lab,
                    )
            ax.set_ylabel("accuracy (%)")
            ax.set_title(f"{arch}: accuracy per corruption (mean over severities)", loc="left")
            ax.grid(axis="x", visible=False)
        axes[-1][0].set_xticks(x, corruptions, rotation=45, ha="right")
        handles, names = axes[0][0].get_legend_handles_labels()
        fig.tight_layout(rect=(0, 0, 1, 0.95))
        fig.legend(
            handles, names, ncol=len(names), loc="upper center", frameon=False, bbox_to_anchor=(0.5, 1.0)
        )
        return to_svg(fig)
