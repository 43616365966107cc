"""CLI habits: required options shown as such, -v/-q after the subcommand, closed pipes, plain help."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from robustbench_aux import cli
from robustbench_aux.cli import get_args_parser, main, plain_text

REPO = Path(__file__).resolve().parents[1]


def _all_parsers(parser, path=("robustbench-aux",)):
    yield path, parser
    for sub in cli._subparsers(parser):
        for name, child in sub.choices.items():
            yield from _all_parsers(child, (*path, name))


def test_required_options_are_listed_as_required(capsys):
    for path, parser in _all_parsers(get_args_parser()):
        required = [a for a in parser._actions if a.required and a.option_strings]
        for action in required:
            group = next(g for g in parser._action_groups if action in g._group_actions)
            assert group.title == "required options", (path, action.option_strings)
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    out = capsys.readouterr().out
    assert "required options:\n  -o OUT, --out OUT" in out
    assert " -o OUT" in out.split("\n\n")[0] and "[-o OUT]" not in out  # in usage without brackets


def test_help_has_no_rest_markup(capsys):
    for path, parser in _all_parsers(get_args_parser()):
        texts = [parser.description or "", parser.epilog or ""] + [a.help or "" for a in parser._actions]
        for text in texts:
            assert "``" not in text and ":func:`" not in text and ":class:`" not in text, (path, text[:80])
    assert (
        plain_text("see :class:`~robustbench_aux.errors.UserError` and ``x = 1``")
        == "see UserError and x = 1"
    )
    assert plain_text(":func:`robustbench_aux.evaluation.evaluate`") == "robustbench_aux.evaluation.evaluate"


@pytest.mark.parametrize("flag", ["-v", "--verbose", "-q", "--quiet"])
def test_verbosity_flags_after_the_subcommand(tmp_path, flag, monkeypatch):
    seen = {}
    monkeypatch.setattr(logging, "basicConfig", lambda **kw: seen.update(kw))
    assert main(["data", "info", "--data", str(tmp_path), flag]) == 0
    want = logging.DEBUG if flag in ("-v", "--verbose") else logging.WARNING
    assert seen["level"] == want
    assert main([flag, "data", "info", "--data", str(tmp_path)]) == 0 and seen["level"] == want
    assert main(["data", "info", "--data", str(tmp_path)]) == 0 and seen["level"] == logging.INFO


def test_verbose_and_quiet_exclude_each_other(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["-v", "data", "info", "--data", str(tmp_path), "-q"])
    assert e.value.code == 2 and "exclude each other" in capsys.readouterr().err


def test_closed_pipe_gives_no_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "robustbench_aux.cli", "sweep", "cifar100", "--dry-run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    proc.stdout.close()  # the reader is gone before anything is written, like `| head -0`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == cli.EXIT_BROKEN_PIPE
    assert "Traceback" not in err and "BrokenPipe" not in err
