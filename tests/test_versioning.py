"""The code version a run, an evaluation and a page record: dirty only when the package differs."""

from __future__ import annotations

import subprocess

from robustbench_aux.infra import versioning


def _fake_git(status_out: str, calls: list):
    def git(*args):
        calls.append(args)
        out = "0123456789\n" if args[0] == "rev-parse" else status_out
        return subprocess.CompletedProcess(["git", *args], 0, out, "")

    return git


def test_dirty_looks_at_the_package_only(monkeypatch):
    calls: list = []
    monkeypatch.setattr(versioning, "_git", _fake_git("", calls))
    assert versioning.code_version().endswith("+g0123456789")
    status = next(c for c in calls if c[0] == "status")
    assert status[-2:] == ("--", ".")  # a pathspec: the package directory, where git runs
    monkeypatch.setattr(versioning, "_git", _fake_git(" M engine/trainer.py\n", calls))
    assert versioning.code_version().endswith("+g0123456789.dirty")
