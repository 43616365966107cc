"""The Slurm path of ``sweep`` without a cluster: options checked before submission, the job
script of ``--dry-run``, following tasks (a stand-in ``squeue`` on PATH), a task whose step Slurm
stopped. The cluster itself is exercised by tests/test_sweep_slurm.py (marker ``slurm``)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from robustbench_aux.cli import main
from robustbench_aux.errors import UserError
from robustbench_aux.sweep import load_sweep
from robustbench_aux.sweep.slurm_options import SlurmOptions, parse_time, slurm_options

submitit = pytest.importorskip("submitit")

GRID = """{slurm}
[defaults]
dataset = "synthetic10"
recipe = "smoke"
out = "{out}"
n_train = 64
epochs = 1
device = "cpu"

[[runs]]
methods = ["plain"]
archs = ["test_tiny"]
seeds = [0, 1, 2]
"""
REPO = Path(__file__).resolve().parents[1]


def _grid(tmp_path, slurm: str = "") -> Path:
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID.format(out=tmp_path / "runs", slurm=slurm))
    return grid


@pytest.mark.parametrize(
    "text, minutes",
    [(90, 90), ("90", 90), ("1:30", 2), ("2:00:00", 120), ("1-00", 1440), ("1-2:30", 1590), ("0-0:1:1", 2)],
)
def test_time_formats(text, minutes):
    assert parse_time(text) == minutes


@pytest.mark.parametrize("text", ["0", "0:59", "1h", "-5", "1-", "", True, 2.5])
def test_bad_times(text):
    with pytest.raises(UserError, match="--slurm-time"):
        parse_time(text)


def test_dry_run_prints_the_job_script_grid_values_and_flags_combined(tmp_path, capsys):
    slurm = '[slurm]\npartition = "gpu"\ntime = "2:00:00"\ncpus = 8\nmem = 16000\nextra = ["account=proj"]\n'
    grid = _grid(tmp_path, slurm)
    folder = tmp_path / "logs"
    argv = ["sweep", str(grid), "--executor", "slurm", "--dry-run", "--slurm-folder", str(folder)]
    argv += ["--slurm-gpus", "2", "--slurm-mem", "32g", "--slurm-array-parallelism", "2"]
    argv += ["--slurm-extra=--qos=high", "--slurm-extra", "exclusive"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    script = out[out.index("#!/bin/bash") :]
    for line in (
        "--array=0-2%2",
        "--partition=gpu",  # from the grid
        "--time=120",
        "--cpus-per-task=8",
        "--mem=32G",  # the flag replaces the grid's 16000
        "--gpus-per-node=2",
        "--qos=high",
        "--exclusive",
        "--requeue",
        "--signal=USR2@90",
        "--job-name=robustbench-aux",
        f"--output={folder}/%A_%a_0_log.out",
    ):
        assert f"#SBATCH {line}\n" in script, line
    assert "--account" not in script  # --slurm-extra replaces the grid's extra list, like every flag
    assert "#   task 2: plain-test_tiny-s2" in out
    assert "-m submitit.core._submit" in script and str(folder) in script
    assert not folder.exists() and not (tmp_path / "runs").exists()  # nothing written


def test_dry_run_counts_only_unfinished_runs(tmp_path, capsys):
    grid = _grid(tmp_path)
    for seed in (0, 1):  # finished runs are left out of the array
        done = tmp_path / "runs" / f"plain-test_tiny-s{seed}"
        done.mkdir(parents=True)
        (done / "final.pt").write_bytes(b"")
    assert main(["sweep", str(grid), "--executor", "slurm", "--dry-run", "--slurm-gpus", "0"]) == 0
    out = capsys.readouterr().out
    assert "#   the one task: plain-test_tiny-s2" in out
    assert "--array" not in out and "gpus" not in out  # one run: a plain job, no GPU asked for


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--slurm-time", "soon"], "--slurm-time must be minutes (e.g. 1440) or Slurm's"),
        (["--slurm-gpus", "-1"], "--slurm-gpus must be an integer in 0..65534 (ASCII digits), got '-1'"),
        (["--slurm-cpus", "0"], "--slurm-cpus must be an integer in 1..65534 (ASCII digits), got 0"),
        (["--slurm-mem", "lots"], "--slurm-mem must be a number of MB or a size like 16G"),
        (["--slurm-array-parallelism", "x"], "--slurm-array-parallelism must be an integer in 1..65534"),
        (["--slurm-partition", "a b"], "--slurm-partition must be a partition name"),
        (["--slurm-extra=-A"], "--slurm-extra: --account needs a value (--account=VALUE), got '-A'"),
        (["--slurm-extra=--array=0-3"], "--slurm-extra: --array cannot be given here (the sweep makes"),
        (["--slurm-extra", "time=5"], "--slurm-extra: --time cannot be given here (use time / --slurm-time)"),
        (["--slurm-extra", "qos=a", "--slurm-extra", "qos=b"], "--slurm-extra: --qos is given twice"),
        (["--poll", "0"], "--poll must be a positive number of seconds"),
    ],
)
def test_bad_slurm_values_are_one_line_errors_before_anything_is_submitted(tmp_path, capsys, flags, message):
    folder = tmp_path / "logs"
    argv = ["sweep", str(_grid(tmp_path)), "--executor", "slurm", "--slurm-folder", str(folder), *flags]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {message}"), err
    assert not folder.exists() and not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "table, message",
    [
        ('[slurm]\npartitions = "gpu"\n', "unknown key 'partitions'"),
        ("[slurm]\ngpus = 1.5\n", "[slurm] gpus must be an integer in 0..65534 (ASCII digits), got 1.5"),
        ('[slurm]\nextra = "account=x"\n', "[slurm] extra must be a list of sbatch flags"),
        ('slurm = "gpu"\n', "[slurm] must be a table"),
    ],
)
def test_bad_slurm_tables_name_the_key(tmp_path, table, message):
    with pytest.raises(UserError, match=None) as info:
        load_sweep(_grid(tmp_path, table))
    assert message in str(info.value)


def test_grid_table_and_flags_give_the_sbatch_parameters():
    options = slurm_options(
        {"partition": "a,b", "time": 30, "gpus": 0, "extra": ["mail-type=END"]}, {"cpus": "4"}
    )
    assert options == SlurmOptions(
        partition="a,b", time_min=30, gpus=0, cpus=4, extra=(("mail-type", "END"),)
    )
    params = options.sbatch_params()
    assert "gpus_per_node" not in params and params["cpus_per_task"] == 4
    assert params["additional_parameters"] == {"requeue": True, "mail_type": "END"}


def test_slurm_executor_without_slurm_commands_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert (
        main(["sweep", str(_grid(tmp_path)), "--executor", "slurm", "--slurm-folder", str(tmp_path / "l")])
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: sbatch not found: run the slurm executor where Slurm's client commands are installed "
        "(sweep --dry-run --executor slurm prints the job script without them)"
    ]


# ---------------------------------------------------------------- following tasks (a stand-in squeue)


def _fake_squeue(tmp_path, monkeypatch) -> Path:
    """An ``squeue`` that prints ``states.txt`` (``id|STATE`` lines) or fails if ``fail`` exists."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    states = tmp_path / "states.txt"
    states.write_text("")
    script = bindir / "squeue"
    script.write_text(
        f'#!/bin/sh\nif [ -e {tmp_path}/fail ]; then echo "squeue: error: timeout" >&2; exit 1; fi\n'
        f'echo "$@" >> {tmp_path}/calls\ncat {states}\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return states


def _tasks(tmp_path, n=3):
    from submitit.slurm.slurm import SlurmJob

    from robustbench_aux.sweep.slurm_status import Task

    jobs = load_sweep(_grid(tmp_path)).jobs[:n]
    return [Task(job, SlurmJob(folder=tmp_path / "logs", job_id=f"7_{i}")) for i, job in enumerate(jobs)]


def test_follow_reports_each_task_through_a_requeue(tmp_path, monkeypatch):
    from submitit.core.utils import cloudpickle_dump

    from robustbench_aux.sweep import slurm_status

    states = _fake_squeue(tmp_path, monkeypatch)
    tasks = _tasks(tmp_path)
    (tmp_path / "logs").mkdir()
    failed_run = tasks[1].job.run_dir
    failed_run.mkdir(parents=True)
    (failed_run / "sweep.log").write_text("$ train\nerror: unknown method 'x'\n")
    script = iter(
        [
            "7_0|RUNNING\n7_1|RUNNING\n7_2|PENDING\n",
            "7_0|PENDING\n7_1|COMPLETED\n7_2|RUNNING\n",  # 7_0 requeued; 7_1 ended
            "7_0|RUNNING\n7_1|COMPLETED\n7_2|CANCELLED\n",  # 7_2 cancelled: no result file
            "7_0|COMPLETED\n7_1|COMPLETED\n7_2|CANCELLED\n",
        ]
    )
    lines: list[str] = []
    now = [0.0]

    def clock():
        now[0] += 20.0  # each poll is 20 "seconds" later
        return now[0]

    def poll_effects(seconds):
        text = next(script, None)
        if text is None:
            return
        states.write_text(text)
        if "7_1|COMPLETED" in text:
            cloudpickle_dump(("error", "Traceback ... RuntimeError"), tasks[1].handle.paths.result_pickle)
        if text.startswith("7_0|COMPLETED"):
            cloudpickle_dump(("success", tasks[0].job.name), tasks[0].handle.paths.result_pickle)

    poll_effects(0)
    outcomes = slurm_status.follow(
        tasks, poll_s=1, grace_s=30, echo=lines.append, clock=clock, sleep=poll_effects
    )
    assert [o.state for o in outcomes] == ["done", "failed", "failed"]
    assert outcomes[1].detail == "error: unknown method 'x'"
    assert outcomes[2].detail == "ended without a result (Slurm state CANCELLED)"
    text = "\n".join(lines)
    assert "pending plain-test_tiny-s0 (slurm 7_0)" in text  # followed through the requeue
    assert text.count("running plain-test_tiny-s0 (slurm 7_0)") == 2
    assert "--array --states=all --jobs=7 --format=%i|%T" in (tmp_path / "calls").read_text()


def test_a_result_file_of_a_requeued_task_is_not_final_and_squeue_errors_change_nothing(
    tmp_path, monkeypatch
):
    from submitit.core.utils import cloudpickle_dump

    from robustbench_aux.sweep import slurm_status

    states = _fake_squeue(tmp_path, monkeypatch)
    (task,) = _tasks(tmp_path, 1)
    (tmp_path / "logs").mkdir()
    cloudpickle_dump(("success", task.job.name), task.handle.paths.result_pickle)
    steps = iter(["fail", "7_0|PENDING\n", "7_0|COMPLETED\n"])
    seen = []

    def poll_effects(seconds):
        step = next(steps)
        seen.append(step)
        (tmp_path / "fail").unlink(missing_ok=True)
        if step == "fail":
            (tmp_path / "fail").write_text("")
        else:
            states.write_text(step)

    states.write_text("7_0|RUNNING\n")
    lines: list[str] = []
    (outcome,) = slurm_status.follow([task], poll_s=1, echo=lines.append, sleep=poll_effects)
    # RUNNING with a result file: not final (the task may still be requeued); the squeue failure
    # changed no state; PENDING again; COMPLETED: the result counts
    assert outcome.state == "done" and seen == ["fail", "7_0|PENDING\n", "7_0|COMPLETED\n"]
    assert [ln.split()[0] for ln in lines] == ["running", "pending", "done"]


def test_in_flight_runs_are_not_resubmitted(tmp_path, monkeypatch):
    from robustbench_aux.sweep.slurm import in_flight, last_submission, record

    states = _fake_squeue(tmp_path, monkeypatch)
    tasks = _tasks(tmp_path, 2)
    for t in tasks:
        record(t.job, t.handle)
    assert last_submission(tasks[1].job) == "7_1"
    states.write_text("7_0|RUNNING\n7_1|FAILED\n")
    assert in_flight([t.job for t in tasks]) == {"plain-test_tiny-s0": "7_0"}
    (tmp_path / "fail").write_text("")
    with pytest.raises(UserError, match="squeue failed"):
        in_flight([t.job for t in tasks])


def test_a_step_stopped_by_sigterm_waits_for_slurm_then_fails(tmp_path, monkeypatch):
    """Slurm stopping a task (preemption) kills its step with SIGTERM; the task must not record a
    failure while Slurm is about to requeue it, so it waits; if no SIGKILL comes, it fails."""
    from robustbench_aux.sweep import slurm

    (job,) = load_sweep(_grid(tmp_path)).jobs[:1]
    waited = []
    monkeypatch.setattr(slurm, "run_job", lambda job, note="": -15)
    monkeypatch.setattr(slurm, "await_stop", lambda job, wait_s: waited.append(wait_s))
    monkeypatch.setenv("SLURM_JOB_ID", "12")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "11")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    with pytest.raises(RuntimeError, match="failed with exit code -15"):
        slurm.ResumableJob(job)()
    assert waited == [slurm.STOP_WAIT_S]
    assert slurm.task_note().startswith("slurm job 11_1 (job id 12) on ")
    monkeypatch.delenv("SLURM_JOB_ID")  # not under Slurm (submitit's local executor): no wait
    waited.clear()
    with pytest.raises(RuntimeError):
        slurm.ResumableJob(job)()
    assert waited == []


