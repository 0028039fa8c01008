"""A private PostgreSQL 15 cluster for tests that restart the database: initdb + pg_ctl on a free port in a
temp dir, run as the postgres user (the server refuses root). The shared server on 5432 is never touched."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.conftest import free_port

BIN = Path("/usr/lib/postgresql/15/bin")


class PrivatePostgres:
    """start(), restart(), stop(); `url` is a psycopg URL to its database "test" (trust auth, user postgres)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="hpo-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/test"
        as_root = os.geteuid() == 0
        self.prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
        if as_root:
            shutil.chown(self.root, "postgres")
        self.root.chmod(0o755)

    @staticmethod
    def available() -> str | None:
        """Why a private cluster cannot run here, or None when it can."""
        if not (BIN / "initdb").exists():
            return f"no {BIN / 'initdb'}"
        if os.geteuid() == 0 and shutil.which("runuser") is None:
            return "running as root without runuser"
        return None

    def _run(self, *args: str) -> None:
        subprocess.run([*self.prefix, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> PrivatePostgres:
        self._run(str(BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self._pg_ctl("start")
        self._run(str(BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "test")
        return self

    def _pg_ctl(self, action: str, *extra: str) -> None:
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(BIN / "pg_ctl"), action, "-D", str(self.data), "-w", "-o", opts, "-l", str(self.root / "log"), *extra
        )

    def restart(self) -> None:
        """Fast shutdown (every connection is cut) and start again."""
        self._pg_ctl("restart", "-m", "fast")

    def down_for(self, seconds: float) -> None:
        """Fast shutdown, `seconds` with no server at all, then start again."""
        self.halt()
        time.sleep(seconds)
        self.resume()

    def halt(self) -> None:
        """Fast shutdown: every connection is cut and none is accepted until resume()."""
        self._pg_ctl("stop", "-m", "fast")

    def resume(self) -> None:
        self._pg_ctl("start")

    def _cluster(self) -> list[int]:
        """The postmaster's pid and its children's (the backends serving connections)."""
        master = int((self.data / "postmaster.pid").read_text().split()[0])
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master:
                    children.append(int(stat.parent.name))
            except (OSError, IndexError, ValueError):
                continue  # ended while we looked
        return [master, *children]

    def freeze(self) -> None:
        """SIGSTOP the whole cluster: connections stay open and the kernel acknowledges packets, but nothing
        answers (a hung host, as a client sees it)."""
        self._signal(self._cluster(), signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT the cluster, the postmaster last: a resumed postmaster may end a backend before it is signalled."""
        master, *children = self._cluster()
        self._signal([*children, master], signal.SIGCONT)

    @staticmethod
    def _signal(pids: list[int], signum: int) -> None:
        for pid in pids:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:  # a backend that ended since _cluster() listed it
                continue

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(BIN / "pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate", "-w")
        shutil.rmtree(self.root, ignore_errors=True)
