"""``sweep --executor slurm`` through a real single-node Slurm cluster (tests/slurm_cluster.py).

Marked ``slurm``: not part of ``make test``; ``make slurm-test`` installs the Debian packages and
runs these, and ``.ci/run`` calls it. If the daemons cannot start, every test here fails with the
reason ("slurm cluster did not start: ...") instead of being skipped.

One module-scoped scenario feeds the four cases, so the cluster and the runs are made once:

- the toy grid (two plain runs of 10 short epochs on synthetic data, evaluated on a small generated
  CIFAR-C, and one cell with an unknown method) runs with the local executor: the reference;
- the same grid is submitted with ``sweep --executor slurm --wait``; while it runs, the test
  preempts it (a job in the higher-priority partition takes both CPUs: Slurm requeues what runs
  in ``batch``) and, once run s0 has resumed and trained on, sends that task SIGUSR2 (the signal
  Slurm sends before the time limit: submitit checkpoints and requeues it itself);
- the grid is submitted again.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import pickle
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from slurm_cluster import URGENT, ClusterUnavailable, SlurmCluster

from robustbench_aux.cli import main

pytestmark = pytest.mark.slurm

GOOD = ("plain-test_tiny-s0", "plain-test_tiny-s1")
BAD = "no_such_method-test_tiny-s0"
EPOCHS = 40  # enough that an idle machine cannot finish run s0 between its two interruptions
GRID = """
[defaults]
dataset = "synthetic10"
recipe = "smoke"
out = "{out}"
corruptions = "{corruptions}"
n_train = 256
eval_n = 32
epochs = {epochs}
device = "cpu"

[[runs]]
methods = ["plain"]
archs = ["test_tiny"]
seeds = [0, 1]

