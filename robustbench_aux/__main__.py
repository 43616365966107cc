"""Allow ``python -m robustbench_aux`` (and ``torchrun -m robustbench_aux``)."""

from robustbench_aux.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
