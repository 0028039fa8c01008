"""Several worker processes on one host sharing a study: `hpo run --workers W`.

The parent creates (or joins) the study before any worker starts, so workers never race to create tables or
the study; the budget is the study's total, held exactly by GuardedStorage. Workers sit in their own process
group, so a signal reaches only the parent, which forwards it once (supervise).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console

from core.errors import CovblendError
from hpo import batch, console
from hpo.run.display import run_view
from hpo.run.gpus import assign, summary
from hpo.run.runner import RELEASE_S, RunInterrupted, left_running, run_worker
from hpo.run.signals import Forward, handling
from hpo.storage import open_storage
from hpo.storage.deadline import impatient
from hpo.storage.guard import INTERRUPTED, StorageUnavailable, budget_used
from hpo.storage.recovery import release_trial
from hpo.storage.urls import in_memory, mask, sqlite_file
from hpo.study.create import create_or_join
from hpo.study.objective import Objective
from hpo.study.spec import StudySpec, load_spec

WORKERS_PER_CORE = 4  # beyond this many per core, workers only queue for the CPU and multiply the memory used
STOP_S = 10.0  # a worker that has not stopped this long after the forwarded signal is killed
POLL_S = 0.5  # the parent refreshes its aggregated view this often
KILLED = "killed"  # fail_reason of the trial of a worker that died without cleaning up (SIGKILL, a crash)
NO_TRIAL = -1  # a worker's trial slot between trials


class _Worker(multiprocessing.context.SpawnProcess):
    """A spawned worker process carrying its trial slot: shared memory where it publishes its running trial's id
    for the parent. The child finds it as multiprocessing.current_process(), which spawn unpickles from this."""

    def __init__(self, trial_slot, **kwargs) -> None:
        super().__init__(**kwargs)
        self.trial_slot = trial_slot


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


def host_cores() -> int:
    """The cores this process may use: a Slurm task's --cpus-per-task when it runs in one, else the machine's."""
    return batch.cpus() or os.cpu_count() or 1


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Torch threads for each of `workers` processes sharing `cores` (default: host_cores())."""
    return max(1, (cores or host_cores()) // workers)


def check_workers(
    workers: int, url: str = "", cores: int | None = None, *, gpus: bool = False, uncapped: bool = False
) -> None:
    """Refuse more workers than WORKERS_PER_CORE per core of this host (`cores`: its count) unless `uncapped`
    (`hpo run --no-worker-cap`): 10,000 processes are a typo, not a plan. Refuse worker processes (several, or
    one per GPU placement with `gpus`) on an in-memory database `url`: each would have its own, and lose it."""
    if (workers > 1 or gpus) and url and in_memory(url):
        raise CovblendError(
            f"--storage {mask(url)} is private to each process: --workers {workers} would lose every result; "
            "use a SQLite file or PostgreSQL"
        )
    cores = cores or host_cores()
    limit = WORKERS_PER_CORE * cores
    if workers > limit and not uncapped:
        raise CovblendError(
            f"--workers must be <= {limit} ({WORKERS_PER_CORE} per core of this host's {cores}), "
            f"got --workers={workers}; --no-worker-cap allows more"
        )


@dataclass(frozen=True)
class WorkerJob:
    """What one spawned worker needs; plain values so it pickles."""

    spec: str  # spec path (as given to load_spec)
    url: str  # storage URL, password included: it never leaves this host's process table in clear text
    study_name: str  # the study, already created by the parent
    n_trials: int  # the study's total budget
    threads: int  # torch threads of this worker
    seed: int | None  # `hpo run --seed`; each worker claims its own seed from it (hpo.study.seeds)
    timeout: float | None  # seconds after which no new trial starts
    objective_kwargs: dict  # extra Objective arguments (e.g. the artifact store), picklable
    devices: tuple[str, ...] = ()  # CUDA_VISIBLE_DEVICES of worker i (hpo.run.gpus.assign); () leaves it alone


def worker_main(job: WorkerJob, index: int) -> None:
    """Body of one spawned worker; exits 0, console.EXIT_INTERRUPTED or console.EXIT_ERROR."""
    os.setpgrp()  # a terminal's Ctrl-C goes to the parent only, which forwards it exactly once
    if job.devices:  # CUDA reads it at its first call, which comes later (a spawned process starts clean)
        os.environ["CUDA_VISIBLE_DEVICES"] = job.devices[index]
    torch.set_num_threads(job.threads)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        spec = load_spec(job.spec)
        spec = spec.replace(train=spec.train.replace(threads=job.threads))  # train() applies it per trial
        study, _ = create_or_join(spec, open_storage(job.url), job.study_name, job.seed)
        objective = Objective(spec, **job.objective_kwargs)
        run_worker(
            spec, study, job.n_trials, timeout=job.timeout, seed=job.seed, objective=objective, on_trial=publish_trial
        )
    except RunInterrupted:
        sys.exit(console.EXIT_INTERRUPTED)
    except CovblendError as e:
        console.error(str(e), source=f"worker {index}")
        sys.exit(console.EXIT_ERROR)


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

    on_poll(alive) is called about every POLL_S seconds. SIGTERM or SIGINT to this process is forwarded to
    every worker once; workers still alive STOP_S seconds later are killed (exit code -9). From the signal on,
    this process's storage calls wait RELEASE_S at most, as a worker's do. A second signal kills the workers and
    ends this process at once with the line abandoned(running) returns, `running` the number of trials they were
    running (hpo.run.signals.Forward). on_death(death,
    stopping) hears, once, of each worker that exited non-zero, within POLL_S of its end; death.trial_id is
    the trial it published with publish_trial, and `stopping` tells whether a signal was being forwarded.
    A worker that cannot be started (OSError: a process limit, memory) stops the started ones as a signal
    would, then raises CovblendError naming it: no worker outlives its parent.
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
    with handling(forward):
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
                if forward.since is not None and time.monotonic() - forward.since > STOP_S:
                    for p in procs:
                        if p.is_alive():
                            p.kill()
                report_deaths()
                poll(sum(p.is_alive() for p in procs))
                time.sleep(POLL_S)
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


@dataclass
class Reaper:
    """supervise's on_death for workers on `study`: fails the trial each dead worker left RUNNING.

    A worker killed after ignoring the forwarded signal was being stopped: its trial ends FAIL with fail_reason
    "interrupted", like its siblings' trials. A worker that died otherwise (SIGKILL from outside, a crash)
    has its trial failed as "killed". Either is re-queued with the same params, so the others (or the next run)
    run it again.
    """

    study: optuna.Study
    deaths: list[Death] = field(default_factory=list)  # every death heard, in order
    unreleased: list[Death] = field(default_factory=list)  # those whose trial it could not fail

    def __call__(self, death: Death, stopping: bool) -> None:
        self.deaths.append(death)
        if death.trial_id is None:
            return
        reason = INTERRUPTED if stopping else KILLED
        try:
            release_trial(self.study, death.trial_id, reason, requeue=True)
        except StorageUnavailable as e:  # retried for minutes; a later stale check will fail it
            self.unreleased.append(death)
            console.warn(f"could not fail trial id {death.trial_id} of {death.describe()}: {e}")


def finished(trials: list[FrozenTrial]) -> int:
    """The trials that used their budget and are done: budget_used less those still RUNNING or WAITING. A dead
    worker's FAIL, re-queued, gives its budget to the WAITING retry, which nobody here will run."""
    return budget_used(trials) - sum(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials)


def run_parallel(
    spec: StudySpec,
    study: optuna.Study,
    url: str,
    n_trials: int,
    workers: int,
    *,
    timeout: float | None = None,
    seed: int | None = None,
    view: Console | None = None,
    objective_kwargs: dict | None = None,
    gpus: tuple[int, ...] = (),
) -> None:
    """`hpo run --workers W` after the study exists: W workers and one aggregated live view on `view`.

    gpus: device indices (already checked by hpo.run.gpus.check_gpus) the workers take round-robin; () for none.

    Raises RunInterrupted when the workers were stopped by a signal. A worker that died leaves a warning line
    on stderr when the others finished the budget, and raises CovblendError when the budget was not reached.
    """
    threads = threads_per_worker(workers)
    if sqlite_file(url) is not None and workers > 1:
        console.warn("SQLite serialises every write; use PostgreSQL for parallel workers")
    devices = assign(workers, gpus, os.environ.get("CUDA_VISIBLE_DEVICES")) if gpus else ()
    place = f" on {summary(devices)}" if devices else ""
    job = WorkerJob(
        str(spec.path), url, study.study_name, n_trials, threads, seed, timeout, objective_kwargs or {}, devices
    )
    reaper, args = Reaper(study), [(job, i) for i in range(workers)]

    def abandoned(running: int) -> str:
        return f"interrupted again: {left_running(study, running)}"

    if view is None:
        codes, interrupted = supervise(worker_main, args, on_death=reaper, abandoned=abandoned)
    else:
        with run_view(view, n_trials, spec.train.epochs, watching=True) as live:

            def on_poll(alive: int) -> None:
                live.poll(study, f"{alive}/{workers} workers x {threads} threads{place}", alive)

            codes, interrupted = supervise(worker_main, args, on_poll=on_poll, on_death=reaper, abandoned=abandoned)
    if interrupted and reaper.unreleased:
        left = left_running(study, len(reaper.unreleased))
        raise RunInterrupted(f"interrupted; the database does not answer: {left}")
    if interrupted:
        raise RunInterrupted(f"interrupted: the workers' running trials were marked FAIL (fail_reason={INTERRUPTED!r})")
    if not any(codes):
        return
    dead = "; ".join(d.describe() for d in reaper.deaths)
    done = finished(study.get_trials(deepcopy=False))
    if done < n_trials:
        raise CovblendError(f"{dead}; the study finished {done} of its {n_trials} trials")
    console.warn(f"{dead}; the other workers finished the study's {n_trials} trials")
