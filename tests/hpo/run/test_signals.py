"""hpo.run.signals.Suspend in a process of its own: Ctrl-Z there must not stop the test."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

SUSPENDED = """
import signal, sys
from hpo.run.signals import Suspend, handling
with handling(Suspend(lambda: [int(sys.argv[1])]), (signal.SIGTSTP,)):
    print("ready", flush=True)
    signal.pause()  # returns once the handler has returned: after the stop, on SIGCONT
print("continued", flush=True)
"""


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _wait_for(predicate, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, f"timed out after {timeout} s"
        time.sleep(0.05)


def _read_until(fd: int, text: bytes, timeout: float = 30.0) -> bytes:
    seen, end = b"", time.monotonic() + timeout
    while text not in seen:
        assert time.monotonic() < end, f"no {text!r} in {seen!r} after {timeout} s"
        if select.select([fd], [], [], 0.1)[0]:
            seen += os.read(fd, 4096)
    return seen


def test_ctrl_z_stops_the_named_processes_with_this_one_shows_the_cursor_and_continues_them():
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], process_group=0)
    leader, follower = pty.openpty()  # the suspended process's stdout is a terminal, as a live display's is
    # a process group of its own, as a shell's job has: the kernel discards a stop for an orphaned group
    proc = subprocess.Popen([sys.executable, "-c", SUSPENDED, str(worker.pid)], stdout=follower, process_group=0)
    os.close(follower)
    try:
        _read_until(leader, b"ready")
        proc.send_signal(signal.SIGTSTP)
        _wait_for(lambda: _state(proc.pid) == "T" and _state(worker.pid) == "T")
        _read_until(leader, b"\x1b[?25h")  # the cursor, shown before the stop: the shell's prompt needs it
        proc.send_signal(signal.SIGCONT)  # what `fg` and `bg` send
        _read_until(leader, b"continued")
        assert proc.wait(timeout=30) == 0
        assert _state(worker.pid) != "T"
    finally:
        for p in (proc, worker):
            p.kill()
            p.wait()
        os.close(leader)
