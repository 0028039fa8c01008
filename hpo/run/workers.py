"""Several worker processes on one host sharing a study: `hpo run --workers W`.

The parent creates (or joins) the study once, before any worker starts, so workers never race to create
tables or the study. Each worker is a spawned process running hpo.run.runner.run_worker with its share of the
CPU threads, max(1, cores // W), and its own sampler seed (seed + index: identical seeds would make every
worker's random start-up trials the same). The budget is the study's total, held exactly by GuardedStorage.
With GPUs (`--gpus`), worker i sees one GPU through CUDA_VISIBLE_DEVICES, assigned round-robin by hpo.run.gpus.assign.
Workers sit in their own process group: Ctrl-C or SIGTERM reaches the parent, which forwards it once, so each
worker marks its running trial FAIL (interrupted) and exits within STOP_S.

Each worker publishes the id of its running trial in shared memory, so the parent can clean up after a worker
that cannot: one it had to SIGKILL after STOP_S has its trial failed as interrupted, and one that died on its own
(killed from outside, a crash) has its trial failed as "killed" and re-queued with the same params at once,
instead of after the heartbeat's grace period.
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
from rich.console import Console

from core.errors import CovblendError
from hpo.run.gpus import assign, summary
from hpo.study.spec import StudySpec

STOP_S = 10.0  # a worker that has not stopped this long after the forwarded signal is killed
POLL_S = 0.5  # the parent refreshes its aggregated view this often
EXIT_INTERRUPTED = 130  # exit code of a worker (and of `hpo run`) stopped by Ctrl-C or SIGTERM
EXIT_ERROR = 2  # exit code of a worker that hit a CovblendError (one line on stderr)
KILLED = "killed"  # fail_reason of the trial of a worker that died without cleaning up (SIGKILL, a crash)
NO_TRIAL = -1  # a worker's trial slot between trials

# In a supervised worker: shared memory where it publishes its running trial's id for the parent (None elsewhere).
_trial_slot = None


def publish_trial(trial_id: int | None) -> None:
    """Tell the supervising parent which trial this worker runs (None: none); a no-op outside supervise."""
    if _trial_slot is not None:
        _trial_slot.value = NO_TRIAL if trial_id is None else trial_id


def _supervised(target: Callable, args: tuple, slot) -> None:
    """A worker's entry point: remember the trial slot, then run target(*args)."""
    global _trial_slot
    _trial_slot = slot
    target(*args)


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
    devices: tuple[str, ...] = ()  # CUDA_VISIBLE_DEVICES of worker i (hpo.run.gpus.assign); () leaves it alone


def worker_main(job: WorkerJob, index: int) -> None:
    """Body of one spawned worker; exits 0, EXIT_INTERRUPTED or EXIT_ERROR."""
    os.setpgrp()  # a terminal's Ctrl-C goes to the parent only, which forwards it exactly once
    if job.devices:  # CUDA reads it at its first call, which comes later (a spawned process starts clean)
        os.environ["CUDA_VISIBLE_DEVICES"] = job.devices[index]
    import torch

    from hpo.run.runner import RunInterrupted, create_or_join, run_worker
    from hpo.storage import open_storage
    from hpo.study.objective import Objective
    from hpo.study.spec import load_spec

    torch.set_num_threads(job.threads)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        spec = load_spec(job.spec)
        spec = spec.replace(train=spec.train.replace(threads=job.threads))  # train() applies it per trial
        base = spec.sampler.seed if job.seed is None else job.seed
        seed = None if base is None else base + index  # no seed anywhere: every worker draws its own
        study, _ = create_or_join(spec, open_storage(job.url), job.study_name, seed)
        objective = Objective(spec, **job.objective_kwargs)
        run_worker(spec, study, job.n_trials, timeout=job.timeout, objective=objective, on_trial=publish_trial)
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
    on_death: Callable[[Death, bool], None] | None = None,
) -> tuple[list[int], bool]:
    """Start one spawned process per args tuple running target(*args) and wait for all.

    Returns their exit codes and whether a signal stopped them.

    on_poll(alive) is called about every poll_s seconds. SIGTERM or SIGINT to this process is forwarded to
    every worker once; workers still alive STOP_S seconds later are killed (exit code -9). on_death(death,
    stopping) hears, once, of each worker that exited non-zero, within poll_s of its end; death.trial_id is
    the trial it published with publish_trial, and `stopping` tells whether a signal was being forwarded.
    """
    ctx = multiprocessing.get_context("spawn")  # no forked torch or database connections
    # lock=False: a worker SIGKILLed while holding a lock would leave the parent blocked on its next read.
    # A lone 64-bit store is not torn on the platforms we run on.
    slots = [ctx.Value("q", NO_TRIAL, lock=False) for _ in args]
    procs = [
        ctx.Process(target=_supervised, args=(target, a, slot), name=f"hpo-worker-{i}")
        for i, (a, slot) in enumerate(zip(args, slots, strict=True))
    ]
    stopping: list[float] = []
    reported: set[int] = set()

    def report_deaths() -> None:
        for i, p in enumerate(procs):
            if i in reported or p.is_alive() or not p.exitcode:
                continue
            reported.add(i)
            if on_death is not None:
                trial_id = slots[i].value
                on_death(Death(i, p.pid, p.exitcode, None if trial_id == NO_TRIAL else trial_id), bool(stopping))

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
            report_deaths()
            if on_poll is not None:
                on_poll(sum(p.is_alive() for p in procs))
            time.sleep(poll_s)
        report_deaths()
        if on_poll is not None:
            on_poll(0)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return [p.exitcode for p in procs], bool(stopping)


