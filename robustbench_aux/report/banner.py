"""The warning banner at the top of a report: every way the runs differ from the paper's setting.

Built from provenance only (run configs, evaluation summaries and the runs' ``metrics.csv``), never
from the numbers: the published CIFAR-100-C, 10,000 images per (corruption, severity) block, all
10,000 clean test images, the original data release, several seeds, CIFAR-100,
ResNet-18/50/101/152, all 50,000 training images, the full training schedule, compared methods
trained for about the same number of optimizer steps, and no protocol deviation. Each way a page
departs from that is one banner item; an empty list means the page is in the paper's setting.
:func:`framing` opens the banner with one sentence: a pipeline check (a fraction of the training
images or a toy test set) or a short-schedule comparison on full data.

Protocol deviations come from a run's ``config.json`` (top-level ``deviations``) and the
provenance of its ``eval/summary.json`` (``provenance.deviations``): lists of
``{"switch", "value", "reference"}``. A missing key means none were recorded (older runs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from robustbench_aux.catalog import CLEAN, OFFICIAL_COPY
from robustbench_aux.errors import UserError
from robustbench_aux.metrics.compare import PAPER_DELTA_CLEAN_PTS, PAPER_ROBUSTNESS
from robustbench_aux.report.compute import STEPS_TOLERANCE, steps_differences
from robustbench_aux.report.runs import RunRecord, SharedFacts
from robustbench_aux.runinfo import RunInfo

PAPER_DATASET = "cifar100"
PAPER_ARCHS = ("resnet18", "resnet50", "resnet101", "resnet152")
FULL_BLOCK = 10_000  # images per (corruption, severity) block in the published CIFAR-C
DEFAULT_REFERENCE_EPOCHS = 210  # the reference protocol's schedule (the `reference` recipe)
FULL_TEST = 10_000  # clean test images of CIFAR-10 / CIFAR-100
TRAIN_IMAGES = {"cifar10": 50_000, "cifar100": 50_000}  # training images of the full sets
# The page's framing (docs/metrics.md): a run on fewer than this share of the training images, or
# a test set (clean images or images per corruption block) smaller than TOY_TEST_IMAGES, makes the
# page a pipeline check. At 2,000 images one accuracy near 75 % has a standard error of about one
# point, the size of the differences compared.
PIPELINE_TRAIN_SHARE = 0.5
TOY_TEST_IMAGES = 2_000


@dataclass(frozen=True)
class Item:
    """One banner line: a short key (for tests and CSS) and the sentence shown."""

    key: str
    text: str


def _fmt(value) -> str:
    return value if isinstance(value, str) else repr(value) if value is not None else "none"


def deviations(r: RunRecord) -> list[dict]:
    """The protocol deviations recorded for one run (config and evaluation summary merged)."""
    prov = r.summary.get("provenance") or {}
    out: dict[str, dict] = {}
    for source in (list(r.info.deviations), prov.get("deviations") or []):
        if not isinstance(source, list):
            continue
        for d in source:
            if isinstance(d, Mapping) and d.get("switch"):
                out.setdefault(str(d["switch"]), dict(d))
    return [out[k] for k in sorted(out)]


def deviation_text(d: Mapping) -> str:
    return f"{d['switch']} = {_fmt(d.get('value'))} (reference: {_fmt(d.get('reference'))})"


def reference_epochs(info: RunInfo) -> int:
    """The epochs of the reference schedule a run is measured against: the root of its recipe's
    ``extends`` chain, as training recorded it (``reference_epochs``; for older runs, the length
    ``--epochs`` scaled from), so a later edit of a recipe file never changes an old report.

    Runs recorded before either existed fall back to the shipped recipe chain as it is today
    (:func:`_legacy_reference_epochs`; ``smoke``, ``cpu_demo`` and ``paper`` all extend
    ``reference``, 210 epochs), and unknown recipes (foreign runs) to 210.
    """
    if info.reference_epochs is not None:
        return info.reference_epochs
    return _legacy_reference_epochs(info.recipe)


def _legacy_reference_epochs(recipe: str | None) -> int:
    """For runs that did not record their reference schedule: the root of the recipe's chain today."""
    from robustbench_aux.config import _read_recipe_text  # a recipe name or a .toml path

    name, seen = recipe, set()
    while name and name not in seen:
        seen.add(name)
        try:
            data = tomllib.loads(_read_recipe_text(str(name))[0])
        except (UserError, OSError, tomllib.TOMLDecodeError):
            break
        if "extends" not in data:
            return int((data.get("train") or {}).get("epochs", DEFAULT_REFERENCE_EPOCHS))
        name = data["extends"]
    return DEFAULT_REFERENCE_EPOCHS


