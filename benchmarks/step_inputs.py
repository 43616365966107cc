"""The training step's input path, before and after the reused buffers (engine/inputs.py).

Per step the engine gathers the batch's uint8 images, the method makes its views (crop/flip and
corruptions) and the views become one float batch for the model. For a batch of ``--batch``
32x32 images this times each part (median of ``--reps`` calls after warm-up, before and after
called alternately) and counts the allocations of one call (torch.profiler with
``profile_memory``: the op calls that allocated, and their bytes):

- ``assemble``: the views -> the model's float batch; before: ``to_float(torch.cat([to_float(v)
  for v in views]), channels_last)``; after: ``StepBuffers.assemble``;
- ``crop_flip``: ``apply_crop_flip`` of one uint8 batch; before: the per-call ranges and
  out-of-place index arithmetic (kept below as ``before_apply_crop_flip``); after: methods/crop_flip.py;
- ``input_path``: all of it for the auxiliary method (gather + 5 views + assembly).

Both forms give the same numbers bit for bit (tests/test_step_buffers.py); this measures only time
and allocations.

    OMP_NUM_THREADS=1 nice python benchmarks/step_inputs.py [--device cpu] [--batch 128]
        [--channels-last auto|on|off] [--reps 200] [--json OUT]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time

import torch

from robustbench_aux.engine.inputs import StepBuffers
from robustbench_aux.methods import base, build_method, crop_flip
from robustbench_aux.methods.crop_flip import draw_crop_flip, to_float


def before_apply_crop_flip(x, params, padding=4):
    """crop_flip.apply_crop_flip as it was before the cached ranges and in-place index arithmetic."""
    n, c, h, w = x.shape
    rows = params.dy[:, None] - padding + torch.arange(h, device=x.device)
    cols = params.dx[:, None] - padding + torch.arange(w, device=x.device)
    flip = params.flip if params.flip is not None else torch.zeros_like(params.dy, dtype=torch.bool)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    valid = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    index = rows.clamp(0, h - 1)[:, :, None] * w + cols.clamp(0, w - 1)[:, None, :]
    out = x.reshape(n, c, h * w).gather(2, index.view(n, 1, h * w).expand(n, c, h * w)).view(n, c, h, w)
    return out * valid[:, None].to(out.dtype)


def before_assemble(views, lo, hi, channels_last):
    return to_float(torch.cat([to_float(v[lo:hi]) for v in views]), channels_last)


@contextlib.contextmanager
def old_crop_flip():
    saved = crop_flip.apply_crop_flip, base.apply_crop_flip
    crop_flip.apply_crop_flip = base.apply_crop_flip = before_apply_crop_flip
    try:
        yield
    finally:
        crop_flip.apply_crop_flip, base.apply_crop_flip = saved


def paired_median_ms(before, after, reps, device) -> tuple[float, float]:
    """Median ms of ``before`` and of ``after``, called alternately (load changes hit both alike)."""

    def timed(fn):
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t0

    for _ in range(5):
        before(), after()
    pairs = [(timed(before), timed(after)) for _ in range(reps)]
    return 1e3 * statistics.median(p[0] for p in pairs), 1e3 * statistics.median(p[1] for p in pairs)


def allocations(fn, device) -> tuple[int, int]:
    """(op calls that allocated memory, bytes they allocated) during one call of ``fn``: the
    profiler attributes each allocation on ``device`` to the innermost op that made it."""
    from torch.profiler import ProfilerActivity, profile

    fn()  # warm: buffers and cached ranges exist, as in every step after the first
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts, profile_memory=True) as prof:
        fn()
    count = total = 0
    for e in prof.events():
        if e.name == "[memory]":  # frees and unattributed events
            continue
        b = e.self_device_memory_usage if device.type == "cuda" else e.self_cpu_memory_usage
        if b > 0:
            count, total = count + 1, total + b
    return count, total


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--reps", type=int, default=200)
    p.add_argument(
        "--channels-last",
        default="auto",
        choices=("auto", "on", "off"),
        help="auto: on for CUDA, as the engine",
    )
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads on the CPU")
    p.add_argument("--json", help="also write the numbers to this JSON file")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cl = args.channels_last == "on" or (args.channels_last == "auto" and device.type == "cuda")
    b = args.batch
    gen = torch.Generator(device=device).manual_seed(0)
    train_x = torch.randint(0, 256, (50 * b, 3, 32, 32), dtype=torch.uint8, device=device, generator=gen)
    idx = torch.randperm(len(train_x), device=device, generator=gen)[:b]
    method = build_method("auxiliary")
    views = method.views(train_x[idx], gen)  # the 5 uint8 views of one step
    mixed = [views[0], torch.rand(b, 3, 32, 32, device=device, generator=gen), views[1]]  # AugMix-like
    params = draw_crop_flip(b, gen, device)
    buffers = StepBuffers(channels_last=cl)

    def input_before():
        with old_crop_flip():
            vs = method.views(train_x[idx], gen)
        return before_assemble(vs, 0, b, cl)

    def input_after():
        vs = method.views(buffers.gather(train_x, idx), gen)
        return buffers.assemble(vs, 0, b)

    cases = {
        "assemble (5 uint8 views)": (
            lambda: before_assemble(views, 0, b, cl),
            lambda: buffers.assemble(views, 0, b),
        ),
        "assemble (uint8 + float views)": (
            lambda: before_assemble(mixed, 0, b, cl),
            lambda: buffers.assemble(mixed, 0, b),
        ),
        "crop_flip (1 uint8 batch)": (
            lambda: before_apply_crop_flip(views[0], params),
            lambda: crop_flip.apply_crop_flip(views[0], params),
        ),
        "input_path (auxiliary: gather + views + assemble)": (input_before, input_after),
    }
    results = {"device": str(device), "threads": args.threads, "batch": b, "channels_last": cl, "cases": {}}
    print(f"device {device}, batch {b}, channels_last={cl}, {args.threads} thread(s); median of {args.reps}")
    print("| part of the step | before ms | after ms | before allocs (KiB) | after allocs (KiB) |")
    print("|---|---:|---:|---:|---:|")
    for name, (before, after) in cases.items():
        t_before, t_after = paired_median_ms(before, after, args.reps, device)
        a_before, a_after = allocations(before, device), allocations(after, device)
        results["cases"][name] = {
            "before_ms": t_before,
            "after_ms": t_after,
            "before_allocations": a_before[0],
            "before_bytes": a_before[1],
            "after_allocations": a_after[0],
            "after_bytes": a_after[1],
        }
        print(
            f"| {name} | {t_before:.3f} | {t_after:.3f} | {a_before[0]} ({a_before[1] / 1024:,.0f}) "
            f"| {a_after[0]} ({a_after[1] / 1024:,.0f}) |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
