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
import sys

from robustbench_aux import __version__
from robustbench_aux.errors import UserError

# Subcommand modules, in the order ``--help`` lists them.
COMMANDS = ("data", "corrupt", "train", "evaluate", "report", "export", "sweep", "reproduce", "check")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robustbench-aux",
        description="Train and compare corruption-robust CIFAR models: auxiliary training, its ablations "
        "and baselines; evaluate on CIFAR-C; render reports.",
        add_help=add_help,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name in COMMANDS:
        importlib.import_module(f"robustbench_aux.commands.{name}").add_parser(sub)
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
    return f"{what}{f': {paths}' if paths else ''} ({hint}); files already written are kept".replace("\n", " ")


def main(argv: list[str] | None = None) -> int:
    parser = get_args_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
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
    except OSError as exc:  # an output path that is a file, /dev/null, read-only or full
        print(f"error: {os_error_message(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished files are kept, rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
