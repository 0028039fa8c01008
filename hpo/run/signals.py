"""How hpo's processes answer SIGTERM, Ctrl-C (SIGINT), a closed terminal (SIGHUP) and Ctrl-Z (SIGTSTP): the one
module that installs signal handlers.

Four answers, each installed with `handling` and put back when its block ends:
    StopAtSafePoint  run_worker: the running trial stops at its next safe point and is marked FAIL
    Forward          a parent of worker processes (hpo.run.processes.supervise): the signal goes to each worker once
    Suspend          Ctrl-Z in `hpo`: the cursor shown; the workers of --workers stopped and continued with it
    interrupt        `hpo retrain`, `hpo evaluate`, `hpo report` (through stopping_with), `hpo dashboard`: any stop
                     signal ends the command as Ctrl-C does
The first two end the process at once on a second signal (exit_now), unless it is a SIGHUP (_asks_again).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import NoReturn

from core.errors import CovblendError
from hpo import console

# SIGHUP: the terminal closed (an ssh connection dropped). Its default action would end the process at once and
# leave the running trial RUNNING until its heartbeat went stale.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Stopped(CovblendError):
    """A signal stopped a command; the message says what was kept. `hpo` prints "stopped: ..." and exits 130."""


class Interrupted(KeyboardInterrupt):
    """A stop signal (STOP_SIGNALS), raised where it is safe, so Optuna marks the running trial FAIL."""


@contextmanager
def handling(handler: Callable, signals: Sequence[signal.Signals] = STOP_SIGNALS) -> Iterator[None]:
    """Install `handler` for `signals` inside the block; the previous handlers come back after it. A SIGHUP that
    this process ignores stays ignored: `nohup hpo run` asked for the run to outlive its terminal."""
    kept = [s for s in signals if not (s == signal.SIGHUP and signal.getsignal(s) == signal.SIG_IGN)]
    previous = {s: signal.signal(s, handler) for s in kept}
    try:
        yield
    finally:
        for s, handler_before in previous.items():
            signal.signal(s, handler_before)


def _asks_again(signum: int) -> bool:
    """Whether a stop signal that comes during a stop asks for it to end at once (exit_now). A SIGHUP does not: a
    closed terminal's hangup reaches a shell's job twice, from the kernel and from the shell passing it on, and
    nobody is there to ask."""
    return signum != signal.SIGHUP


def exit_now(message: str) -> NoReturn:
    """Write "stopped: MESSAGE" on stderr and end this process at once with EXIT_INTERRUPTED.

    The answer to a second signal during a stop. Whatever the process waits on (a database that does not answer,
    psycopg cancelling a query on it, a heartbeat thread's join), an exception would wait for it too in the
    `finally` and `except` blocks it passes, so no Python cleanup runs. The line goes straight to file descriptor
    2: the signal may have interrupted a write to sys.stderr, whose buffer would refuse a second, reentrant one.
    """
    try:
        sys.stdout.flush()  # what the run printed so far (a --json run prints at its end only)
    except (OSError, RuntimeError, ValueError):
        pass  # closed, or interrupted in the middle of a write: nothing more of it comes
    _show_cursor()  # a live display hides it until it ends, which it no longer will
    below = "\n" if os.isatty(2) else ""  # a live display leaves the cursor at the end of its last line
    os.write(2, f"{below}stopped: {message}\n".encode(errors="replace"))
    os._exit(console.EXIT_INTERRUPTED)


def _show_cursor() -> None:
    """The terminal's cursor shown again, straight to file descriptor 1 (a signal may have interrupted a write to
    sys.stdout, whose buffer would refuse a second, reentrant one); nothing when stdout is not a terminal."""
    if os.isatty(1):
        os.write(1, b"\x1b[?25h")


def interrupt(signum, frame) -> None:
    """Raise Interrupted (a KeyboardInterrupt) wherever the signal lands. SIGHUP is ignored from then on: a closed
    terminal's second hangup (_asks_again) would land in the stop that the first began."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    raise Interrupted()


@contextmanager
def stopping_with(message: str) -> Iterator[None]:
    """Inside the block every stop signal ends the command as Ctrl-C does (interrupt), as Stopped(message): `hpo`
    then says "stopped: MESSAGE" and exits 130. For commands whose work a stop may simply cut short."""
    try:
        with handling(interrupt):
            yield
    except KeyboardInterrupt:
        raise Stopped(message) from None


