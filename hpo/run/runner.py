"""One process's worker loop: run trials of a study until its global budget (hpo.storage.guard.count_used) is
used; hpo.run.workers runs several of these loops on one study."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import TYPE_CHECKING

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from hpo import console
from hpo.run.signals import StopAtSafePoint, Stopped, handling
from hpo.storage import internals
from hpo.storage.deadline import impatient
from hpo.storage.guard import (
    INTERRUPTED,
    BudgetReached,
    GuardedStorage,
    StorageFull,
    StorageUnavailable,
    budget_used,
    disk_full,
    record,
    retry_transient,
)
from hpo.storage.recovery import (
    POLL_S,
    OrphanWatch,
    fail_stale,
    grace_s,
    interrupt_trial,
    keep_result,
    kept_result,
)
from hpo.study.hooks import TrialHooks
from hpo.study.seeds import reseed

if TYPE_CHECKING:
    from hpo.study.spec import StudySpec

RELEASE_S = 5.0  # after a stop signal, how long marking the running trial FAIL may wait for the database


class RunInterrupted(Stopped):
    """The run was stopped by a signal (Ctrl-C, SIGTERM, SIGHUP); its running trial was marked FAIL."""


class Unreleased(RunInterrupted):
    """The run was stopped, but its running trial could not be marked FAIL: the database did not answer."""


def left_running(study: optuna.Study, trials: int) -> str:
    """What becomes of `trials` running trials of `study` that a stop could not mark FAIL (a second signal, a
    database that does not answer): the tail of its line."""
    if trials == 0:
        return "no trial was running"
    grace = grace_s(study)
    after = "HPO_GRACE_S" if grace is None else f"HPO_GRACE_S ({grace:g} s)"
    what, it = ("the running trial", "it is") if trials == 1 else (f"the {trials} running trials", "they are")
    return (
        f"{what} could not be marked FAIL; after {after} without a heartbeat, {it} failed and re-run by another worker"
    )


class RunWatcher:
    """What a live display hears from the worker loop; the base class ignores everything."""

    def trial_started(self, study: optuna.Study) -> None: ...

    def epoch(self, trial_number: int, epoch: int, metrics: dict) -> None: ...

    def trial_finished(self, study: optuna.Study, trial: FrozenTrial) -> None: ...


def _next_step(study: optuna.Study, n_trials: int) -> str:
    """ "run" a trial, "wait" for other workers' running trials (one may be a dead worker's), or "stop"."""
    trials = study.get_trials(deepcopy=False)
    if budget_used(trials) < n_trials or any(t.state == TrialState.WAITING for t in trials):
        return "run"
    return "wait" if any(t.state == TrialState.RUNNING for t in trials) else "stop"


def run_worker(
    spec: StudySpec,
    study: optuna.Study,
    n_trials: int,
    *,
    objective: Callable[[optuna.Trial, TrialHooks], object],
    timeout: float | None = None,
    seed: int | None = None,
    watcher: RunWatcher | None = None,
    on_trial: Callable[[int | None], None] | None = None,
) -> None:
    """Run trials until the study's budget of n_trials is used or `timeout` seconds pass.

    Several processes (on any hosts) may run this on one study; on a GuardedStorage the budget is exact. A worker
    whose budget is used stays while other trials run, failing and re-running the trials of workers that died, so
    the study ends with nothing RUNNING. One trial's failure never stops the loop; a signal stops it at a safe
    point (hpo.run.signals.StopAtSafePoint) and raises RunInterrupted. on_trial hears each trial's id as its
    objective starts and None when it ends; watcher hears of trials and epochs. objective (the trainer's is
    hpo.study.objective.Objective(spec); the caller builds it, so that this loop imports no torch) is called as
    objective(trial, hooks): the TrialHooks of this loop's display and stop check.
    """
    watcher = watcher or RunWatcher()
    deadline = None if timeout is None else time.monotonic() + timeout
    backend = internals.backend(internals.storage_of(study))
    guarded = backend if isinstance(backend, GuardedStorage) else None
    orphans = OrphanWatch()
    publish = on_trial or (lambda trial_id: None)
    sampled_by = {} if spec is None else reseed(study, spec, seed)
    stay = ExitStack()  # leaves the storage's serving() when the loop ends, however it ends
    if guarded is not None:
        # Between trials the loop below checks for dead workers' trials; during one, each heartbeat does.
        stay.enter_context(guarded.serving(n_trials, on_heartbeat=lambda: fail_stale(study, orphans)))

    current_trial_id: int | None = None  # the RUNNING trial of this loop, for the cleanup of an interrupt
    computed: dict[int, list[float]] = {}  # this loop's trial id -> its values, until Optuna has told them
    fatal: list[StorageFull] = []  # a full disk met inside the trial: the loop stops after Optuna has told its FAIL

    def run_one(trial: optuna.Trial):
        nonlocal current_trial_id
        current_trial_id = internals.trial_id(trial)
        publish(current_trial_id)
        stop.checkpoint()  # a signal since the ask stops the trial here, where it is known and settled as interrupted
        kept = kept_result(study, trial)
        if kept is not None:  # it re-runs a trial whose values were computed after all: no second training
            return kept[0] if len(kept) == 1 else kept
        try:
            if sampled_by:
                record(trial, sampled_by)
            values = objective(trial, hooks)
        except Exception as e:
            # Optuna records what the objective raises as the trial's FAIL and goes on (catch); a full disk must
            # stop the worker instead, or every later trial fails the same way at once and burns the budget.
            fatal[:] = [full] if (full := disk_full(e)) is not None else []
            raise
        computed[internals.trial_id(trial)] = list(values) if isinstance(values, (list, tuple)) else [values]
        return values

    # Told to stop, this worker's storage calls wait RELEASE_S at most: a database that does not answer must not
    # hold the exit (Optuna's FAIL of the trial, then ours) for the minutes an outage is otherwise ridden out.
    # Busy from Optuna's ask to its tell: a signal raised between the ask and the objective's first line left the
    # new trial RUNNING, unknown to this loop, until its heartbeat went stale.
    in_trial = False
    stop = StopAtSafePoint(
        busy=lambda: in_trial,
        on_stop=lambda: impatient(RELEASE_S),
        abandoned=lambda: f"interrupted again: {left_running(study, int(stop.busy()))}",
    )

    def on_epoch(trial_number: int, epoch: int, metrics: dict) -> None:
        stop.checkpoint()
        watcher.epoch(trial_number, epoch, metrics)

    hooks = TrialHooks(on_epoch=on_epoch, on_step=lambda epoch, step: stop.checkpoint())
    try:
        with handling(stop):
            while deadline is None or time.monotonic() < deadline:
                stop.checkpoint()
                orphans.check(study)  # early, so an orphan's grace period runs while this worker still has work
                step = retry_transient(lambda: _next_step(study, n_trials), "budget check")
                if step == "stop":
                    break
                if step == "wait":
                    retry_transient(lambda: fail_stale(study, orphans), "stale-trial check")
                    time.sleep(POLL_S)
                    continue
                try:
                    watcher.trial_started(study)
                    in_trial = True
                    study.optimize(
                        run_one,
                        n_trials=1,
                        catch=(Exception,),  # recorded as FAIL with fail_reason by the objective; the worker goes on
                        gc_after_trial=False,
                        callbacks=[watcher.trial_finished],
                    )
                except BudgetReached:
                    pass  # another worker took the last slot between our check and our ask; check again
                except (ValueError, AssertionError, UpdateFinishedTrialError) as e:
                    # Optuna could not tell a computed result: another process failed the trial meanwhile (its
                    # heartbeat went stale in an outage longer than the grace period) and queued a retry. Optuna 5
                    # raises ValueError("Cannot tell a FAIL trial"), which its own `finally` turns into an
                    # AssertionError; keep_result confirms the trial is FAIL before either is taken for this.
                    full = disk_full(e)  # Optuna's `finally` turns a tell the full disk refused into an AssertionError
                    if full is not None:
                        raise StorageFull(f"{full}: {left_running(study, 1)}") from None
                    number = next((keep_result(study, tid, v) for tid, v in computed.items()), None)
                    if number is None:
                        raise
                    console.warn(
                        f"trial #{number} was failed by another process while its result was computed "
                        f"({computed.popitem()[1]}): kept for its re-run"
                    )
                finally:
                    in_trial = False
                if fatal:
                    raise StorageFull(f"{fatal[0]}: the trial it was running is FAIL; no further trial was started")
                computed.clear()
                current_trial_id = None
                publish(None)
    except (KeyboardInterrupt, Exception) as e:
        # A stop under way may surface as another error: Optuna fails the trial itself on KeyboardInterrupt, and
        # when the database does not answer that write, its `finally` loses the interrupt (UnboundLocalError). A
        # signal that lands in a storage write of the trial makes that write give up (impatient) before any safe
        # point is reached: the same error, with the stop requested but not begun.
        if not isinstance(e, KeyboardInterrupt) and not (stop.stopping or stop.requested):
            raise
        if current_trial_id is None:
            raise RunInterrupted("interrupted: no trial was running") from e
        try:
            queued = interrupt_trial(study, current_trial_id)
        except StorageUnavailable:
            raise Unreleased(f"interrupted; the database does not answer: {left_running(study, 1)}") from e
        again = ", and queued again with its params" if queued else ""
        failed = f"the running trial was marked FAIL (fail_reason={INTERRUPTED!r}){again}"
        raise RunInterrupted(f"interrupted: {failed}") from e
    finally:
        impatient(None)
        stay.close()
