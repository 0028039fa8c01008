"""Several worker processes on one host sharing a study: `hpo run --workers W`.

The parent creates (or joins) the study before any worker starts, so workers never race to create tables or
the study; the budget is the study's total, held exactly by GuardedStorage. Workers sit in their own process
group, so a signal reaches only the parent, which forwards it once (hpo.run.processes.supervise).
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass, field

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console

from core.errors import CovblendError
from hpo import batch, console
from hpo.run.display import run_view
from hpo.run.gpus import assign, summary
from hpo.run.processes import Death, publish_trial, supervise
from hpo.run.runner import RunInterrupted, Unreleased, left_running, run_worker
from hpo.storage import open_storage
from hpo.storage.guard import INTERRUPTED, StorageUnavailable, budget_used
from hpo.storage.recovery import release_trial
from hpo.storage.urls import in_memory, mask, sqlite_file
from hpo.study.create import create_or_join
from hpo.study.objective import Objective
from hpo.study.spec import StudySpec, load_spec

WORKERS_PER_CORE = 4  # beyond this many per core, workers only queue for the CPU and multiply the memory used
KILLED = "killed"  # fail_reason of the trial of a worker that died without cleaning up (SIGKILL, a crash)
# A worker's exit code when it stopped without marking its trial FAIL, the database not answering (sysexits'
# EX_TEMPFAIL): it spent the stop's patience on the database, so its parent does not spend it again (Reaper).
UNRELEASED_EXIT = 75


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
    warnings.showwarning = console.warning_line  # as in the parent (hpo.cli.main)
    try:
        spec = load_spec(job.spec)
        spec = spec.replace(train=spec.train.replace(threads=job.threads))  # train() applies it per trial
        study, _ = create_or_join(spec, open_storage(job.url), job.study_name, job.seed)
        objective = Objective(spec, **job.objective_kwargs)
        run_worker(
            spec, study, job.n_trials, timeout=job.timeout, seed=job.seed, objective=objective, on_trial=publish_trial
        )
    except Unreleased:
        sys.exit(UNRELEASED_EXIT)
    except RunInterrupted:
        sys.exit(console.EXIT_INTERRUPTED)
    except CovblendError as e:
        console.error(str(e), source=f"worker {index}")
        sys.exit(console.EXIT_ERROR)


@dataclass
class Reaper:
    """supervise's on_death for workers on `study`: fails the trial each dead worker left RUNNING.

    A worker killed after ignoring the forwarded signal was being stopped: its trial ends FAIL with fail_reason
    "interrupted", like its siblings' trials. A worker that died otherwise (SIGKILL from outside, a crash)
    has its trial failed as "killed". Either is re-queued with the same params, so the others (or the next run)
    run it again. A worker that stopped with UNRELEASED_EXIT already tried and the database did not answer: its
    trial is left to the stale check (HPO_GRACE_S) without a second wait here.
    """

    study: optuna.Study
    deaths: list[Death] = field(default_factory=list)  # every death heard, in order
    unreleased: list[Death] = field(default_factory=list)  # those whose trial it could not fail

    def __call__(self, death: Death, stopping: bool) -> None:
        self.deaths.append(death)
        if death.trial_id is None:
            return
        if stopping and death.exitcode == UNRELEASED_EXIT:  # the worker's own try gave up a moment ago
            self.unreleased.append(death)
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
        with run_view(view, n_trials, spec.train.epochs, workers=workers) as live:

            def on_poll(alive: int) -> None:
                live.poll(study, alive, f"{threads} thread{'s' * (threads != 1)}{place}")

            codes, interrupted = supervise(worker_main, args, on_poll=on_poll, on_death=reaper, abandoned=abandoned)
    if interrupted and reaper.unreleased:
        left = left_running(study, len(reaper.unreleased))
        raise Unreleased(f"interrupted; the database does not answer: {left}")
    if interrupted:
        raise RunInterrupted(f"interrupted: the workers' running trials were marked FAIL (fail_reason={INTERRUPTED!r})")
    if not any(codes):
        return
    dead = "; ".join(d.describe() for d in reaper.deaths)
    done = finished(study.get_trials(deepcopy=False))
    if done < n_trials:
        raise CovblendError(f"{dead}; the study finished {done} of its {n_trials} trials")
    console.warn(f"{dead}; the other workers finished the study's {n_trials} trials")
