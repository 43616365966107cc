"""The planning and the write-up of ``benchmarks/gpu_experiment.sh`` (see that script).

    python benchmarks/gpu_experiment.py plan --probe RUNS_DIR --probe-log LOG --probe-images N
        --train-images N --seconds S --per-gpu K [--max-epochs 210] [--optional augmix] --out plan.json
    python benchmarks/gpu_experiment.py summarize --runs RUNS_DIR --plan plan.json --command CMD
        --wall S --device-info FILE --out README.md

``plan`` reads the probe sweep (every run of the experiment trained for one short epoch, packed as
the real sweep will be): each run's measured images/s (``metrics.csv``) and its fixed cost (process
start, data to the device; the sweep's ``done NAME (N s)`` line minus the training time). It then
picks the largest number of epochs E, the same for every run, for which the packed schedule (runs
in grid order onto K slots, each taking the next run as it frees) ends within ``--seconds``. A
method named in ``--optional`` (AugMix) stays only if keeping it costs at most a fifth of the
epochs the others would get without it.

``summarize`` writes the README whose first screen holds the exact command, the device, the epochs
and the wall time, then the measured table (mean over seeds and the spread between them).
"""

from __future__ import annotations

import argparse
import csv
import heapq
import json
import math
import re
import statistics
from pathlib import Path

DONE = re.compile(r"^done\s+(\S+) \((\d+) s\)")
KEEP_OPTIONAL = 0.8  # an optional method stays if the epochs with it are >= 80 % of those without


def _last_row(run: Path) -> dict:
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise SystemExit(f"error: {run}/metrics.csv has no epoch rows")
    return rows[-1]


def makespan(runs: list[dict], epochs: int, images: int, slots: int) -> float:
    """Seconds until the last run ends when ``runs`` (in order) fill ``slots`` as they free up."""
    free = [0.0] * max(1, slots)
    heapq.heapify(free)
    end = 0.0
    for r in runs:
        start = heapq.heappop(free)
        finish = start + r["fixed_s"] + epochs * images / r["images_per_s"]
        end = max(end, finish)
        heapq.heappush(free, finish)
    return end


def best_epochs(runs: list[dict], images: int, slots: int, seconds: float, cap: int) -> int:
    """The most epochs (<= cap) that fit in ``seconds``; 0 if not even one does."""
    lo = 0
    for e in range(1, cap + 1):
        if makespan(runs, e, images, slots) > seconds:
            break
        lo = e
    return lo


def plan(a) -> dict:
    probe = Path(a.probe)
    fixed = {}
    for line in Path(a.probe_log).read_text(errors="replace").splitlines():
        m = DONE.match(line.strip())
        if m:
            fixed[m.group(1)] = float(m.group(2))
    runs = []
    for run in sorted(p for p in probe.iterdir() if (p / "metrics.csv").is_file()):
        row = _last_row(run)
        ips = float(row["images_per_s"])
        cfg = json.loads((run / "config.json").read_text())
        wall = fixed.get(run.name, float(row["seconds"]))
        runs.append(
            {
                "name": run.name,
                "method": cfg["method"],
                "images_per_s": ips,
                "fixed_s": max(0.0, wall - a.probe_images / ips),
                "probe_wall_s": wall,
            }
        )
    if not runs:
        raise SystemExit(f"error: no probe run with metrics.csv under {probe}")
    order = {name: i for i, name in enumerate(a.order or [])}
    runs.sort(key=lambda r: order.get(r["name"], len(order)))
    optional = set(a.optional or [])
    core = [r for r in runs if r["method"] not in optional]
    e_core = best_epochs(core, a.train_images, a.per_gpu, a.seconds, a.max_epochs)
    e_all = best_epochs(runs, a.train_images, a.per_gpu, a.seconds, a.max_epochs)
    keep = bool(optional) and e_all >= 1 and e_all >= math.ceil(KEEP_OPTIONAL * e_core)
    chosen, epochs = (runs, e_all) if keep or not optional else (core, e_core)
    if epochs < 1:
        raise SystemExit(
            f"error: not even one epoch fits in {a.seconds:.0f} s (probe rates: "
            + ", ".join(f"{r['name']} {r['images_per_s']:.0f} img/s" for r in runs)
            + ")"
        )
    result = {
        "epochs": epochs,
        "per_gpu": a.per_gpu,
        "train_images": a.train_images,
        "seconds_available": round(a.seconds, 1),
        "predicted_train_s": round(makespan(chosen, epochs, a.train_images, a.per_gpu), 1),
        "methods": sorted({r["method"] for r in chosen}),
        "optional": {
            m: {"kept": keep, "epochs_with": e_all, "epochs_without": e_core} for m in sorted(optional)
        },
        "probe": runs,
    }
    Path(a.out).write_text(json.dumps(result, indent=1))
    print(f"EPOCHS={epochs}")
    print(f"METHODS={','.join(result['methods'])}")
    return result


