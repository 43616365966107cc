"""Sweeps: a grid of runs (train, then evaluate) executed locally or on Slurm.

- :mod:`.grid` turns a grid TOML file into :class:`Job` objects (one run directory each);
- :mod:`.job` runs one job's steps, skipping finished steps and resuming interrupted ones;
- :mod:`.local` runs jobs as subprocesses with a live status table;
- :mod:`.slurm` submits them as a submitit job array (optional extra ``slurm``).
"""

from robustbench_aux.sweep.grid import Job, Step, Sweep, load_sweep
from robustbench_aux.sweep.job import run_job

__all__ = ["Job", "Step", "Sweep", "load_sweep", "run_job"]