class StopAtSafePoint:
    """Stop-signal handler of run_worker (STOP_SIGNALS): raise at a safe point, not wherever the signal lands.

    An exception raised inside a storage call can leave a connection checked out in the middle of a write;
    on SQLite its lock then blocks the FAIL writes that follow, which retry for minutes instead of the run
    stopping. So while a trial runs (busy() is true, from its ask to its tell), a signal only sets `requested`,
    and `checkpoint` raises at the next safe point: as the objective starts, before the trial's next optimiser
    step (core.train's on_step) or at its epoch boundary (before the epoch's storage writes), whichever comes
    first. The wait is therefore at most one optimiser step, or one validation pass when the signal lands in
    one. Between trials it raises at once.

    A second signal ends the process at once (exit_now) with the line abandoned() returns: the stop that the
    first one began writes to the database, which may not answer, and the user asked twice.
    """

    def __init__(
        self,
        busy: Callable[[], bool],
        on_stop: Callable[[], None] = lambda: None,
        abandoned: Callable[[], str] = lambda: "interrupted again",
    ) -> None:
        self.busy = busy
        self.on_stop = on_stop  # called as the stop begins (run_worker shortens its storage calls' patience)
        self.abandoned = abandoned  # the line of a second signal: what the stop it cut short leaves undone
        self.requested = False
        self.stopping = False  # Interrupted was raised: whatever follows is the stop

    def __call__(self, signum, frame) -> None:
        if self.requested or self.stopping:
            if not _asks_again(signum):
                return
            exit_now(self.abandoned())
        self.requested = True
        self.on_stop()  # a storage call under way (a trial's ask or tell) gives up soon on a database that hangs
        if not self.busy():
            self._interrupt()

    def checkpoint(self) -> None:
        if self.requested:
            self._interrupt()

    def _interrupt(self) -> None:
        self.stopping = True
        raise Interrupted()


class Forward:
    """Send the first stop signal (STOP_SIGNALS) on to the processes pids() names that are alive, note when it came and
    call on_stop. A second one kills those processes (SIGKILL) and ends this one at once (exit_now) with the line
    abandoned() returns: no worker outlives its parent, and the parent waits on nothing, its database included."""

    def __init__(
        self,
        pids: Callable[[], list[int]],
        on_stop: Callable[[], None],
        abandoned: Callable[[], str],
    ) -> None:
        self.pids = pids
        self.on_stop = on_stop
        self.abandoned = abandoned
        self.since: float | None = None  # time.monotonic() of the forwarded signal; None before one

    def __call__(self, signum, frame) -> None:
        if self.since is not None:
            if not _asks_again(signum):
                return
            line = self.abandoned()  # before the kill: it may count what the workers were doing
            for pid in self.pids():
                os.kill(pid, signal.SIGKILL)
            exit_now(line)
        self.since = time.monotonic()
        self.on_stop()
        for pid in self.pids():
            os.kill(pid, signum)


class Suspend:
    """SIGTSTP (Ctrl-Z) handler of `hpo` (hpo.cli.main): the cursor a live display hides is shown for the shell's
    prompt, and the processes pids() names (a parent's workers; none otherwise) stop with this one and continue
    with it (`fg`, `bg`, SIGCONT). Workers run in process groups of their own (hpo.run.workers.worker_main), which the
    terminal's Ctrl-Z does not reach: without this a suspended run's workers trained on, on every core.

    This process stops by SIGTSTP's default action, so the kernel decides as it would without the handler: it
    discards the stop when the process group is orphaned (POSIX: no shell's job control could continue it, as for
    a command that leads its own session, `ssh -t host hpo run`), and the workers then continue at once.
    SIGSTOP, not SIGTSTP, for the workers: they have no handler for it and nothing to tidy. While they are
    stopped, a storage call under way may pass its deadline; it is then cut and retried as after an outage."""

    def __init__(self, pids: Callable[[], list[int]]) -> None:
        self.pids = pids
        self.continued: float | None = None  # time.monotonic() of the last continue; None before a stop

    def __call__(self, signum, frame) -> None:
        stopped = self._send(self.pids(), signal.SIGSTOP)
        _show_cursor()  # a live display hides it; the shell's prompt needs it back
        handler = signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        try:
            signal.raise_signal(signal.SIGTSTP)  # to this thread: it stops here, and returns on SIGCONT
        finally:
            signal.signal(signal.SIGTSTP, handler)
        self.continued = time.monotonic()
        self._send(stopped, signal.SIGCONT)

    @staticmethod
    def _send(pids: list[int], sig: signal.Signals) -> list[int]:
        """Send sig to each of pids; those that received it (one may have exited since)."""
        sent = []
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                continue
            sent.append(pid)
        return sent
