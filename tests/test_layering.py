"""The shared bottom modules and the metrics/report tables import without torch."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# a finder that refuses torch: importing it (or any torch.* module) raises ImportError. Blocking
# through a finder rather than ``sys.modules["torch"] = None`` keeps "torch" out of sys.modules,
# which scipy probes for array types.
_BLOCK = textwrap.dedent(
    """
    import importlib, importlib.abc, sys

    class NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("torch is blocked in this test: " + name)

    sys.meta_path.insert(0, NoTorch())
    for name in sys.argv[1:]:
        importlib.import_module(name)
    assert "torch" not in sys.modules
    print("imported", *sys.argv[1:])
    """
)

TORCH_FREE = (
    "robustbench_aux.catalog",
    "robustbench_aux.metrics",
    "robustbench_aux.report.tables",
)


def test_metrics_and_report_tables_import_without_torch():
    proc = subprocess.run(
        [sys.executable, "-c", _BLOCK, *TORCH_FREE],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["imported", *TORCH_FREE]


def test_the_blocker_does_block_torch():
    """The finder above really refuses torch (so the test above can fail)."""
    proc = subprocess.run(
        [sys.executable, "-c", _BLOCK, "robustbench_aux.corruptions"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "torch is blocked" in proc.stderr


def test_design_doc_lists_every_run_directory_file():
    """docs/design.md's run-directory table names every file robustbench_aux.rundir spells."""
    from robustbench_aux import rundir

    doc = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    table = doc[doc.index("**Run directory**") : doc.index("**Checkpoints**")]
    names = [v for k, v in vars(rundir).items() if k.isupper() and isinstance(v, str)]
    assert len(names) == 14  # the run directory's 11 and the evidence folder's 3 (described after it)
    missing = [n for n in names if n not in table]
    assert not missing, missing
    run = rundir.RunDir("r")
    assert run.summary == Path("r") / "eval" / "summary.json"
    assert run.last.name == "last.pt" and run.final.name == "final.pt" and run.lock.name == ".lock"


def test_import_contracts_hold():
    """The layering contract of pyproject.toml (docs/design.md): an upward import fails here."""
    lint = Path(sys.executable).with_name("lint-imports")
    assert lint.is_file(), "import-linter is part of the dev extra"
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "4 kept, 0 broken" in result.stdout
