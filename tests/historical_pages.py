"""Committed pages that cannot be rendered again by today's code, and why.

A page lands here only when the inputs it was rendered from no longer exist; its numbers are still
checked against its own CSVs (tests/test_committed_reports.py), but not the layout of later code.
"""

HISTORICAL = {
    "cpu-cifar10-fp32": (
        "rendered on 2026-12-03 by 0.1.0+g4f132c5 from four run directories that were not kept (no "
        "evidence folders existed then), so today's layout cannot be applied to it; its successor is "
        "reports/cpu-cifar10 (the bf16 experiment), rendered from committed evidence"
    ),
}

# Run versions a committed page shows with ".dirty", and why. The page's own version (the code that
# rendered it) must never be dirty; a run's recorded version stays as the run recorded it.
RECORDED_DIRTY = {
    "cpu-cifar10": {
        "0.1.0+g6e8ec1ec63.dirty": (
            "part 2 of the bf16 experiment ran from a clean checkout at 6e8ec1e (its invocation in "
            "reproduction.json records the clean version at its start); the command then rewrote "
            "reports/cpu-cifar10/reproduction.json, a tracked file, and the version rule of that "
            "commit counted any tracked file as dirty (since 6c741b4 only the package counts)"
        ),
    },
}