def _fmt(values: list[float], scale: float = 100.0) -> tuple[str, str]:
    """(mean, spread) in percent; the spread is max - min over seeds."""
    v = [x * scale for x in values if x is not None]
    if not v:
        return "n/a", "n/a"
    return f"{statistics.fmean(v):.2f}", (f"{max(v) - min(v):.2f}" if len(v) > 1 else "one seed")


def summarize(a) -> str:
    p = json.loads(Path(a.plan).read_text())
    device = (
        Path(a.device_info).read_text().strip().splitlines() if Path(a.device_info).is_file() else ["unknown"]
    )
    groups: dict[str, list[dict]] = {}
    for run in sorted(Path(a.runs).iterdir()):
        summary = run / "eval" / "summary.json"
        if not summary.is_file():
            continue
        s = json.loads(summary.read_text())
        label = s.get("label") or s.get("method")
        groups.setdefault(label, []).append(s)
    lines = [
        f"# {a.title}",
        "",
        f"- **command**: `{a.command}`",
        f"- **device**: {device[0]}" + (f" ({'; '.join(device[1:])})" if len(device) > 1 else ""),
        f"- **epochs**: {p['epochs']} per run, the same for every method (the reference schedule scaled: "
        f"milestones at the same fractions of training); {p['train_images']:,} training images per epoch",
        f"- **wall time**: {a.wall:.0f} s for the whole script ({p['per_gpu']} runs at once per device"
        + (f", {a.packing}" if a.packing else "")
        + ")",
        f"- **runs**: {sum(len(v) for v in groups.values())} ({', '.join(sorted(groups))}); "
        f"seeds {sorted({s['seed'] for v in groups.values() for s in v})}",
    ]
    for method, info in p.get("optional", {}).items():
        state = "kept" if info["kept"] else "left out"
        lines.append(
            f"- **{method}**: {state} (would allow {info['epochs_with']} epochs with it, "
            f"{info['epochs_without']} without)"
        )
    lines += [
        "",
        "| method | runs | clean acc % | spread | mean corruption acc (19) % | spread | mCE (19) % | spread |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, runs in sorted(groups.items()):
        cells = []
        for key in ("clean_acc", "mean_acc_19", "mce"):
            cells += list(_fmt([r.get(key) for r in runs]))
        lines.append(f"| {label} | {len(runs)} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Spread: the largest minus the smallest value over the seeds of that method (with two seeds, their "
        "difference); a difference between methods smaller than the spreads is not evidence of anything.",
        "",
    ]
    if a.notes:
        lines += [Path(a.notes).read_text().strip(), ""]
    text = "\n".join(lines)
    Path(a.out).write_text(text)
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("plan")
    q.add_argument("--probe", required=True)
    q.add_argument("--probe-log", required=True)
    q.add_argument("--probe-images", type=int, required=True)
    q.add_argument("--train-images", type=int, required=True)
    q.add_argument("--seconds", type=float, required=True)
    q.add_argument("--per-gpu", type=int, required=True)
    q.add_argument("--max-epochs", type=int, default=210)
    q.add_argument("--optional", type=lambda s: [x for x in s.split(",") if x])
    q.add_argument("--order", type=lambda s: [x for x in s.split(",") if x], help="run names in grid order")
    q.add_argument("--out", required=True)
    s = sub.add_parser("summarize")
    s.add_argument("--runs", required=True)
    s.add_argument("--plan", required=True)
    s.add_argument("--command", required=True)
    s.add_argument("--wall", type=float, required=True)
    s.add_argument("--device-info", required=True)
    s.add_argument("--packing", default="")
    s.add_argument("--title", default="ResNet-18 on CIFAR-10 / CIFAR-10-C")
    s.add_argument("--notes", help="a Markdown file appended (what the run can and cannot show)")
    s.add_argument("--out", required=True)
    a = p.parse_args(argv)
    if a.cmd == "plan":
        plan(a)
    else:
        summarize(a)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