@dataclass
class Reaper:
    """supervise's on_death for workers on `study`: fails the trial each dead worker left RUNNING.

    A worker killed after ignoring the forwarded signal was being stopped: its trial ends FAIL with fail_reason
    "interrupted", like its siblings' trials. A worker that died otherwise (SIGKILL from outside, a crash)
    has its trial failed as "killed" and re-queued with the same params, so the others can run it now.
    """

    study: optuna.Study
    deaths: list[Death] = field(default_factory=list)  # every death heard, in order

    def __call__(self, death: Death, stopping: bool) -> None:
        from hpo.run.runner import release_trial
        from hpo.storage.guard import INTERRUPTED, TRANSIENT

        self.deaths.append(death)
        if death.trial_id is None:
            return
        reason = INTERRUPTED if stopping else KILLED
        try:
            release_trial(self.study, death.trial_id, reason, requeue=not stopping)
        except TRANSIENT as e:  # the storage retried for minutes; the heartbeat's stale check will fail it later
            print(f"warning: could not fail trial id {death.trial_id} of {death.describe()}: {e}", file=sys.stderr)


def run_workers(
    job: WorkerJob,
    workers: int,
    on_poll: Callable[[int], None] | None = None,
    on_death: Callable[[Death, bool], None] | None = None,
) -> tuple[list[int], bool]:
    """Run `workers` copies of worker_main on `job` (study already created); returns exit codes, interrupted."""
    return supervise(worker_main, [(job, i) for i in range(workers)], on_poll=on_poll, on_death=on_death)


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
    gpus: tuple[int, ...] = (),
) -> None:
    """`hpo run --workers W` after the study exists: W workers and one aggregated live view on `console`.

    gpus: device indices (already checked by hpo.run.gpus.check_gpus) the workers take round-robin; () for none.

    Raises RunInterrupted when the workers were stopped by a signal. A worker that died leaves a warning line
    on stderr when the others finished the budget, and raises CovblendError when the budget was not reached.
    """
    from hpo.run.display import LiveDisplay
    from hpo.run.runner import RunInterrupted
    from hpo.storage import sqlite_file
    from hpo.storage.guard import budget_used

    threads = threads_per_worker(workers)
    if sqlite_file(url) is not None and workers > 1:
        print("warning: SQLite serialises every write; use PostgreSQL for parallel workers", file=sys.stderr)
    devices = assign(workers, gpus, os.environ.get("CUDA_VISIBLE_DEVICES")) if gpus else ()
    place = f" on {summary(devices)}" if devices else ""
    job = WorkerJob(
        str(spec.path), url, study.study_name, n_trials, threads, seed, timeout, objective_kwargs or {}, devices
    )
    reaper = Reaper(study)
    if console is None:
        codes, interrupted = run_workers(job, workers, on_death=reaper)
    else:
        with LiveDisplay(console, n_trials, spec.train.epochs) as live:

            def on_poll(alive: int) -> None:
                live.poll(study, f"{alive}/{workers} workers x {threads} threads{place}")

            codes, interrupted = run_workers(job, workers, on_poll, reaper)
    if interrupted:
        raise RunInterrupted("interrupted: the workers' running trials were marked FAIL (fail_reason='interrupted')")
    if not any(codes):
        return
    dead = "; ".join(d.describe() for d in reaper.deaths)
    # Reached means finished: a dead worker's re-queued trial counts in the budget but nobody here will run it.
    done = budget_used([t for t in study.get_trials(deepcopy=False) if t.state.is_finished()])
    if done < n_trials:
        raise CovblendError(f"{dead}; the study finished {done} of its {n_trials} trials")
    print(f"warning: {dead}; the other workers finished the study's {n_trials} trials", file=sys.stderr)


class Probe:
    """A trivial objective for load tests: one float, `steps` report/should_prune calls, ~no compute.

    It has the attributes run_worker sets and reads, so it stands in for hpo.study.objective.Objective. The seconds
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

    from hpo.run.runner import run_worker
    from hpo.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(
        study_name=study_name,
        storage=open_storage(url),
        sampler=optuna.samplers.RandomSampler(),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5),
    )
    probe = Probe(steps, sleep_s)
    run_worker(None, study, n_trials, objective=probe, on_trial=publish_trial)
    if out_path:
        with open(out_path, "w") as f:
            json.dump(probe.latencies, f)
