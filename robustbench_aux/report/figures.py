"""The report's figures, drawn with matplotlib and returned as inline SVG strings.

Text stays text in the SVG (``svg.fonttype = none``), so pages are small and searchable; the
figures need no files and no network. Accuracies are plotted in percent.

One :func:`method_styles` map (colour and marker per method label) is made per report and used by
every figure, so a method looks the same everywhere; legends sit outside the axes; figures are at
most :data:`MAX_WIDTH_IN` wide so that the page shows them at their drawn size (cell numbers stay
readable at 100 % zoom). Each legend entry carries an SVG id ``legend-<figure>-<method slug>``.
"""

from __future__ import annotations

import hashlib
import io
import re

import matplotlib

matplotlib.use("Agg")  # no display needed; must precede pyplot
import matplotlib.patches  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
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
    """Give each legend entry the id ``legend-<figure>-<method slug>``; an entry "method, what"
    (a method drawn twice, e.g. each seed and the mean) gets ``legend-<figure>_<what>-<method>``."""
    for handle, text in zip(legend.legend_handles, legend.get_texts(), strict=True):
        method, _, what = text.get_text().partition(", ")
        fig = f"{figure}_{re.sub(r'[^A-Za-z0-9]+', '_', what).strip('_')}" if what else figure
        handle.set_gid(f"legend-{fig}-{slug(method)}")


# the ids matplotlib gives an SVG's shared definitions (clip paths, markers, hatches, images,
# collection paths): a prefix and 10 hex digits of a salted hash of the definition
_DEFINITION_ID = re.compile(r"(?:p|m|h|image|C\d+_\d+_)[0-9a-f]{10}")


