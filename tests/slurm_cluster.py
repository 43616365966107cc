"""A real single-node Slurm cluster on this machine, for the ``slurm``-marked tests.

:class:`SlurmCluster` starts Debian's daemons (packages ``munge``, ``slurmctld``, ``slurmd``,
``slurm-client``; ``make slurm-test`` installs them) from a generated configuration in a fresh
temporary folder: ``munged`` with its own key and socket, ``slurmctld`` and ``slurmd`` on
127.0.0.1 on free ports, one node of 2 CPUs and 1 GB, no cgroups (``proctrack/linuxproc``,
``task/none``), no accounting database. Two partitions, ``batch`` (default) and ``urgent`` (a
higher priority tier), with ``PreemptType=preempt/partition_prio`` and ``PreemptMode=REQUEUE``: a
job in ``urgent`` that needs the CPUs preempts and requeues what runs in ``batch``, as on a
cluster with a preemptible partition.

Every daemon is started by this class as a child process in the foreground and its process id is
kept. :meth:`SlurmCluster.stop` cancels every job, stops the daemons by those ids (SIGTERM, SIGKILL
after a timeout), ends any job process left behind (found by the cluster's ``SLURM_CONF`` in its
environment, so only processes of this cluster) and removes the folder; it returns what it had to
force, so a test can require a clean stop. When a daemon cannot start, :class:`ClusterUnavailable`
says which one and why (its exit status and the last lines of its log).

The cluster runs as root (``SlurmUser=root``): slurmd starts jobs as their user, which needs root.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

NODE = "rbanode"
PARTITION = "batch"  # the default partition (preemptible)
URGENT = "urgent"  # a higher priority tier: its jobs preempt (requeue) jobs in batch
CPUS = 2
MEMORY_MB = 1024
KILL_WAIT_S = 2  # SIGTERM -> SIGKILL when Slurm stops a job
CRED_EXPIRE_S = 10  # Slurm holds a requeued job back for this long (+1 s); its default is 120
TOOLS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "scancel", "srun")
PACKAGES = "munge slurmctld slurmd slurm-client"


class ClusterUnavailable(RuntimeError):
    """The cluster could not be started; the message says why."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 3) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "(no log)"
    errors = [ln for ln in lines if "error" in ln.lower() or "fatal" in ln.lower()]
    return " | ".join((errors or lines)[-n:]) or "(empty log)"


