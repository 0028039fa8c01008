"""A private single-node Slurm cluster for tests: its own munged (own key, socket, pid and log files), slurmctld and
slurmd with their own slurm.conf on free ports, all under one temp dir. The system's /etc/slurm, /etc/munge and
munged are never read or touched: clients find the cluster through SLURM_CONF (env()), daemons through -f."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.conftest import free_port, wait_for

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "sinfo")
SBIN = Path("/usr/sbin")  # Debian's slurm-wlm and munge put their daemons here, often off a user's PATH


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path=str(SBIN))


CONF = """\
ClusterName=hpotest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge/munge.socket
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
PlugStackConfig={root}/plugstack.conf
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
# A test cluster's queue is short: look at it every second, not every minute (sched_interval) or 30 s (bf_interval);
# a job waiting on a dependency then starts ~1 s after it ends instead of ~3 s.
SchedulerParameters=sched_interval=1,bf_interval=1
ReturnToService=2
KillWait=30
SlurmctldDebug=info
SlurmdDebug=info
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
# FORCE: up to {share} jobs share a CPU, so a few 1-CPU array tasks run at once on a small machine, as on a big node.
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:{share}
"""


class PrivateSlurm:
    """start(), env(), stop(); one node named localhost with this machine's CPUs, one default partition."""

    def __init__(self, share: int = 4) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="hpo-slurm-"))
        self.root.chmod(0o755)  # munged wants every folder above its socket executable by all
        self.conf = self.root / "slurm.conf"
        self.share = share
        self.procs: dict[str, subprocess.Popen] = {}

    @staticmethod
    def available() -> str | None:
        """Why a private cluster cannot run here, or None when it can."""
        missing = [name for name in (*DAEMONS, *CLIENTS, "mungekey") if _which(name) is None]
        if missing:
            return f"{', '.join(missing)} not found (apt-get install slurm-wlm munge)"
        return None

    def env(self) -> dict[str, str]:
        """The environment of a client of this cluster (sbatch, squeue, scancel): os.environ plus SLURM_CONF."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *args: str, env: dict[str, str] | None = None, cwd=None) -> subprocess.CompletedProcess:
        """A Slurm client command on this cluster (env: env() and more); raises with its stderr when it fails."""
        done = subprocess.run(args, env=env or self.env(), cwd=cwd, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
        return done

    def start(self) -> PrivateSlurm:
        for folder in ("munge", "state", "spool", "log"):
            (self.root / folder).mkdir(mode=0o755)
        key = self.root / "munge" / "munge.key"
        subprocess.run([_which("mungekey"), "--create", "--keyfile", str(key)], check=True, capture_output=True)
        key.chmod(0o600)
        munge = self.root / "munge"
        self._daemon(
            "munged", "--foreground", f"--socket={munge / 'munge.socket'}", f"--key-file={key}",
            f"--pid-file={munge / 'munged.pid'}", f"--log-file={munge / 'munged.log'}",
            f"--seed-file={munge / 'munged.seed'}",
        )  # fmt: skip
        self._wait(lambda: (munge / "munge.socket").exists(), "munged's socket")
        (self.root / "plugstack.conf").touch()  # else slurmd and the clients read the system's /etc/slurm one
        self.conf.write_text(
            CONF.format(
                root=self.root, ctld_port=free_port(), slurmd_port=free_port(), user=getpass.getuser(),
                cpus=os.cpu_count() or 1, share=self.share,
            )
        )  # fmt: skip
        self._daemon("slurmctld", "-D", "-i", "-f", str(self.conf))
        self._daemon("slurmd", "-D", "-N", "localhost", "-f", str(self.conf))
        self._wait(self._idle, "the node to be idle")
        return self

    def _daemon(self, name: str, *args: str) -> None:
        """Start a daemon in the foreground, in a session of its own, so stop() can end its whole process group."""
        log = open(self.root / "log" / f"{name}.out", "wb")  # the daemon holds it until stop
        env = {**os.environ, "SLURM_CONF": str(self.conf)}  # slurmstepd, forked by slurmd, inherits it (stop)
        self.procs[name] = subprocess.Popen(
            [_which(name), *args], stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    def _idle(self) -> bool:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited {proc.returncode}: {self.logs()}")
        done = subprocess.run(["sinfo", "-h", "-o", "%t"], env=self.env(), capture_output=True, text=True, timeout=60)
        return done.returncode == 0 and done.stdout.strip() == "idle"

    def _wait(self, ready, what: str) -> None:
        try:
            wait_for(ready, 60.0, 0.2, what)
        except AssertionError as e:
            raise AssertionError(f"{e}: {self.logs()}") from None

    def logs(self) -> str:
        """The tail of each daemon's log, for a failure's message."""
        tails = []
        for path in sorted((self.root / "log").glob("*")) + [self.root / "munge" / "munged.log"]:
            if path.is_file():
                tails.append(f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-15:]))
        return "\n".join(tails)

    def _marked(self) -> list[int]:
        """Processes that carry this cluster's SLURM_CONF: its daemons, their slurmstepds and the jobs these run
        (which leave the daemons' process groups), never another cluster's or anything else on the machine."""
        mark = f"SLURM_CONF={self.conf}".encode()
        found = []
        for environ in Path("/proc").glob("[0-9]*/environ"):
            try:
                if mark in environ.read_bytes().split(b"\0"):
                    found.append(int(environ.parent.name))
            except (OSError, ValueError):
                continue  # ended while we looked
        return [pid for pid in found if pid != os.getpid()]

    def _jobs_alive(self) -> bool:
        """Whether a job's process (one outside the daemons' process groups) is still alive."""
        groups = {p.pid for p in self.procs.values()}
        for pid in self._marked():
            try:
                if os.getpgid(pid) not in groups:
                    return True
            except ProcessLookupError:
                continue
        return False

    def stop(self) -> None:
        """Cancel every job, end the daemons' process groups and what is left of the jobs, remove the folder."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            subprocess.run(["scancel", "--user", getpass.getuser()], env=self.env(), capture_output=True, timeout=60)
            end = time.monotonic() + 45  # KillWait (30 s) for a job that ignores SIGTERM, then its SIGKILL
            while self._jobs_alive() and time.monotonic() < end:
                time.sleep(0.5)
        for name in reversed(DAEMONS):
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=20)
        for pid in self._marked():  # what outlived its slurmstepd
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)