def to_svg(fig) -> str:
    """The figure as an ``<svg>`` element (XML prolog and DOCTYPE stripped), then closed.

    The same figure gives the same text on every render (a fixed hash salt, no date), so a page
    rendered again from the same evidence is the same page; each definition id then gets a suffix
    from the figure's own text, so two figures inlined in one page never share an id."""
    buf = io.StringIO()
    with plt.rc_context({"svg.hashsalt": "robustbench-aux"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    ids = {i for i in re.findall(r'id="([^"]+)"', text) if _DEFINITION_ID.fullmatch(i)}
    if not ids:
        return text
    suffix = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    pattern = re.compile(r"\b(" + "|".join(sorted(ids)) + r")\b")
    return pattern.sub(lambda m: f"{m.group(1)}-{suffix}", text)


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


SIGNIFICANT_EDGE = "#000000"  # the outline of a cell whose corrected test says it differs from plain


def _heatmap(
    ax, mat: pd.DataFrame, norm, annotate: bool = True, fontsize: float = 7.5, separators=(), significant=None
):
    """Annotated heat map: colour encodes the change for every cell, whether or not it is
    significant; with ``significant`` (bool frame like ``mat``) those cells get a black outline
    (svg id ``sig-cell``) and a bold number, so a large non-significant change never looks smaller
    than a small significant one."""
    data = mat.to_numpy(dtype=float)
    cmap = plt.get_cmap("RdBu").with_extremes(bad="#ffffff")
    im = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, norm=norm, aspect="auto")
    ax.set_xticks(
        range(mat.shape[1]), [str(c).replace("_", " ") for c in mat.columns], rotation=50, ha="right"
    )
    ax.set_yticks(range(mat.shape[0]), [str(i) for i in mat.index])
    ax.tick_params(labelbottom=True, labelsize=8.5)
    ax.grid(False)
    for j in separators:
        ax.axvline(j - 0.5, color="black", lw=1.2)
    sig = (
        np.zeros(data.shape, bool)
        if significant is None
        else significant.reindex(index=mat.index, columns=mat.columns).fillna(False).to_numpy(bool)
    )
    for (i, j), flag in np.ndenumerate(sig):
        if flag and np.isfinite(data[i, j]):
            box = matplotlib.patches.Rectangle(
                (j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor=SIGNIFICANT_EDGE, lw=1.6
            )
            box.set_gid("sig-cell")
            ax.add_patch(box)
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
                    fontweight="bold" if sig[i, j] else "normal",
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

    The reference row is left out by the caller (it is 0 by definition). With ``significant`` the
    cells whose corrected test says so are outlined; every cell is coloured by its change.
    """
    with plt.rc_context(STYLE):
        height = 0.42 * mat.shape[0] + 2.6
        fig, ax = plt.subplots(figsize=(MAX_WIDTH_IN, height), layout="constrained")
        norm = _norm(mat.to_numpy(dtype=float))
        im = _heatmap(ax, mat, norm, separators=_separators(list(mat.columns)), significant=significant)
        ax.set_xlabel("evaluated on  (clean | CIFAR-C corruptions | category means)")
        ax.set_ylabel("trained with")
        ax.set_title(
            f"{arch}: accuracy change vs plain training (points, mean over severities 1-5); "
            "outlined: beyond test-image noise"
        )
        fig.colorbar(im, ax=ax, fraction=0.025, pad=0.01, label="Δ accuracy (points)")
        return to_svg(fig)


def interference_by_severity(mat: pd.DataFrame, arch: str, significant: pd.DataFrame | None = None) -> str:
    """The severity-resolved matrix: one heat map per severity, shared colour scale, every panel
    with its own column labels."""
    severities = sorted(mat.index.get_level_values("severity").unique())
    with plt.rc_context(STYLE):
        labels = list(dict.fromkeys(mat.index.get_level_values("label")))
        panel = 0.42 * len(labels) + 1.9  # rows plus the rotated column labels under each panel
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
    sev: pd.DataFrame,
    labels: list[str],
    styles: dict | None = None,
    set_name: str = "15",
    per_seed: pd.DataFrame | None = None,
) -> str:
    """Accuracy vs severity (clean at 0), mean over the 15 corruptions, one panel per architecture:
    the mean over seeds as a line with markers and, from ``per_seed`` (one curve per run), every
    seed as a thin line of the same colour, so the spread between seeds is visible."""
    archs = sorted(sev["arch"].unique())
    styles = styles or method_styles(labels)
    cols = [c for c in sev.columns if c == "clean" or c.startswith("s")]
    xs = [0 if c == "clean" else int(c[1:]) for c in cols]
    width = min(MAX_WIDTH_IN, 5.2 * len(archs) + 0.4)
    height = 4.4 + 0.28 * ((len(labels) - 1) // 5 + 1)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, len(archs), figsize=(width, height), squeeze=False, sharey=True)
        for ax, arch in zip(axes[0], archs, strict=True):
            sub = sev[sev["arch"] == arch].set_index("label")
            for lab in labels:
                if lab not in sub.index:
                    continue
                color, marker = styles[lab]
                if per_seed is not None:
                    runs = per_seed[(per_seed["arch"] == arch) & (per_seed["label"] == lab)]
                    if len(runs) > 1:
                        for _, run in runs.iterrows():
                            ax.plot(xs, 100 * run[cols].to_numpy(float), color=color, lw=0.8, alpha=0.45)
                ax.plot(
                    xs,
                    100 * sub.loc[lab, cols].to_numpy(float),
                    marker=marker,
                    color=color,
                    label=lab,
                    lw=2 if lab == "plain" else 1.6,
                )
            ax.set_xticks(xs, ["clean" if x == 0 else str(x) for x in xs])
            ax.set_xlabel("corruption severity")
            ax.set_ylabel(f"accuracy (%), mean over {set_name} corruptions")
            ax.set_title(f"{arch}: mean over seeds (markers), each seed (thin lines)", fontsize=10)
        _bottom_legend(fig, axes, "severity", height)
        return to_svg(fig)


def _banded_columns(ax, x) -> None:
    """One column per corruption at ``x``: no vertical grid, every other column shaded."""
    ax.grid(axis="x", visible=False)
    for j in x[1::2]:
        ax.axvspan(j - 0.5, j + 0.5, color="#f2f4f7", zorder=0, lw=0)
    ax.set_xlim(-0.6, len(x) - 0.4)


def corruption_bars(
    table: pd.DataFrame, labels: list[str], corruptions: list[str], styles: dict | None = None
) -> str:
    """Accuracy per corruption (mean over severities and seeds) for the given labels, per
    architecture: one marker per method at each corruption (no bars: the axis does not start at 0,
    it spans the measured accuracies, so differences of a point or two stay visible)."""
    archs = sorted(table["arch"].unique())
    styles = styles or method_styles(labels)
    step = 0.6 / max(len(labels), 1)
    height = 3.6 * len(archs) + 1.3 + 0.28 * ((len(labels) - 1) // 5 + 1)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(len(archs), 1, figsize=(MAX_WIDTH_IN, height), squeeze=False, sharex=True)
        x = np.arange(len(corruptions))
        for ax, arch in zip(axes[:, 0], archs, strict=True):
            sub = table[table["arch"] == arch].set_index("label")
            values = []
            for i, lab in enumerate(labels):
                if lab not in sub.index:
                    continue
                color, marker = styles[lab]
                y = 100 * sub.loc[lab, corruptions].to_numpy(float)
                values.append(y)
                ax.plot(
                    x + (i - (len(labels) - 1) / 2) * step,
                    y,
                    ls="none",
                    marker=marker,
                    markersize=6.5,
                    color=color,
                    markeredgecolor=color,
                    label=lab,
                )
            finite = np.concatenate(values) if values else np.array([])
            finite = finite[np.isfinite(finite)]
            if finite.size:
                pad = max(1.0, 0.06 * (finite.max() - finite.min()))
                ax.set_ylim(finite.min() - pad, finite.max() + pad)
            ax.set_ylabel("accuracy (%) — axis not from 0")
            ax.set_title(f"{arch}: accuracy per corruption (mean over severities and seeds)", loc="left")
            _banded_columns(ax, x)
        axes[-1][0].set_xticks(x, [c.replace("_", " ") for c in corruptions], rotation=45, ha="right")
        _bottom_legend(fig, axes, "bars", height)
        return to_svg(fig)


def corruption_change(
    per_seed: pd.DataFrame,
    summary: pd.DataFrame,
    labels: list[str],
    corruptions: list[str],
    styles: dict | None = None,
    reference: str = "plain",
) -> str:
    """Change of accuracy per corruption vs ``reference`` of the same seed (points), one panel per
    architecture: each seed as a small hollow marker, the mean over seeds as a filled marker with
    its 95 % t interval (two or more seeds), methods side by side; a line at 0."""
    archs = sorted(summary["arch"].unique())
    styles = styles or method_styles(labels)
    shown = [lab for lab in labels if lab in set(summary["label"])]
    step = 0.7 / max(len(shown), 1)
    height = 3.8 * len(archs) + 1.3 + 0.28 * ((len(shown) - 1) // 5 + 1)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(len(archs), 1, figsize=(MAX_WIDTH_IN, height), squeeze=False, sharex=True)
        x = np.arange(len(corruptions))
        for ax, arch in zip(axes[:, 0], archs, strict=True):
            ax.axhline(0, color="#333333", lw=0.9)
            for i, lab in enumerate(shown):
                color, marker = styles[lab]
                off = (i - (len(shown) - 1) / 2) * step
                summ = summary[(summary["arch"] == arch) & (summary["label"] == lab)].set_index("corruption")
                seeds = per_seed[(per_seed["arch"] == arch) & (per_seed["label"] == lab)]
                if summ.empty:
                    continue
                pos = {c: j for j, c in enumerate(corruptions)}
                # each seed a little left of the mean, so a seed is never hidden behind it
                sx = [pos[c] + off - 0.3 * step for c in seeds["corruption"] if c in pos]
                sy = [d for c, d in zip(seeds["corruption"], seeds["delta_pts"], strict=True) if c in pos]
                ax.plot(
                    sx,
                    sy,
                    ls="none",
                    marker=marker,
                    markersize=4.5,
                    markerfacecolor="none",
                    markeredgecolor=color,
                    alpha=0.8,
                    label=f"{lab}, each seed",
                )
                summ = summ.reindex(corruptions)
                mean = summ["mean_pts"].to_numpy(float)
                low, high = summ["low_pts"].to_numpy(float), summ["high_pts"].to_numpy(float)
                has = np.isfinite(low) & np.isfinite(high)
                yerr = np.vstack([np.where(has, mean - low, 0), np.where(has, high - mean, 0)])
                ax.errorbar(
                    x + off + 0.1 * step,
                    mean,
                    yerr=yerr,
                    fmt=marker,
                    color=color,
                    markeredgecolor=color,
                    markersize=6.5,
                    capsize=2.5,
                    elinewidth=1.2,
                    label=f"{lab}, mean [95 % interval]",
                )
            ax.set_ylabel(f"Δ accuracy vs {reference} (points)")
            ax.set_title(f"{arch}: change per corruption vs {reference} of the same seed", loc="left")
            _banded_columns(ax, x)
        axes[-1][0].set_xticks(x, [c.replace("_", " ") for c in corruptions], rotation=45, ha="right")
        _bottom_legend(fig, axes, "change", height)
        return to_svg(fig)


# the panels of the training curves: (quantity or "loss terms", y label)
CURVE_LABELS = {"train_acc": "clean training accuracy (%)", "lr": "learning rate", "loss": "total loss"}


def training_curves(curves: pd.DataFrame, labels: list[str], styles: dict | None = None) -> str:
    """Per-epoch curves of every run from its metrics.csv: clean training accuracy (%), the learning
    rate, the total loss and each loss term in its own panel; one line per run, coloured by method,
    one line style per seed (solid, dashed, dotted, ...)."""
    styles = styles or method_styles(labels)
    quantities = [q for q in ("train_acc", "lr", "loss") if q in set(curves["quantity"])]
    quantities += sorted(q for q in set(curves["quantity"]) if q not in CURVE_LABELS)
    ncol = 3
    nrow = (len(quantities) - 1) // ncol + 1
    seeds = sorted(curves["seed"].unique())
    dashes = ["-", "--", ":", "-."]
    height = 2.7 * nrow + 0.9
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(nrow, ncol, figsize=(MAX_WIDTH_IN, height), squeeze=False)
        for ax in axes.ravel()[len(quantities) :]:
            ax.set_visible(False)
        for ax, q in zip(axes.ravel(), quantities, strict=False):
            sub = curves[curves["quantity"] == q]
            for (lab, seed, arch), run in sub.groupby(["label", "seed", "arch"]):
                color, marker = styles.get(lab, ("#555555", "o"))
                scale = 100.0 if q == "train_acc" else 1.0
                ax.plot(
                    run["epoch"],
                    scale * run["value"],
                    color=color,
                    ls=dashes[seeds.index(seed) % len(dashes)],
                    marker=marker,
                    markersize=3.5,
                    lw=1.3,
                    label=f"{lab}, seed {seed}" + (f" ({arch})" if curves["arch"].nunique() > 1 else ""),
                )
            ax.set_title(CURVE_LABELS.get(q, f"loss term: {q}"), fontsize=10)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
            ax.set_ylabel(CURVE_LABELS.get(q, "loss (weighted term)"), fontsize=9)
            if q == "lr":
                ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        _bottom_legend(fig, axes, "training", height)
        return to_svg(fig)
