"""Subcommands of the ``robustbench-aux`` CLI, one module each (see ``robustbench_aux.cli``)."""