class SlurmCluster:
    def __init__(self, *, start_timeout_s: float = 90.0):
        self.start_timeout_s = start_timeout_s
        self.root: Path | None = None
        self.procs: dict[str, subprocess.Popen] = {}
        self.conf: Path | None = None

    # ------------------------------------------------------------------ start
    def start(self) -> SlurmCluster:
        missing = [t for t in TOOLS if shutil.which(t) is None]
        if missing:
            raise ClusterUnavailable(
                f"{', '.join(missing)} not found: install Debian's {PACKAGES} (make slurm-test does, as root)"
            )
        if os.geteuid() != 0:
            raise ClusterUnavailable("slurmd must run as root (it starts each job as its user); run as root")
        self.root = Path(tempfile.mkdtemp(prefix="rba-slurm-"))
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        root = self.root
        root.chmod(0o755)  # munged wants the socket's folder searchable by all
        for sub in ("munge", "state", "spool", "log"):
            (root / sub).mkdir(mode=0o755)
        key = root / "munge" / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o400)
        self.socket = root / "munge" / "munge.socket"
        self.conf = root / "slurm.conf"
        self.conf.write_text(self._config())
        (root / "plugstack.conf").write_text("")

        self._spawn(
            "munged",
            [
                "munged",
                "--foreground",
                "--force",
                f"--key-file={key}",
                f"--socket={self.socket}",
                f"--pid-file={root / 'munge' / 'munged.pid'}",
                f"--log-file={root / 'log' / 'munged.log'}",
                f"--seed-file={root / 'munge' / 'munged.seed'}",
            ],
        )
        self._wait_for(lambda: self.socket.exists(), "munged", "its socket never appeared", 20)
        self._spawn("slurmctld", ["slurmctld", "-D", "-f", str(self.conf)])
        self._wait_for(self._controller_answers, "slurmctld", "it never answered scontrol ping", 30)
        self._spawn("slurmd", ["slurmd", "-D", "-f", str(self.conf), "-N", NODE])
        self._wait_for(self._node_idle, "slurmd", f"node {NODE} never became idle", self.start_timeout_s)

    def _config(self) -> str:
        root, host = self.root, socket.gethostname().split(".")[0]
        return f"""# generated by tests/slurm_cluster.py
ClusterName=rbatest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=cred_expire={CRED_EXPIRE_S},socket={self.socket}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
PlugStackConfig={root}/plugstack.conf
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait={KILL_WAIT_S}
MinJobAge=600
JobRequeue=1
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
NodeName={NODE} NodeHostname={host} NodeAddr=127.0.0.1 CPUs={CPUS} RealMemory={MEMORY_MB} State=UNKNOWN
PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP PriorityTier=1
PartitionName={URGENT} Nodes={NODE} MaxTime=INFINITE State=UP PriorityTier=2
"""

    def _spawn(self, name: str, argv: list[str]) -> None:
        out = open(self.root / "log" / f"{name}.out", "w")
        self.procs[name] = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env
        )
        out.close()

    def _wait_for(self, ready, name: str, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for daemon, proc in self.procs.items():
                if proc.poll() is not None:
                    raise ClusterUnavailable(
                        f"{daemon} exited with status {proc.returncode}: {self._why(daemon)}"
                    )
            if ready():
                return
            time.sleep(0.5)
        raise ClusterUnavailable(f"{name}: {what} within {timeout:.0f} s: {self._why(name)}")

    def _why(self, name: str) -> str:
        logs = {"munged": "munged.log", "slurmctld": "slurmctld.log", "slurmd": "slurmd.log"}
        out = _tail(self.root / "log" / f"{name}.out")
        log = self.root / "log" / logs.get(name, "")
        return _tail(log) if log.is_file() else out

    def _controller_answers(self) -> bool:
        return self.run("scontrol", "ping", check=False).returncode == 0

    def _node_idle(self) -> bool:
        out = self.run("sinfo", "--noheader", f"--nodes={NODE}", "--format=%T", check=False)
        return out.returncode == 0 and out.stdout.strip().startswith("idle")

    # ------------------------------------------------------------------ use
    @property
    def env(self) -> dict:
        """The environment for Slurm's clients (and jobs, which inherit it) to use this cluster."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
        env["SLURM_CONF"] = str(self.conf)
        return env

    def run(self, *argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        out = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and out.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({out.returncode}): {out.stderr.strip()}")
        return out

    def job_state(self, job_id: str) -> str:
        out = self.run(
            "squeue",
            "--noheader",
            "--array",
            "--states=all",
            f"--jobs={job_id.split('_')[0]}",
            "--format=%i %T",
            check=False,
        )
        for line in out.stdout.splitlines():
            sid, _, state = line.strip().partition(" ")
            if sid == job_id:
                return state
        return ""

    def log(self, name: str) -> str:
        return (self.root / "log" / name).read_text(errors="replace")

    # ------------------------------------------------------------------ stop
    def _cluster_processes(self) -> list[int]:
        """Processes of this cluster's jobs (their environment names this cluster's SLURM_CONF),
        other than this process and the daemons."""
        if self.conf is None:
            return []
        marker = f"SLURM_CONF={self.conf}".encode()
        mine = {os.getpid(), *(p.pid for p in self.procs.values())}
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) in mine:
                continue
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if marker in environ.split(b"\0"):
                found.append(int(entry.name))
        return found

    def stop(self) -> list[str]:
        """Stop everything this cluster started; returns what had to be forced (empty: clean)."""
        forced: list[str] = []
        if self.procs.get("slurmctld") and self.procs["slurmctld"].poll() is None:
            jobs = self.run("squeue", "--noheader", "--format=%A", check=False).stdout.split()
            if jobs:
                self.run("scancel", *sorted(set(jobs)), check=False)
                deadline = time.monotonic() + 3 * KILL_WAIT_S + 10
                while time.monotonic() < deadline:
                    out = self.run("squeue", "--noheader", "--format=%A", check=False)
                    if out.returncode == 0 and not out.stdout.strip():
                        break
                    time.sleep(0.5)
            # the jobs' processes end KillWait seconds after the cancel at most: let slurmd see them go
            deadline = time.monotonic() + 3 * KILL_WAIT_S + 10
            while self._cluster_processes() and time.monotonic() < deadline:
                time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                forced.append(f"{name} (pid {proc.pid}) needed SIGKILL")
        for pid in self._cluster_processes():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                os.kill(pid, signal.SIGKILL)
                forced.append(f"left-over job process {pid} ({cmdline[:80]}) killed")
            except (OSError, ProcessLookupError):
                pass
        if self.root is not None and self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)
        return forced

    def __enter__(self) -> SlurmCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
