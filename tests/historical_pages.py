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