def test_await_stop_notes_the_wait_in_the_log(tmp_path):
    from robustbench_aux.sweep.slurm import await_stop

    (job,) = load_sweep(_grid(tmp_path)).jobs[:1]
    job.run_dir.mkdir(parents=True)
    await_stop(job, 0.01)
    assert "stopped by SIGTERM: waiting for Slurm" in (job.run_dir / "sweep.log").read_text()


# ---------------------------------------------------------------- the cluster fixture and CI wiring


def test_cluster_fixture_says_why_it_cannot_start(tmp_path, monkeypatch):
    from slurm_cluster import ClusterUnavailable, SlurmCluster

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(
        ClusterUnavailable, match=r"munged, slurmctld, slurmd, .* not found: install Debian's"
    ):
        SlurmCluster().start()


def test_make_slurm_test_installs_the_packages_and_runs_the_marked_tests():
    out = subprocess.run(
        ["make", "-n", "slurm-test", "STAMP=/dev/null"], capture_output=True, text=True, cwd=REPO
    ).stdout
    assert (
        "apt-get" in out and "install -y --no-install-recommends slurmctld slurmd slurm-client munge" in out
    )
    assert "-m slurm" in out
    assert "make slurm-test" in (REPO / ".ci" / "run").read_text()


# ---------------------------------------------------------------- names resolved as sbatch resolves them


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            "out=/tmp/x",
            "--output ('out=/tmp/x' to sbatch) cannot be given here (submitit names the log files)",
        ),
        ("--outp=/tmp/x", "--output ('--outp=/tmp/x' to sbatch) cannot be given here"),
        ("-o/tmp/x", "--output ('-o/tmp/x' to sbatch) cannot be given here"),
        ("-e x", "--error ('-e x' to sbatch) cannot be given here"),
        ("--no-req", "--no-requeue ('--no-req' to sbatch) cannot be given here"),
        ("arr=0-9", "--array ('arr=0-9' to sbatch) cannot be given here"),
        ("-t 5", "--time ('-t 5' to sbatch) cannot be given here (use time / --slurm-time)"),
        ("part=x", "--partition ('part=x' to sbatch) cannot be given here"),
        ("-N2", "--nodes ('-N2' to sbatch) cannot be given here"),
        ("parsable", "--parsable cannot be given here (sbatch must submit the job and print its id"),
        ("me=1G", "--me is ambiguous for sbatch (it abbreviates --mem, --mem-bind, --mem-per-cpu"),
        (
            "mem-per-gpu=1G",
            "'--mem-per-gpu=1G' clashes with --mem, which the sweep writes from mem / --slurm-mem",
        ),
        ("gpus=2", "'--gpus=2' clashes with --gpus-per-node"),
        ("tres-per-task=gres/gpu:1", "'--tres-per-task=gres/gpu:1' clashes with --gpus-per-node"),
        ("cpus-per-gpu=2", "'--cpus-per-gpu=2' clashes with --cpus-per-task"),
        ("contiguous=yes", "--contiguous takes no value"),
        ("-Hv", "-H (--hold) takes no value; give one option per entry"),
        ("-Y", "'-Y' is not an sbatch option (no short option -Y)"),
        ("comment=a\\b", "holds a backslash, which sbatch would read as an escape"),
        ("comment=a\u2028b", "holds a control character (U+2028 LINE SEPARATOR)"),
    ],
)
def test_extra_flags_are_judged_by_the_option_sbatch_applies(extra, message):
    with pytest.raises(UserError) as info:
        slurm_options({"mem": "4G", "cpus": 2}, {"extra": [extra]})
    assert str(info.value).startswith("--slurm-extra") and message in str(info.value), str(info.value)


