"""Reader for the published CIFAR-10-C / CIFAR-100-C layout (and our generated copies of it).

Layout: ``<dir>/<corruption>.npy`` of shape (5·n, 32, 32, 3) uint8 with severity s in rows
``[(s-1)·n, s·n)`` and ``<dir>/labels.npy`` of shape (5·n,), the n test labels tiled 5 times.
The published files have n = 10,000. A generated directory also holds ``manifest.json``; if it
was generated for only some severities, the manifest's ``severities`` lists them (in file order)
and the reader serves only those.
Files are memory-mapped and read one (corruption, severity) block at a time.

The same layout holds CIFAR-10-C-bar (ten other corruptions, generated with ``corrupt --preset
cifar10-c-bar``): the reader tells the two apart by their file names (``benchmark``:
``cifar-c`` or ``cifar-c-bar``) and refuses a directory that mixes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robustbench_aux.catalog import ALL_19, CBAR_10, CIFAR_C, CIFAR_C_BAR, SEVERITIES
from robustbench_aux.cifar_c_layout import LABELS_NPY, MANIFEST, corruption_npy
from robustbench_aux.datasets.npy import check_images, check_labels, load_npy
from robustbench_aux.errors import UserError
from robustbench_aux.infra.jsonio import read_json_object

# the published folder names (Zenodo archives) -> dataset
PUBLISHED_DIRS = {"CIFAR-10-C": "cifar10", "CIFAR-100-C": "cifar100"}
# the folder names this suite generates CIFAR-C-bar into (never a CIFAR-C name)
CBAR_DIRS = {"cifar10": "CIFAR-10-C-bar-generated", "cifar100": "CIFAR-100-C-bar-generated"}
BENCHMARK_LABEL = {CIFAR_C: "CIFAR-C", CIFAR_C_BAR: "CIFAR-C-bar"}


@dataclass
class CifarCBlock:
    corruption: str
    severity: int
    images: np.ndarray  # (n, 32, 32, 3) uint8, memory-mapped view
    labels: np.ndarray  # (n,)


class CifarCReader:
    """Validated access to a CIFAR-C directory.

    ``require`` names corruptions that must be present (default: none beyond one); pass
    ``require=ALL_19`` to insist on the full published set. Unknown ``.npy`` files are ignored.
    ``fix`` replaces the advice that ends every error message (default: re-download or regenerate).
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        require: Iterable[str] = (),
        num_classes: int | None = None,
        fix: str | None = None,
    ):
        self.directory = Path(directory)
        if fix is not None:  # the caller's advice (e.g. a folder about to be deleted: no advice naming it)
            self.fix = fix
        elif self.directory.name in PUBLISHED_DIRS:
            # a published folder name: never suggest generating data under it
            self.fix = (
                f"re-download it with `robustbench-aux data download-c --dataset {PUBLISHED_DIRS[self.directory.name]} "
                f"--data {self.directory.parent}` (Zenodo record 3555552 for CIFAR-100-C, 2535967 for CIFAR-10-C)"
            )
        else:
            self.fix = (
                "re-download it (`robustbench-aux data download-c`: Zenodo record 3555552 for CIFAR-100-C, "
                f"2535967 for CIFAR-10-C) or regenerate it with `robustbench-aux corrupt --out {self.directory}`"
            )
        if not self.directory.is_dir():
            raise UserError(f"CIFAR-C directory {self.directory} does not exist; {self.fix}")
        found = {
            bench: [c for c in names if (self.directory / corruption_npy(c)).is_file()]
            for bench, names in ((CIFAR_C, ALL_19), (CIFAR_C_BAR, CBAR_10))
        }
        if found[CIFAR_C] and found[CIFAR_C_BAR]:
            raise UserError(
                f"{self.directory} mixes CIFAR-C files ({found[CIFAR_C][0]}.npy, ...) and CIFAR-C-bar files "
                f"({found[CIFAR_C_BAR][0]}.npy, ...); keep each benchmark in a directory of its own"
            )
        self.benchmark = CIFAR_C_BAR if found[CIFAR_C_BAR] else CIFAR_C
        if self.benchmark == CIFAR_C_BAR:
            self.fix = (
                f"regenerate it with `robustbench-aux corrupt --preset cifar10-c-bar --out {self.directory}` "
                "(CIFAR-C-bar is generated, never downloaded)"
            )
        self.corruptions = found[self.benchmark]
        missing = [c for c in require if c not in self.corruptions]
        if missing:
            raise UserError(
                f"{self.directory} lacks {len(missing)} corruption file(s): {', '.join(missing)}; {self.fix}"
            )
        if not self.corruptions:
            raise UserError(
                f"{self.directory} holds none of the 19 CIFAR-C or the ten CIFAR-C-bar corruption files; {self.fix}"
            )
        self.manifest = self._read_manifest()
        said = self.manifest.get("benchmark")
        if said not in (None, self.benchmark):
            raise UserError(
                f"{self.directory / MANIFEST} says benchmark {said!r} but the directory holds "
                f"{BENCHMARK_LABEL[self.benchmark]} files; {self.fix}"
            )
        self.severities = self._manifest_severities()
        k = len(self.severities)
        labels_path = self.directory / LABELS_NPY
        self.labels = load_npy(labels_path, fix=self.fix, mmap=False)
        rows = int(self.labels.shape[0]) if self.labels.ndim == 1 else -1
        if rows <= 0 or rows % k:
            raise UserError(f"{labels_path} has shape {self.labels.shape}, expected ({k}·n,); {self.fix}")
        check_labels(self.labels, labels_path, fix=self.fix, rows=rows, num_classes=num_classes)
        self.n = rows // k
        base = self.labels[: self.n]
        if not all(np.array_equal(base, self.labels[i * self.n : (i + 1) * self.n]) for i in range(1, k)):
            raise UserError(f"{labels_path} is not the test labels tiled {k} times; {self.fix}")
        self._arrays: dict[str, np.ndarray] = {}
        for c in self.corruptions:
            self._array(c)  # validate every file up front: fail before any work is done

    @property
    def provenance(self) -> str:
        """``generated`` where our manifest says so, else ``published``."""
        return "generated" if self.manifest.get("generated") else "published"

    @property
    def preset(self) -> str | None:
        return self.manifest.get("preset")

    def _manifest_severities(self) -> tuple[int, ...]:
        """Severities held, in file order: 1..5 unless a generated manifest lists fewer."""
        listed = self.manifest.get("severities")
        if listed is None:
            return tuple(SEVERITIES)
        if (
            not isinstance(listed, list)
            or not listed
            or len(set(listed)) != len(listed)
            or not all(isinstance(s, int) and s in SEVERITIES for s in listed)
        ):
            path = self.directory / MANIFEST
            raise UserError(f"{path} lists severities {listed!r}, expected distinct ints in 1..5; {self.fix}")
        return tuple(listed)

    def _read_manifest(self) -> dict:
        return read_json_object(self.directory / MANIFEST, self.fix, missing_ok=True)

    @property
    def label(self) -> str:
        """``CIFAR-C`` or ``CIFAR-C-bar``, for messages."""
        return BENCHMARK_LABEL[self.benchmark]

    def _array(self, corruption: str) -> np.ndarray:
        if corruption not in self._arrays:
            if corruption not in self.corruptions:
                raise UserError(f"{self.directory} has no {corruption}.npy; {self.fix}")
            path = self.directory / corruption_npy(corruption)
            x = load_npy(path, fix=self.fix)
            check_images(x, path, fix=self.fix, rows=len(self.labels))
            self._arrays[corruption] = x
        return self._arrays[corruption]

    def block(self, corruption: str, severity: int, n: int | None = None) -> CifarCBlock:
        """Images and labels of one (corruption, severity), optionally only the first ``n``."""
        if severity not in SEVERITIES:
            raise UserError(f"severity {severity} is outside 1..5")
        if severity not in self.severities:
            raise UserError(
                f"{self.directory} holds severities {', '.join(map(str, self.severities))} only, not "
                f"{severity}; generate it with `robustbench-aux corrupt --severities ...`"
            )
        stop = self.n if n is None else min(int(n), self.n)
        start = self.severities.index(severity) * self.n
        x = self._array(corruption)[start : start + stop]
        return CifarCBlock(corruption, severity, x, np.asarray(self.labels[start : start + stop]))

    def blocks(
        self,
        n: int | None = None,
        corruptions: Iterable[str] | None = None,
        severities: Iterable[int] | None = None,
    ) -> Iterator[CifarCBlock]:
        """Yield every (corruption, severity) block present, in canonical order."""
        for c in corruptions if corruptions is not None else self.corruptions:
            for s in severities if severities is not None else self.severities:
                yield self.block(c, s, n)

    def describe(self) -> dict:
        return {
            "benchmark": self.benchmark,
            "corruptions_dir": str(self.directory),
            "provenance": self.provenance,
            "preset": self.preset or ("cifar" if self.provenance == "published" else None),
            "n_per_severity": self.n,
            "severities": list(self.severities),
            "corruptions": list(self.corruptions),
            "manifest_sha256": self.manifest.get("files", {}),
        }
