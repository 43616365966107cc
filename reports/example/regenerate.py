"""Regenerate the committed example report in this folder from fixture runs.

    PYTHONPATH=. python reports/example/regenerate.py

The runs are *fixture runs*: their accuracies come from a made-up formula in
``tests/fixtures_runs.py`` (written with the real evaluation writers, so every file has the
real format), not from training. The page says so at the top. Takes about 10 s on 2 CPU cores.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the fixture-run writer lives with the tests

from fixtures_runs import write_fixture_runs  # noqa: E402

from robustbench_aux.report import build_report  # noqa: E402

NOTE = (
    "FIXTURE RUNS WITH MADE-UP NUMBERS, not measurements: 9 method labels x 2 architectures x 2 seeds, "
    "accuracies from the formula in tests/fixtures_runs.py (200 images per block, all 19 corruptions). "
    "It shows what a report looks like; regenerate it with reports/example/regenerate.py."
)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        runs = write_fixture_runs(Path(tmp) / "runs", seeds=(0, 1), n=200)
        index = build_report(runs, HERE, title="Example report (fixture runs, made-up numbers)", note=NOTE)
    print(f"wrote {index}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