def test_extra_flags_that_clash_only_with_what_is_set_are_accepted():
    options = slurm_options({"gpus": 0, "extra": ["gres=gpu:a100:2", "mem-per-cpu=2G", "-q high", "-J name"]})
    assert options.extra == (
        ("gres", "gpu:a100:2"),
        ("mem-per-cpu", "2G"),
        ("qos", "high"),
        ("job-name", "name"),
    )
    assert slurm_options({"extra": ["gres=nvme:1", "exclusive", "container-image=x"]}).extra == (
        ("gres", "nvme:1"),
        ("exclusive", None),
        ("container-image", "x"),  # a site's plugin option: passed on, sbatch judges it
    )


def test_the_option_table_holds_every_option_the_sweep_writes_or_reserves():
    from robustbench_aux.sweep.sbatch_flags import OPTIONS, SHORT
    from robustbench_aux.sweep.slurm_options import CLASHES, RESERVED

    written = {"job-name", "nodes", "time", "signal", "output", "error", "open-mode", "requeue", "wckey"}
    assert written | set(RESERVED) | set(CLASHES) <= set(OPTIONS)
    assert SHORT["o"].name == "output" and SHORT["t"].name == "time" and OPTIONS["requeue"].arg == "optional"
    undocumented = {n for n, o in OPTIONS.items() if not o.documented}
    assert len(OPTIONS) == 120 and undocumented == {
        "autocomplete",
        "cluster",
        "context",
        "external",
        "ntasks-per-tres",
        "tasks-per-node",
    }


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("cpus", "\u00b2", "[slurm] cpus must be an integer in 1..65534 (ASCII digits), got '²'"),
        ("gpus", "\u0663", "[slurm] gpus must be an integer in 0..65534 (ASCII digits)"),
        (
            "array_parallelism",
            "99999999999999999999",
            "[slurm] array_parallelism must be an integer in 1..65534",
        ),
        ("time", "1" * 30, "[slurm] time must be minutes (e.g. 1440)"),
        ("time", "71582789:00:00", "[slurm] time must be at most 4294967293 minutes"),
        ("time", "\u0661:00", "[slurm] time must be minutes"),
        ("partition", "gpu\n", "[slurm] partition must be a partition name"),
        ("mem", "4\uff27", "[slurm] mem must be a number of MB"),
    ],
)
def test_counts_and_times_are_ascii_bounded_and_exact(key, value, message):
    with pytest.raises(UserError) as info:
        slurm_options({key: value})
    assert str(info.value).startswith(message), str(info.value)


