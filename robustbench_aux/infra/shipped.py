"""Files shipped inside the package (so they work from an installed wheel, not only a checkout).

``robustbench_aux/baselines/grids/*.toml`` (the reproduction and demo grids),
``robustbench_aux/baselines/ci/`` (the CI regression check) and ``robustbench_aux/reference/`` (the
RobustBench corruption leaderboards' published accuracies, with their source in its README). In a source checkout, ``baselines/grids``
and ``baselines/ci`` are links to them, so both paths work there.
"""

from __future__ import annotations

from pathlib import Path

from robustbench_aux.errors import UserError

_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # robustbench_aux/ (this file is in infra/)
BASELINES = _PACKAGE_DIR / "baselines"
GRIDS = BASELINES / "grids"
CI_SPEC = BASELINES / "ci" / "check.toml"
REFERENCE = _PACKAGE_DIR / "reference"
LEADERBOARD_CSV = REFERENCE / "robustbench_corruptions_leaderboard.csv"


def grid_names() -> list[str]:
    return sorted(p.stem for p in GRIDS.glob("*.toml"))


def resolve_grid(grid: str | Path) -> Path:
    """A grid file path as given, or the name of a shipped grid (``cifar100``, ``demo``)."""
    path = Path(grid)
    if path.is_file():
        return path
    shipped = GRIDS / f"{path.name.removesuffix('.toml')}.toml"
    if shipped.is_file() and (len(path.parts) == 1 or path.parent.as_posix().endswith("baselines/grids")):
        return shipped
    if path.is_dir():
        raise UserError(
            f"grid {grid} is a directory; give a TOML file or a shipped grid name ({', '.join(grid_names())})"
        )
    raise UserError(
        f"grid {grid} does not exist; give a TOML file or a shipped grid name ({', '.join(grid_names())})"
    )
