"""The ``robustbench-aux`` command line: a thin layer that parses arguments and calls the library.

Each subcommand lives in ``robustbench_aux/commands/<name>.py`` with ``add_parser(subparsers)``,
which registers its parser and sets ``func`` (a callable taking the parsed args, returning an
exit code). Bad input raises :class:`~robustbench_aux.errors.UserError`: printed as one line,
exit status 2.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import re
import sys

from robustbench_aux._version import __version__
from robustbench_aux.errors import UserError

# Subcommand modules, in the order ``--help`` lists them.
COMMANDS = (
    "data",
    "corrupt",
    "train",
    "evaluate",
    "report",
    "export",
    "export_evidence",
    "sweep",
    "reproduce",
    "check",
)
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a program stopped by a closed pipe

_ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|exc|obj|ref|doc):`(~?)([^`<]+?)(?:\s*<[^>]*>)?`")


def plain_text(text: str | None) -> str | None:
    """Help text without reST markup: ``code`` -> code, :func:`~a.b.f` -> f, **bold** -> bold."""
    if not text:
        return text
    text = _ROLE.sub(lambda m: m.group(2).rsplit(".", 1)[-1] if m.group(1) else m.group(2), text)
    text = re.sub(r"``(.+?)``", r"\1", text, flags=re.S)
    return re.sub(r"\*\*(.+?)\*\*", r"\1", text, flags=re.S)


def _subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield action


def _group_required(parser: argparse.ArgumentParser) -> None:
    """List required options under their own heading, "required options", before the optional ones."""
    required = [a for a in parser._actions if a.required and a.option_strings]
    if not required or any(g.title == "required options" for g in parser._action_groups):
        return
    group = parser.add_argument_group("required options")
    for g in parser._action_groups:
        g._group_actions[:] = [a for a in g._group_actions if a not in required]
    group._group_actions.extend(required)
    parser._action_groups.remove(group)
    parser._action_groups.insert(1, group)  # after the positional arguments


def _polish(parser: argparse.ArgumentParser, top: bool = True) -> None:
    """Applied to every parser: plain-text help, required options marked, -v/-q after the subcommand."""
    parser.description = plain_text(parser.description)
    parser.epilog = plain_text(parser.epilog)
    for action in parser._actions:
        action.help = plain_text(action.help)
    _group_required(parser)
    subs = list(_subparsers(parser))
    if not top and not subs:
        taken = {s for a in parser._actions for s in a.option_strings}
        if not taken & {"-v", "--verbose", "-q", "--quiet"}:
            # SUPPRESS: given only here, they do not reset the top-level value when absent
            parser.add_argument(
                "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging"
            )
            parser.add_argument(
                "-q",
                "--quiet",
                action="store_true",
                default=argparse.SUPPRESS,
                help="warnings and errors only",
            )
    for sub in subs:
        for choice in sub._choices_actions:
            choice.help = plain_text(choice.help)
        for child in sub.choices.values():
            _polish(child, top=False)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robustbench-aux",
        description="Train and compare corruption-robust CIFAR models: auxiliary training, its ablations "
        "and baselines; evaluate on CIFAR-C; render reports.",
        add_help=add_help,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (also after the command)")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="warnings and errors only (also after the command)"
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name in COMMANDS:
        importlib.import_module(f"robustbench_aux.commands.{name}").add_parser(sub)
    _polish(parser)
    return parser


def os_error_message(exc: OSError) -> str:
    """One line for a failed file operation: what failed, on which path, and what to check."""
    what = exc.strerror or type(exc).__name__
    paths = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
    hint = {
        errno.ENOSPC: "free some space or write elsewhere",
        errno.EDQUOT: "free some space or write elsewhere",
        errno.EROFS: "the file system is read-only; write elsewhere",
        errno.EACCES: "check the permissions or write elsewhere",
        errno.EPERM: "check the permissions or write elsewhere",
        errno.ENOTDIR: "a path component is a file, not a directory",
        errno.EISDIR: "a directory is in the way of a file",
    }.get(exc.errno, "check the path")
    return f"{what}{f': {paths}' if paths else ''} ({hint}); files already written are kept".replace(
        "\n", " "
    )


def _run(argv: list[str] | None) -> int:
    parser = get_args_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # as typed (reproduce records it)
    if args.verbose and args.quiet:
        parser.error("-v/--verbose and -q/--quiet exclude each other")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_status", 2)
    except BrokenPipeError:
        raise  # handled in main(): the reader of our output went away, not a bad input
    except OSError as exc:  # an output path that is a file, /dev/null, read-only or full
        print(f"error: {os_error_message(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished files are kept, rerun the same command to resume", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    try:
        code = _run(argv)
        sys.stdout.flush()  # a closed pipe shows up here at the latest, not at interpreter exit
        return code
    except BrokenPipeError:
        # the reader went away (`robustbench-aux ... | head`): no traceback; stdout goes nowhere from now on
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
