"""Worker processes under one parent: started, watched, stopped on a signal, and their deaths heard (supervise).

Each worker is a spawned process (no forked torch or database connections) that publishes the trial it runs in
shared memory (publish_trial), so the parent knows which trial a dead worker left RUNNING. This module imports
neither torch nor the trainer: a spawned worker imports it to unpickle its process object, and one whose target
does not train (benchmarks/probe.py) then starts in a fraction of a second.
"""

from __future__ import annotations

import gc
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from core.errors import CovblendError
from hpo.run.runner import RELEASE_S
from hpo.run.signals import Forward, Suspend, handling
from hpo.storage.deadline import impatient

STOP_S = 10.0  # a worker that has not stopped this long after the forwarded signal is killed
POLL_S = 0.5  # the parent refreshes its aggregated view this often
NO_TRIAL = -1  # a worker's trial slot between trials


class _Worker(multiprocessing.context.SpawnProcess):
    """A spawned worker process carrying its trial slot: shared memory where it publishes its running trial's id
    for the parent. The child finds it as multiprocessing.current_process(), which spawn unpickles from this."""

    def __init__(self, trial_slot, **kwargs) -> None:
        super().__init__(**kwargs)
        self.trial_slot = trial_slot

    def run(self) -> None:
        _stop_with_parent()
        try:
            super().run()
        finally:
            gc.freeze()  # the exit's last collection would walk torch's objects for nothing (hpo.cli.main)


def _stop_with_parent() -> None:
    """In a worker: SIGTERM to itself once its parent is gone (SIGKILL, the OOM killer), so that it stops at a safe
    point as if the parent had forwarded a stop, instead of training on unsupervised. Nothing else would reach it:
    workers run in a process group of their own (workers.worker_main), and the kernel does not stop orphans."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])  # ready when the parent's end of the pipe closes
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def publish_trial(trial_id: int | None) -> None:
    """Tell the supervising parent which trial this worker runs (None: none); a no-op outside supervise."""
    slot = getattr(multiprocessing.current_process(), "trial_slot", None)
    if slot is not None:
        slot.value = NO_TRIAL if trial_id is None else trial_id


@dataclass(frozen=True)
class Death:
    """A worker that exited with a non-zero code, as its parent saw it."""

    index: int  # the worker's position in supervise's args
    pid: int  # its process id
    exitcode: int  # negative: killed by that signal
    trial_id: int | None  # the trial it was running when it died (None: between trials)

    def describe(self) -> str:
        if self.exitcode >= 0:
            return f"worker {self.index} (pid {self.pid}) exited {self.exitcode}"
        try:
            name = signal.Signals(-self.exitcode).name
        except ValueError:  # a real-time signal has no name of its own
            name = f"signal {-self.exitcode}"
        return f"worker {self.index} (pid {self.pid}) was killed by {name}"


def supervise(
    target: Callable,
    args: list[tuple],
    *,
    on_poll: Callable[[int], None] | None = None,
    on_death: Callable[[Death, bool], None] | None = None,
    abandoned: Callable[[int], str] = lambda running: "interrupted again: the workers were killed",
) -> tuple[list[int], bool]:
    """Start one spawned process per args tuple running target(*args) and wait for all.

    Returns their exit codes and whether a signal stopped them.

    on_poll(alive) is called about every POLL_S seconds, and as soon as a worker exits. A stop signal (SIGTERM,
    SIGINT, SIGHUP) to this process is forwarded to every worker once; workers still alive STOP_S seconds later
    (or after the continue of a Ctrl-Z that came meanwhile) are killed (exit code -9). From the signal on, this
    process's storage calls wait RELEASE_S at most, as a worker's do. A second signal kills the workers and ends this
    process at once with the line abandoned(running) returns, `running` the number of trials they were running
    (hpo.run.signals.Forward). on_death(death, stopping) hears, once, of each worker that exited non-zero, as soon
    as it ends; death.trial_id is the trial it published with publish_trial, and `stopping` tells whether a signal
    was being forwarded. Ctrl-Z (SIGTSTP) stops the workers with this process, and they continue with it
    (hpo.run.signals.Suspend). A worker that cannot be started (OSError: a process limit, memory) stops the
    started ones as a signal would, then raises CovblendError naming it: no worker outlives its parent.
    """
    ctx = multiprocessing.get_context("spawn")  # no forked torch or database connections
    # lock=False: a worker SIGKILLed while holding a lock would leave the parent blocked on its next read.
    # A lone 64-bit store is not torn on the platforms we run on.
    slots = [ctx.Value("q", NO_TRIAL, lock=False) for _ in args]
    procs = [
        _Worker(slot, target=target, args=a, name=f"hpo-worker-{i}")
        for i, (a, slot) in enumerate(zip(args, slots, strict=True))
    ]
    reported: set[int] = set()

    def alive() -> list[tuple]:
        """(process, trial slot) of each started worker still alive."""
        return [(p, slot) for p, slot in zip(procs, slots, strict=True) if p.pid is not None and p.is_alive()]

    forward = Forward(
        lambda: [p.pid for p, _ in alive()],
        on_stop=lambda: impatient(RELEASE_S),  # the Reaper's writes: a database that does not answer holds the exit
        abandoned=lambda: abandoned(sum(slot.value != NO_TRIAL for _, slot in alive())),
    )
    poll = on_poll or (lambda alive: None)

    def report_deaths() -> None:
        for i, p in enumerate(procs):
            if i in reported or p.is_alive() or not p.exitcode:
                continue
            reported.add(i)
            if on_death is not None:
                trial_id = slots[i].value
                stopping = forward.since is not None
                on_death(Death(i, p.pid, p.exitcode, None if trial_id == NO_TRIAL else trial_id), stopping)

    refused: tuple[int, OSError] | None = None
    suspend = Suspend(lambda: [p.pid for p, _ in alive()])
    with handling(forward), handling(suspend, (signal.SIGTSTP,)):
        try:
            for i, p in enumerate(procs):
                try:
                    p.start()
                except OSError as e:  # a process limit (EAGAIN), memory: stop those started, as a signal would
                    refused = (i, e)
                    if forward.since is None:  # (a signal that came first is being forwarded already)
                        forward(signal.SIGTERM, None)
                    break
            while any(p.is_alive() for p in procs):
                # A Ctrl-Z during the stop suspends the workers too: their STOP_S counts again from the continue.
                if forward.since is not None and time.monotonic() - max(forward.since, suspend.continued or 0) > STOP_S:
                    for p in procs:
                        if p.is_alive():
                            p.kill()
                report_deaths()
                poll(sum(p.is_alive() for p in procs))
                # Woken by a worker's exit, not only by the next poll: the last one's end ends the run at once.
                multiprocessing.connection.wait([p.sentinel for p, _ in alive()], timeout=POLL_S)
            report_deaths()
            poll(0)
        finally:
            impatient(None)
    if refused is not None:
        index, error = refused
        raise CovblendError(
            f"could not start worker {index} of {len(procs)}: {error}; the {index} started workers were stopped"
        )
    return [p.exitcode for p in procs], forward.since is not None