def data_copies(r: RunRecord) -> set[str]:
    """The dataset copy labels recorded for a run (training config and evaluation provenance)."""
    prov = (r.summary.get("provenance") or {}).get("data") or {}
    return {str(c) for c in (r.info.data_copy, prov.get("copy")) if c}


def _test_sizes(r: RunRecord) -> tuple[int, int]:
    """(clean test images, the largest corruption block) of one run's results table."""
    t = r.table
    if "corruption" not in t.columns or "n" not in t.columns:
        return (0, 0)
    clean = t.loc[t["corruption"] == CLEAN, "n"]
    blocks = t.loc[t["corruption"] != CLEAN, "n"]
    return (int(clean.min()) if len(clean) else 0, int(blocks.max()) if len(blocks) else 0)


@dataclass(frozen=True)
class Framing:
    """What kind of evidence a page is: ``kind`` is :data:`PIPELINE_CHECK`, :data:`SHORT_SCHEDULE`
    or :data:`FULL_SCHEDULE`, ``text`` the one sentence the banner opens with ("" for the last)."""

    kind: str
    text: str


PIPELINE_CHECK = "pipeline check"
SHORT_SCHEDULE = "short-schedule comparison"
FULL_SCHEDULE = "full schedule"
UNKNOWN_SCALE = "training not recorded"


def framing(records: list[RunRecord]) -> Framing:
    """The page's one framing, from provenance only (docs/metrics.md, "What a page's numbers are").

    - **pipeline check** when any run trained on fewer than :data:`PIPELINE_TRAIN_SHARE` of the
      training images (``data.n_train``), or the test set is a toy one: fewer than
      :data:`TOY_TEST_IMAGES` clean test images or images per corruption block; the sentence says
      which;
    - **short-schedule comparison** otherwise, when every run records its training images and some
      run trained fewer epochs than its reference schedule: a real comparison at that schedule,
      not the paper's;
    - **full schedule** when every run is at full data and the reference epochs;
    - **training not recorded** when a run does not record its training images (no sentence).
    """
    why: list[str] = []
    fractions: dict[tuple[int, int], list[str]] = {}
    for r in records:
        n, full = r.info.n_train, TRAIN_IMAGES.get(r.info.dataset)
        if n is not None and full and n < PIPELINE_TRAIN_SHARE * full:
            fractions.setdefault((n, full), []).append(r.run_id)
    for (n, full), ids in sorted(fractions.items()):
        share = f"{100 * n / full:.2g} %"
        who = "every run" if len(ids) == len(records) else f"{len(ids)} of {len(records)} runs"
        why.append(f"{who} trained on {n:,} of the {full:,} training images ({share})")
    sizes = [_test_sizes(r) for r in records]
    n_test = min(c for c, _ in sizes) if sizes else 0
    n_block = min(b for _, b in sizes) if sizes else 0
    if 0 < n_test < TOY_TEST_IMAGES:
        why.append(f"accuracy is measured on a toy test set of {n_test:,} clean test images")
    if 0 < n_block < TOY_TEST_IMAGES:
        why.append(f"{n_block:,} images per corruption block")
    if why:
        return Framing(
            PIPELINE_CHECK,
            "These numbers are a pipeline check, not a comparison of the methods: "
            + "; ".join(why)
            + ". They show that the pipeline runs end to end; at this scale a difference between "
            "methods says little about the methods.",
        )
    n_train = [r.info.n_train for r in records]
    if not records or any(n is None for n in n_train):
        return Framing(UNKNOWN_SCALE, "")
    short = sorted(
        {
            (r.info.epochs, reference_epochs(r.info))
            for r in records
            if r.info.epochs is not None and r.info.epochs < reference_epochs(r.info)
        }
    )
    if not short:
        return Framing(FULL_SCHEDULE, "")
    epochs = " / ".join(sorted({str(e) for e, _ in short}, key=int))
    ref = " / ".join(sorted({str(f) for _, f in short}, key=int))
    return Framing(
        SHORT_SCHEDULE,
        f"A short-schedule comparison on full data: every run trained on all {min(n_train):,} "
        f"training images and was tested on {n_test:,} test images, for {epochs} epochs instead "
        f"of the reference schedule's {ref}. The comparisons below are real comparisons of the "
        "methods at this schedule, not at the paper's; whether they hold at the full schedule is "
        "not tested here.",
    )


def pipeline_check(records: list[RunRecord]) -> str | None:
    """The banner's pipeline-check sentence (:func:`framing`), or None when the page is not one."""
    f = framing(records)
    return f.text if f.kind == PIPELINE_CHECK else None


def _runs(ids: list[str], total: int) -> str:
    if len(ids) == total:
        return f"all {total} runs" if total > 1 else "the run"
    shown = ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
    return f"{len(ids)} of {total} runs ({shown})"