[[runs]]
methods = ["no_such_method"]
archs = ["test_tiny"]
seeds = [0]
"""
SLURM_FLAGS = ["--slurm-gpus", "0", "--slurm-cpus", "1", "--slurm-mem", "400M", "--slurm-time", "30"]
SLURM_FLAGS += [
    "--slurm-array-parallelism",
    "2",
    "--slurm-extra",
    "comment=robustbench-aux test",
    "--poll",
    "1",
]
TIMING = ("images_per_s", "seconds")


def cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    """``robustbench-aux ARGS`` in this process (its import of torch is paid once) with ``env`` as
    the environment, which the commands it starts (sbatch, the local runs) inherit."""
    saved = dict(os.environ)
    out, err = io.StringIO(), io.StringIO()
    os.environ.clear()
    os.environ.update(env)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(list(args))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return subprocess.CompletedProcess(args, rc, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def cluster():
    started = time.monotonic()
    try:
        c = SlurmCluster().start()
    except ClusterUnavailable as exc:
        pytest.fail(f"slurm cluster did not start: {exc}", pytrace=False)
    print(f"\nslurm cluster up in {time.monotonic() - started:.1f} s ({c.conf})")
    yield c
    root, pids = c.root, [p.pid for p in c.procs.values()]
    forced = c.stop()
    assert forced == [], f"the cluster did not stop cleanly: {forced}"
    assert not root.exists() and not any(Path(f"/proc/{pid}").exists() for pid in pids)


def _epochs(run: Path) -> int:
    try:
        return len((run / "metrics.csv").read_text().strip().splitlines()) - 1
    except OSError:
        return 0


def _wait(cond, what: str, timeout: float = 240, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"sweep ended before {what}:\n{out}\n{err}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def scenario(cluster, tmp_path_factory):
    """Runs everything once; returns what the cases check."""
    tmp = tmp_path_factory.mktemp("slurm-sweep")
    env = {**cluster.env, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    corruptions = tmp / "C"
    made = cli(
        "corrupt", "--dataset", "synthetic10", "--out", str(corruptions), "--n", "200",
        "--corruptions", "gaussian_noise,defocus_blur", "--device", "cpu", "-q", env=env,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    grids = {}
    for label in ("local", "slurm"):
        grids[label] = tmp / f"{label}.toml"
        grids[label].write_text(GRID.format(out=tmp / label, corruptions=corruptions, epochs=EPOCHS))
    folder = str(tmp / "submitit")
    res: dict = {"tmp": tmp, "folder": Path(folder), "grid": grids["slurm"], "env": env}

    t0 = time.monotonic()
    res["local"] = cli("sweep", str(grids["local"]), "--workers", "2", env=env)
    res["local_s"] = time.monotonic() - t0

    flags = [str(grids["slurm"]), "--executor", "slurm", "--slurm-folder", folder, *SLURM_FLAGS]
    res["dry_run"] = cli("sweep", *flags, "--dry-run", env=env)

    t0 = time.monotonic()  # the sweep as a process of its own, followed while the test interrupts it
    proc = subprocess.Popen(
        [sys.executable, "-m", "robustbench_aux", "sweep", *flags, "--wait"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run0 = tmp / "slurm" / GOOD[0]
        # 1) preemption: once run s0 has trained an epoch, a job in the urgent partition takes both CPUs
        _wait(lambda: _epochs(run0) >= 1, "run s0's first epoch", proc=proc)
        assert not (run0 / "final.pt").exists(), "run s0 finished before it could be preempted"
        urgent = cluster.run(
            "sbatch", f"--partition={URGENT}", "--cpus-per-task=2", "--output=/dev/null", "--wrap", "sleep 1"
        )
        res["urgent_job"] = urgent.stdout.split()[-1]
        log0 = run0 / "sweep.log"
        res["preempted_at_epoch"] = _epochs(run0)
        _wait(lambda: "restart 1" in log0.read_text(), "run s0 to be requeued and restarted", proc=proc)
        # 2) the time-limit warning: once the resumed run has trained on, SIGUSR2 to its task
        res["resumed_at_epoch"] = resumed_at = _epochs(run0)
        _wait(lambda: _epochs(run0) > resumed_at, "run s0 to train an epoch after resuming", proc=proc)
        assert not (run0 / "final.pt").exists(), f"run s0 finished before the second interruption: {res}"
        task0 = re.search(r"slurm job (\S+) ", log0.read_text()).group(1)
        cluster.run("scancel", "--signal=USR2", task0)
        res["usr2_at_epoch"] = _epochs(run0)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:  # the test failed while the sweep still follows its tasks
            proc.kill()
            proc.communicate()
    res["slurm"] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    res["slurm_s"] = time.monotonic() - t0

    res["before_resubmit"] = {
        name: (
            (tmp / "slurm" / name / "final.pt").stat().st_mtime_ns,
            (tmp / "slurm" / name / "sweep.log").read_text(),
        )
        for name in GOOD
    }
    t0 = time.monotonic()
    res["resubmit"] = cli("sweep", *flags, "--wait", env=env)
    res["resubmit_s"] = time.monotonic() - t0
    res["refused"] = {
        "partition": cli("sweep", *flags, "--slurm-partition", "nosuch", env=env),
        "gpus": cli("sweep", *flags, "--slurm-gpus", "1", env=env),  # the last value given wins
        "mem": cli("sweep", *flags, "--slurm-mem", "64G", env=env),
    }
    print(
        f"\nlocal sweep {res['local_s']:.0f} s, slurm sweep with two interruptions {res['slurm_s']:.0f} s, "
        f"resubmission {res['resubmit_s']:.0f} s"
    )
    return res


def _metrics(run: Path):
    with open(run / "metrics.csv") as f:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]


def _tensors(obj, prefix=""):
    if isinstance(obj, torch.Tensor):
        return {prefix: obj}
    out = {}
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    for k, v in items:
        out.update(_tensors(v, f"{prefix}/{k}"))
    return out


def _same_run(a: Path, b: Path) -> None:
    assert _metrics(a) == _metrics(b) and len(_metrics(a)) == EPOCHS, f"{b.name}: metrics.csv differs"
    ta = _tensors(torch.load(a / "final.pt", map_location="cpu", weights_only=False))
    tb = _tensors(torch.load(b / "final.pt", map_location="cpu", weights_only=False))
    assert ta.keys() == tb.keys() and len(ta) > 10
    differ = [k for k in ta if not torch.equal(ta[k], tb[k])]
    assert not differ, f"{b.name}: final.pt tensors differ: {differ[:5]}"
    assert (a / "eval" / "results.csv").read_bytes() == (b / "eval" / "results.csv").read_bytes()


def _submitted(text: str) -> dict[str, str]:
    """{run: slurm id} from sweep's '  <id>  <run>  (task log: ...)' lines."""
    return {m.group(2): m.group(1) for m in re.finditer(r"^  (\S+)  (\S+)  \(task log: ", text, re.M)}


