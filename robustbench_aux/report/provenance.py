"""The provenance box of a report: data, corruption sets, seeds, versions, protocol choices.

``provenance_rows(records, shared)`` returns (name, value) pairs; a choice a run records (data
reading, step budget, AugMix protocol, deviations) is counted over the runs it applies to.
"""

from __future__ import annotations

from robustbench_aux.catalog import ALL_19, CBAR_10
from robustbench_aux.report.banner import deviation_text, deviations, reference_epochs
from robustbench_aux.report.runs import SharedFacts
from robustbench_aux.runinfo import AS_PLAIN_STEPS, DATA_READING_METHODS, DEFAULT_DATA_READING


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