def banner_items(records: list[RunRecord], shared: SharedFacts) -> list[Item]:
    """Every way these runs depart from the paper's setting, most basic first."""
    items: list[Item] = []
    total = len(records)
    prov = str(shared.corruption_provenance or "unknown")
    if prov != "published":
        items.append(
            Item(
                "generated",
                f"Corruptions are {prov}, not the published CIFAR-C files: numbers are comparable "
                "with each other, not with published CIFAR-C results.",
            )
        )
    per_block = shared.images_per_block
    if 0 < per_block < FULL_BLOCK:
        items.append(
            Item(
                "small_blocks",
                f"{per_block:,} images per (corruption, severity) block, not {FULL_BLOCK:,}: "
                "every accuracy carries more test-sampling noise than the paper's.",
            )
        )
    n_test = shared.clean_test_images
    if 0 < n_test < FULL_TEST:
        items.append(
            Item(
                "test_images",
                f"Clean accuracy on {n_test:,} of the {FULL_TEST:,} test images: clean figures carry "
                "more test-sampling noise than the paper's.",
            )
        )
    copies: dict[str, list[str]] = {}
    for r in records:
        for c in sorted(data_copies(r) - {OFFICIAL_COPY}):
            copies.setdefault(c, []).append(r.run_id)
    for copy, ids in sorted(copies.items()):
        items.append(
            Item(
                "data_copy",
                f"Data copy {copy}, not the original release: images differ from the official "
                f"files ({_runs(ids, total)}).",
            )
        )
    seeds: dict[tuple[str, str], set] = {}
    for r in records:
        seeds.setdefault((r.label, r.arch), set()).add(r.seed)
    single = sorted(f"{lab} ({arch})" for (lab, arch), s in seeds.items() if len(s) <= 1)
    if single and len(single) == len(seeds):
        items.append(
            Item(
                "one_seed",
                "One seed per method: differences between methods include seed-to-seed variation "
                "that this page cannot measure.",
            )
        )
    elif single:
        shown = ", ".join(single[:4]) + (f" and {len(single) - 4} more" if len(single) > 4 else "")
        items.append(
            Item(
                "one_seed",
                f"Only one seed for {shown}: their differences include seed-to-seed variation "
                "that this page cannot measure.",
            )
        )
    dataset = shared.dataset
    if dataset != PAPER_DATASET:
        items.append(
            Item(
                "dataset",
                f"Dataset {dataset}, not the paper's CIFAR-100: the paper's {PAPER_DELTA_CLEAN_PTS:+.2f} / {PAPER_ROBUSTNESS:.2f} figures "
                "below are CIFAR-100 numbers and are not expected here.",
            )
        )
    archs = sorted({r.arch for r in records})
    other = [a for a in archs if a not in PAPER_ARCHS]
    if other:
        items.append(
            Item(
                "arch",
                f"Architecture {', '.join(other)}: not one of the paper's ResNet-18/50/101/152.",
            )
        )
    fewer: dict[tuple[int, int], list[str]] = {}
    for r in records:
        n, full = r.info.n_train, TRAIN_IMAGES.get(r.info.dataset)
        if n is not None and full and n < full:
            fewer.setdefault((n, full), []).append(r.run_id)
    for (n, full), ids in sorted(fewer.items()):
        items.append(
            Item("train_images", f"Trained on {n:,} of the {full:,} training images: {_runs(ids, total)}.")
        )
    short: dict[tuple[int, int], list[str]] = {}
    for r in records:
        epochs = r.info.epochs
        ref = reference_epochs(r.info)
        if epochs is not None and epochs < ref:
            short.setdefault((epochs, ref), []).append(r.run_id)
    for (epochs, ref), ids in sorted(short.items()):
        items.append(
            Item(
                "epochs",
                f"Trained {epochs} epoch{'s' if epochs != 1 else ''}, not the reference schedule's "
                f"{ref}: {_runs(ids, total)}.",
            )
        )
    differ = steps_differences((r.label, r.arch, r.compute()["steps"]) for r in records)
    if differ:
        items.append(
            Item(
                "steps",
                f"Compared methods trained for different numbers of optimizer steps (more than "
                f"{100 * STEPS_TOLERANCE:.0f} % apart): {'; '.join(differ)}. A difference between them "
                "may come from the longer training alone (docs/training.md: step_budget = as_plain).",
            )
        )
    dev: dict[str, list[str]] = {}
    for r in records:
        for d in deviations(r):
            dev.setdefault(deviation_text(d), []).append(r.run_id)
    for text, ids in sorted(dev.items()):
        items.append(Item("deviation", f"Protocol deviation: {text} in {_runs(ids, total)}."))
    return items