def test_every_run_is_an_array_task_and_writes_what_the_local_executor_writes(scenario):
    local, slurm = scenario["local"], scenario["slurm"]
    assert local.returncode == 1 and "summary: 2 done, 1 failed" in local.stdout, local.stdout + local.stderr
    assert slurm.returncode == 1, slurm.stdout + slurm.stderr
    assert "summary: 2 done, 1 failed" in slurm.stdout
    ids = _submitted(slurm.stdout)
    assert set(ids) == {*GOOD, BAD}
    array = {i.split("_")[0] for i in ids.values()}
    assert len(array) == 1 and sorted(i.split("_")[1] for i in ids.values()) == ["0", "1", "2"]
    folder = scenario["folder"]
    for name in GOOD:
        run = scenario["tmp"] / "slurm" / name
        log = run / "sweep.log"
        assert f"# slurm job {ids[name]} " in log.read_text()  # ran as that array task
        with open(folder / f"{ids[name]}_0_result.pkl", "rb") as f:
            assert pickle.load(f) == ("success", name)
        _same_run(scenario["tmp"] / "local" / name, run)
    # the dry run printed the very job script that was submitted
    script = (folder / f"{next(iter(array))}_submission.sh").read_text()
    assert script in scenario["dry_run"].stdout
    for line in ("--array=0-2%2", "--cpus-per-task=1", "--mem=400M", "--time=30", "--requeue"):
        assert f"#SBATCH {line}\n" in script
    assert "#SBATCH --comment='robustbench-aux test'" in script and "gpus" not in script


def test_a_preempted_run_is_requeued_and_resumes_to_the_same_result(scenario, cluster):
    run = scenario["tmp"] / "slurm" / GOOD[0]
    log = (run / "sweep.log").read_text()
    trains = [ln for ln in log.splitlines() if ln.startswith("$ ") and " train " in ln]
    # three attempts of one task: the first, after the preemption, after SIGUSR2
    assert len(trains) == 3, log
    assert "--resume" not in trains[0] and all(t.endswith("--resume") for t in trains[1:])
    assert all(f"restart {n}" in log for n in (0, 1, 2))
    assert "resuming" in log
    slurm = scenario["slurm"]
    assert "pending plain-test_tiny-s0" in slurm.stdout  # followed through the requeue
    assert scenario["usr2_at_epoch"] < EPOCHS
    err = (scenario["folder"] / f"{_submitted(slurm.stdout)[GOOD[0]]}_0_log.err").read_text()
    assert "DUE TO PREEMPTION" in err and "Caught signal SIGUSR2" in err and "DUE TO JOB REQUEUE" in err
    # metrics.csv holds every epoch once, and everything equals the uninterrupted local run
    _same_run(scenario["tmp"] / "local" / GOOD[0], run)


def test_a_failed_run_is_reported_with_its_log_and_the_others_finish(scenario):
    slurm = scenario["slurm"]
    run = scenario["tmp"] / "slurm" / BAD
    ids = _submitted(slurm.stdout)
    line = next(ln for ln in slurm.stderr.splitlines() if ln.startswith(f"  failed: {BAD}:"))
    assert "unknown method 'no_such_method'" in line
    assert f"(log: {run / 'sweep.log'}; slurm log: {scenario['folder'] / (ids[BAD] + '_0_log.err')})" in line
    assert re.search(rf"^failed +{BAD} \(slurm {ids[BAD]}\)", slurm.stdout, re.M)
    for name in GOOD:
        assert re.search(rf"^done +{name} \(slurm ", slurm.stdout, re.M)
        assert (scenario["tmp"] / "slurm" / name / "eval" / "summary.json").is_file()


def test_resubmitting_skips_finished_runs(scenario):
    again = scenario["resubmit"]
    assert again.returncode == 1, again.stdout + again.stderr
    assert f"skipping 2 finished run(s): {', '.join(GOOD)}" in again.stdout
    assert set(_submitted(again.stdout)) == {BAD}  # only the unfinished run, as a plain job
    assert "summary: 0 done, 1 failed" in again.stdout
    for name in GOOD:
        run = scenario["tmp"] / "slurm" / name
        assert (run / "final.pt").stat().st_mtime_ns == scenario["before_resubmit"][name][0]
        assert (run / "sweep.log").read_text() == scenario["before_resubmit"][name][1]


def test_cluster_refusals_are_one_line_errors(scenario):
    refused = scenario["refused"]
    p = refused["partition"]
    assert p.returncode == 2
    assert p.stderr.strip().splitlines()[-1] == (
        "error: no partition 'nosuch' on this cluster (sinfo lists: batch, urgent)"
    )
    for key in ("gpus", "mem"):  # sbatch itself refuses: no GPU on the node, more memory than it has
        p = refused[key]
        assert p.returncode == 2, p.stdout + p.stderr
        assert p.stderr.strip().splitlines()[-1].startswith("error: sbatch refused the job: "), p.stderr
        assert "submitted" not in p.stdout
