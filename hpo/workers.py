"""Several worker processes on one host sharing a study: `hpo run --workers W`.

The parent creates (or joins) the study once, before any worker starts, so workers never race to create
tables or the study. Each worker is a spawned process running hpo.runner.run_worker with its share of the
CPU threads, max(1, cores // W), and its own sampler seed (seed + index: identical seeds would make every
worker's random start-up trials the same). The budget is the study's total, held exactly by GuardedStorage.
Workers sit in their own process group: Ctrl-C or SIGTERM reaches the parent, which forwards it once, so each
worker marks its running trial FAIL (interrupted) and exits within STOP_S.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import optuna
from rich.console import Console

from core.errors import CovblendError
from hpo.spec import StudySpec

STOP_S = 10.0  # a worker that has not stopped this long after the forwarded signal is killed
POLL_S = 0.5  # the parent refreshes its aggregated view this often
EXIT_INTERRUPTED = 130  # exit code of a worker (and of `hpo run`) stopped by Ctrl-C or SIGTERM
EXIT_ERROR = 2  # exit code of a worker that hit a CovblendError (one line on stderr)


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Torch threads for each of `workers` processes sharing `cores` (default: this machine's)."""
    return max(1, (cores or os.cpu_count() or 1) // workers)


@dataclass(frozen=True)
class WorkerJob:
    """What one spawned worker needs; plain values so it pickles."""

    spec: str  # spec path (as given to load_spec)
    url: str  # storage URL, password included: it never leaves this host's process table in clear text
    study_name: str  # the study, already created by the parent
    n_trials: int  # the study's total budget
    threads: int  # torch threads of this worker
    seed: int | None  # base sampler seed; worker i uses seed + i
    timeout: float | None  # seconds after which no new trial starts
    objective_kwargs: dict  # extra Objective arguments (e.g. the artifact store), picklable


def worker_main(job: WorkerJob, index: int) -> None:
    """Body of one spawned worker; exits 0, EXIT_INTERRUPTED or EXIT_ERROR."""
    os.setpgrp()  # a terminal's Ctrl-C goes to the parent only, which forwards it exactly once
    import torch

    from hpo.objective import Objective
    from hpo.runner import RunInterrupted, create_or_join, run_worker
    from hpo.spec import load_spec
    from hpo.storage import open_storage

    torch.set_num_threads(job.threads)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        spec = load_spec(job.spec)
        spec = replace(spec, train=replace(spec.train, threads=job.threads))  # train() applies it per trial
        base = spec.sampler.seed if job.seed is None else job.seed
        seed = None if base is None else base + index  # no seed anywhere: every worker draws its own
        study, _ = create_or_join(spec, open_storage(job.url), job.study_name, seed)
        run_worker(spec, study, job.n_trials, timeout=job.timeout, objective=Objective(spec, **job.objective_kwargs))
    except RunInterrupted:
        sys.exit(EXIT_INTERRUPTED)
    except CovblendError as e:
        print(f"worker {index}: error: {e}", file=sys.stderr)
        sys.exit(EXIT_ERROR)


def supervise(
    target: Callable,
    args: list[tuple],
    *,
    on_poll: Callable[[int], None] | None = None,
    poll_s: float = POLL_S,
) -> tuple[list[int], bool]:
    """Start one spawned process per args tuple running target(*args) and wait for all.

    Returns their exit codes and whether a signal stopped them.

    on_poll(alive) is called about every poll_s seconds. SIGTERM or SIGINT to this process is forwarded to
    every worker once; workers still alive STOP_S seconds later are killed (exit code -9).
    """
    ctx = multiprocessing.get_context("spawn")  # no forked torch or database connections
    procs = [ctx.Process(target=target, args=a, name=f"hpo-worker-{i}") for i, a in enumerate(args)]
    stopping: list[float] = []

    def forward(signum, frame):
        if not stopping:
            stopping.append(time.monotonic())
            for p in procs:
                if p.pid is not None and p.is_alive():
                    os.kill(p.pid, signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for p in procs:
            p.start()
        while any(p.is_alive() for p in procs):
            if stopping and time.monotonic() - stopping[0] > STOP_S:
                for p in procs:
                    if p.is_alive():
                        p.kill()
            if on_poll is not None:
                on_poll(sum(p.is_alive() for p in procs))
            time.sleep(poll_s)
        if on_poll is not None:
            on_poll(0)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return [p.exitcode for p in procs], bool(stopping)


def run_workers(job: WorkerJob, workers: int, on_poll: Callable[[int], None] | None = None) -> tuple[list[int], bool]:
    """Run `workers` copies of worker_main on `job` (study already created); returns exit codes, interrupted."""
    return supervise(worker_main, [(job, i) for i in range(workers)], on_poll=on_poll)


def run_parallel(
    spec: StudySpec,
    study: optuna.Study,
    url: str,
    n_trials: int,
    workers: int,
    *,
    timeout: float | None = None,
    seed: int | None = None,
    console: Console | None = None,
    objective_kwargs: dict | None = None,
) -> None:
    """`hpo run --workers W` after the study exists: W workers and one aggregated live view on `console`.

    Raises RunInterrupted when the workers were stopped by a signal, CovblendError when one failed.
    """
    from hpo.display import LiveDisplay
    from hpo.runner import RunInterrupted
    from hpo.storage import sqlite_file

    threads = threads_per_worker(workers)
    if sqlite_file(url) is not None:
        print("warning: SQLite serialises every write; use PostgreSQL for parallel workers", file=sys.stderr)
    job = WorkerJob(str(spec.path), url, study.study_name, n_trials, threads, seed, timeout, objective_kwargs or {})
    if console is None:
        codes, interrupted = run_workers(job, workers)
    else:
        with LiveDisplay(console, n_trials, spec.train.epochs) as live:

            def on_poll(alive: int) -> None:
                live.progress.update(live.task, description=f"{alive}/{workers} workers x {threads} threads")
                live.trial_started(study)  # LiveDisplay's refresh from the study: progress bar and counts

            codes, interrupted = run_workers(job, workers, on_poll)
    if interrupted:
        raise RunInterrupted("interrupted: the workers' running trials were marked FAIL (fail_reason='interrupted')")
    if any(codes):
        raise CovblendError(f"{sum(c != 0 for c in codes)} of {workers} workers failed (exit codes {codes})")


class Probe:
    """A trivial objective for load tests: one float, `steps` report/should_prune calls, ~no compute.

    It has the attributes run_worker sets and reads, so it stands in for hpo.objective.Objective. The seconds
    each report and should_prune took are kept in `latencies` (storage round trips plus the pruner's reads).
    """

    def __init__(self, steps: int = 3, sleep_s: float = 0.0) -> None:
        self.steps = steps
        self.sleep_s = sleep_s
        self.observer = None
        self.current_trial_id: int | None = None
        self.latencies: dict[str, list[float]] = {"report": [], "should_prune": []}

    def __call__(self, trial: optuna.Trial) -> float:
        self.current_trial_id = trial._trial_id
        x = trial.suggest_float("x", -1.0, 1.0)
        for step in range(self.steps):
            time.sleep(self.sleep_s)
            t0 = time.perf_counter()
            trial.report(x * x + 1.0 / (step + 1), step)
            t1 = time.perf_counter()
            pruned = trial.should_prune()
            self.latencies["report"].append(t1 - t0)
            self.latencies["should_prune"].append(time.perf_counter() - t1)
            if pruned:
                raise optuna.TrialPruned()
        return x * x


def probe_main(
    url: str, study_name: str, n_trials: int, steps: int, sleep_s: float = 0.0, out_path: str | None = None
) -> None:
    """Body of one load-test worker: Probe trials until the study's budget is used; latencies to out_path."""
    import json

    from hpo.runner import run_worker
    from hpo.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(
        study_name=study_name,
        storage=open_storage(url),
        sampler=optuna.samplers.RandomSampler(),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5),
    )
    probe = Probe(steps, sleep_s)
    run_worker(None, study, n_trials, objective=probe)
    if out_path:
        with open(out_path, "w") as f:
            json.dump(probe.latencies, f)