def test_a_long_time_limit_is_computed_in_integers():
    assert parse_time("71582788:12:01") == 4294967293  # seconds rounded up, exactly
    assert parse_time("4294967293") == 4294967293 and parse_time("1-00:00:01") == 1441
    with pytest.raises(UserError, match="at most 4294967293 minutes"):
        parse_time("71582788:13:01")


@pytest.mark.parametrize(
    "folder, message",
    [
        ("logs\n#SBATCH --output=/tmp/x", "--slurm-folder holds a control character (U+000A LINE FEED)"),
        ("logs%j", "--slurm-folder must be a folder path without '%' or a backslash"),
        ("lo\\gs", "--slurm-folder must be a folder path without '%' or a backslash"),
    ],
)
def test_the_slurm_folder_is_checked_before_the_job_script(tmp_path, capsys, folder, message):
    argv = ["sweep", str(_grid(tmp_path)), "--executor", "slurm", "--dry-run", "--slurm-folder", folder]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {message}"), err


def test_dry_run_prints_commands_shell_quoted_as_they_run(tmp_path, capsys):
    import shlex

    grid = _grid(tmp_path)
    grid.write_text(grid.read_text().replace('recipe = "smoke"', 'recipe = "my recipe;$(x)"'))
    (job,) = load_sweep(grid).jobs[:1]
    job.run_dir.mkdir(parents=True)
    (job.run_dir / "last.pt").write_bytes(b"")  # this run would resume
    assert main(["sweep", str(grid), "--dry-run"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("robustbench-aux ")]
    assert shlex.split(lines[0]) == ["robustbench-aux", *job.steps[0].argv, "--resume"]
    assert "'my recipe;$(x)'" in lines[0]
