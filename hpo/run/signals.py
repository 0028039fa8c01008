"""How hpo's processes answer SIGTERM and Ctrl-C (SIGINT): the one module that installs signal handlers.

Three answers, each installed with `handling` and put back when its block ends:
    StopAtSafePoint  run_worker: the running trial stops at its next safe point and is marked FAIL
    ForwardOnce      a parent of worker processes (hpo.run.workers.supervise): the signal goes to each worker once
    interrupt        `hpo retrain`: SIGTERM stops like Ctrl-C
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from core.errors import CovblendError

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(CovblendError):
    """A signal stopped a command; the message says what was kept. `hpo` prints "stopped: ..." and exits 130."""


class Interrupted(KeyboardInterrupt):
    """SIGTERM or Ctrl-C, raised where it is safe, so Optuna marks the running trial FAIL."""


@contextmanager
def handling(handler: Callable, signals: Sequence[signal.Signals] = STOP_SIGNALS) -> Iterator[None]:
    """Install `handler` for `signals` inside the block; the previous handlers come back after it."""
    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, handler_before in previous.items():
            signal.signal(s, handler_before)


def interrupt(signum, frame) -> None:
    """Raise Interrupted (a KeyboardInterrupt) wherever the signal lands."""
    raise Interrupted()


class StopAtSafePoint:
    """SIGTERM and SIGINT handler of run_worker: raise at a safe point, not wherever the signal lands.

    An exception raised inside a storage call can leave a connection checked out in the middle of a write;
    on SQLite its lock then blocks the FAIL writes that follow, which retry for minutes instead of the run
    stopping. So while a trial runs (busy() is true), a signal only sets `requested`, and `checkpoint` raises
    at the next safe point: before the trial's next optimiser step (core.train's on_step) or at its epoch
    boundary (before the epoch's storage writes), whichever comes first. The wait is therefore at most one
    optimiser step, or one validation pass when the signal lands in one. Between trials, and on a second
    signal, it raises at once.
    """

    def __init__(self, busy: Callable[[], bool], on_stop: Callable[[], None] = lambda: None) -> None:
        self.busy = busy
        self.on_stop = on_stop  # called as the stop begins (run_worker shortens its storage calls' patience)
        self.requested = False
        self.stopping = False  # Interrupted was raised: whatever follows is the stop

    def __call__(self, signum, frame) -> None:
        if self.requested or not self.busy():
            self._interrupt()
        self.requested = True

    def checkpoint(self) -> None:
        if self.requested:
            self._interrupt()

    def _interrupt(self) -> None:
        self.stopping = True
        self.on_stop()
        raise Interrupted()


class ForwardOnce:
    """Send the first SIGTERM or SIGINT on to the processes pids() names that are alive; note when it came."""

    def __init__(self, pids: Callable[[], list[int]]) -> None:
        self.pids = pids
        self.since: float | None = None  # time.monotonic() of the forwarded signal; None before one

    def __call__(self, signum, frame) -> None:
        if self.since is None:
            self.since = time.monotonic()
            for pid in self.pids():
                os.kill(pid, signum)
