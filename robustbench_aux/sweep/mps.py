"""CUDA MPS for packed runs: several training processes share one GPU's compute concurrently.

Without MPS, processes on one GPU take turns (time slicing); with the MPS control daemon their
kernels run side by side, which is what fills a GPU that one small-image run leaves idle between
kernel launches. The daemon often cannot start (containers, no permission, a daemon of another
user), so :func:`start_mps` tries, proves it works with one tiny CUDA client, and otherwise returns
``None`` with the reason: the sweep then runs plain concurrent processes and says so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

CONTROL = "nvidia-cuda-mps-control"
# a client that must reach the GPU through the daemon (the MPS server starts on the first client)
PROBE = (
    "import torch; x = torch.ones(64, device='cuda'); torch.cuda.synchronize(); assert float(x.sum()) == 64"
)


@dataclass
class Mps:
    """A running MPS control daemon of this sweep (its own pipe and log folders)."""

    folder: Path

    @property
    def env(self) -> dict[str, str]:
        """What a client process needs in its environment to use this daemon."""
        return {
            "CUDA_MPS_PIPE_DIRECTORY": str(self.folder / "pipe"),
            "CUDA_MPS_LOG_DIRECTORY": str(self.folder / "log"),
        }

    def stop(self) -> None:
        """Ask the daemon to quit (it stops its servers); the folder is removed."""
        _control("quit", self.env)
        shutil.rmtree(self.folder, ignore_errors=True)


def _control(command: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CONTROL],
        input=command + "\n",
        text=True,
        capture_output=True,
        env={**os.environ, **env},
        timeout=timeout,
    )


def start_mps(probe: str = PROBE, probe_timeout: float = 45) -> tuple[Mps | None, str]:
    """Start a private MPS control daemon and check it serves a CUDA client.

    Returns ``(Mps, "")`` when it works, else ``(None, reason)`` with nothing left running.
    """
    if shutil.which(CONTROL) is None:
        return None, f"{CONTROL} not found"
    mps = Mps(Path(tempfile.mkdtemp(prefix="rba-mps-")))
    for sub in ("pipe", "log"):
        (mps.folder / sub).mkdir()
    env = {**os.environ, **mps.env}
    try:
        started = subprocess.run([CONTROL, "-d"], env=env, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(mps.folder, ignore_errors=True)
        return None, f"{CONTROL} -d failed ({exc})"
    if started.returncode != 0:
        shutil.rmtree(mps.folder, ignore_errors=True)
        detail = (started.stderr or started.stdout).strip().splitlines()
        return None, f"{CONTROL} -d exited {started.returncode}" + (f" ({detail[-1]})" if detail else "")
    try:
        rc = subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=probe_timeout
        )
        ok, why = rc.returncode == 0, (rc.stderr.strip().splitlines() or [f"exit {rc.returncode}"])[-1]
    except subprocess.TimeoutExpired:
        ok, why = False, f"a CUDA client did not start within {probe_timeout:.0f} s"
    if not ok:
        try:
            mps.stop()
        except (OSError, subprocess.TimeoutExpired):
            shutil.rmtree(mps.folder, ignore_errors=True)
        return None, f"the MPS daemon started but a CUDA client failed through it: {why[:160]}"
    return mps, ""
