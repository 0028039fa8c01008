"""Trials of dead workers, found and released: heartbeat-stale trials, trials that never beat, interrupted ones
(DESIGN §7). Re-queueing is Optuna's RetryHeartbeatStaleTrialCallback, less the failed run's leftovers
(CleanRetry, configured in hpo.storage.open_storage); a result its owner computed after all is kept for the retry.
An interrupted trial is re-queued too: the params the sampler chose are re-run by another worker or the next run.
"""

from __future__ import annotations

import copy
import threading
import time

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from hpo.storage import internals
from hpo.storage.guard import INTERRUPTED, GuardedStorage, record

KEPT_ATTR = "kept_result"  # user attr of a FAIL trial: the values its owner computed after another process failed it
CONSTRAINTS = "constraints"  # Optuna's system attrs of a trial's constraints: "constraints", "constraints:<key>"
POLL_S = 1.0  # the orphan query runs at most this often; a worker with nothing to do also waits this long


def release_trial(study: optuna.Study, trial_id: int, reason: str | None, requeue: bool) -> bool:
    """FAIL a RUNNING trial whose process is gone; returns whether this call failed it.

    `reason` becomes its fail_reason. With `requeue`, the storage's heartbeat-stale callback (Optuna's
    RetryHeartbeatStaleTrialCallback) queues it again with the same params, as if the heartbeat had found it
    stale. A trial already finished, by its worker or by another process's check, is left alone.
    """
    backend = internals.backend(internals.storage_of(study))
    try:
        if backend.get_trial(trial_id).state != TrialState.RUNNING:
            return False
        if reason is not None:
            backend.set_trial_user_attr(trial_id, "fail_reason", reason)
        if not backend.set_trial_state_values(trial_id, TrialState.FAIL):
            return False
    except UpdateFinishedTrialError:
        return False  # another process finished or failed it between our read and our write
    if requeue:
        _requeue(study, backend.get_trial(trial_id))
    return True


def interrupt_trial(study: optuna.Study, trial_id: int) -> bool:
    """Settle the trial a stop signal cut short: FAIL with fail_reason "interrupted" (Optuna may have told the FAIL
    already) and queued again with the same params, as a dead worker's trial is (at most MAX_RETRY times), so that
    another worker, or the next run, re-runs it: a scheduler's time limit or `scancel` costs the trial's progress,
    not the sampler's choice. Returns whether it was queued; a trial that finished after all is left alone."""
    release_trial(study, trial_id, INTERRUPTED, requeue=False)  # still RUNNING when Optuna's own tell failed
    backend = internals.backend(internals.storage_of(study))
    trial = backend.get_trial(trial_id)
    if trial.state == TrialState.FAIL and "fail_reason" not in trial.user_attrs and isinstance(backend, GuardedStorage):
        # Stopped before the objective could say why, and told FAIL by Optuna: the interrupt is the reason.
        backend.annotate_trial(trial_id, {"fail_reason": INTERRUPTED}, "the fail_reason of an interrupted trial")
        trial = backend.get_trial(trial_id)
    if trial.state != TrialState.FAIL or trial.user_attrs.get("fail_reason") != INTERRUPTED:
        return False
    return _requeue(study, trial)


def _requeue(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Queue a FAIL trial again through the storage's heartbeat-stale callback (CleanRetry); whether it did."""
    callback = internals.backend(internals.storage_of(study)).get_heartbeat_stale_trial_callback()
    return callback is not None and bool(callback(study, trial))


class CleanRetry(RetryHeartbeatStaleTrialCallback):
    """Optuna's re-queueing of a stale trial (same params, at most max_retry times), without what the failed run
    left: its constraints, which trial.set_constraint would keep (it ignores a key already set) over the retry's
    own, and its user attrs (a checkpoint link, metrics; the retry records its own)."""

    def __init__(self, max_retry: int | None = None) -> None:
        super().__init__(max_retry)
        self.max_retry = max_retry  # Optuna keeps it private; __call__ says whether it queued

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        """Queue `trial` again unless it was retried max_retry times already; returns whether it was queued."""
        if self.max_retry is not None and len(trial.system_attrs.get("retry_history", [])) >= self.max_retry:
            return False  # what Optuna's callback would decide, decided here so that callers can say it
        clean = copy.deepcopy(trial)
        clean.system_attrs = {k: v for k, v in trial.system_attrs.items() if not k.startswith(CONSTRAINTS)}
        clean.user_attrs = {}
        super().__call__(study, clean)
        return True


def keep_result(study: optuna.Study, trial_id: int, values: list[float]) -> int | None:
    """Keep `values`, computed for a trial another process failed meanwhile (its heartbeat went stale in an outage
    longer than the grace period), on that FAIL trial for its retry (kept_result); returns its number, or None
    when the trial is not FAIL or the storage cannot write to a finished trial."""
    backend = internals.backend(internals.storage_of(study))
    trial = backend.get_trial(trial_id)
    if not isinstance(backend, GuardedStorage) or trial.state != TrialState.FAIL:
        return None
    backend.annotate_trial(trial_id, {KEPT_ATTR: list(values)}, "a result kept for a re-run")
    return trial.number


def kept_result(study: optuna.Study, trial: optuna.Trial) -> list[float] | None:
    """The values kept for `trial` when it re-runs a trial whose result was kept (keep_result), else None. The
    kept run's constraints and user attrs (metrics, checkpoint link) become the retry's, as they belong to it."""
    history = internals.cached(trial).system_attrs.get("retry_history")
    if not history:
        return None
    backend = internals.backend(internals.storage_of(study))
    failed = backend.get_trial(backend.get_trial_id_from_study_id_trial_number(internals.study_id(study), history[-1]))
    values = failed.user_attrs.get(KEPT_ATTR)
    if values is None:
        return None
    for key, value in failed.system_attrs.items():
        if key.startswith(CONSTRAINTS):
            backend.set_trial_system_attr(internals.trial_id(trial), key, value)
    record(trial, {k: v for k, v in failed.user_attrs.items() if k not in (KEPT_ATTR, "fail_reason")})
    return values


def grace_s(study: optuna.Study) -> float | None:
    """How long a RUNNING trial of `study` may go without a heartbeat before another process fails and re-runs
    it; None when its storage writes no heartbeats."""
    backend = _heartbeats(study)
    if backend is None:
        return None
    return backend.grace_period or 2 * backend.get_heartbeat_interval()  # Optuna's own default


def _heartbeats(study: optuna.Study) -> GuardedStorage | None:
    """The study's GuardedStorage when it writes heartbeats, else None (a trial without one proves nothing)."""
    backend = internals.backend(internals.storage_of(study))
    if isinstance(backend, GuardedStorage) and backend.get_heartbeat_interval() is not None:
        return backend
    return None


class OrphanWatch:
    """Fails and re-queues RUNNING trials that have no heartbeat row at all.

    A worker killed between creating a trial and its heartbeat thread's first write leaves such a trial, and
    Optuna's stale check skips trials without a heartbeat row, so it would stay RUNNING for ever. A trial counts as
    orphaned once this process has seen it without a heartbeat row for the grace period. The age is measured
    here, on a monotonic clock, rather than from datetime_start: that column holds the creating host's naive
    local time, which a worker in another time zone (a UTC container beside a host process) would misread.
    """

    def __init__(self) -> None:
        self.first_seen: dict[int, float] = {}  # trial id -> when this process first saw it without a heartbeat
        self.checked = -float("inf")  # monotonic time of the last query
        self.lock = threading.Lock()  # the worker loop and the heartbeat thread both check

    def check(self, study: optuna.Study) -> list[int]:
        """Query at most every POLL_S; release the trials orphaned for the grace period; returns their ids."""
        with self.lock:
            backend, now = _heartbeats(study), time.monotonic()
            if backend is None or now - self.checked < POLL_S:
                return []
            self.checked = now
            ids, grace = backend.orphan_trial_ids(internals.study_id(study)), grace_s(study)
            self.first_seen = {i: self.first_seen.get(i, now) for i in ids}
            orphaned = [i for i, seen in self.first_seen.items() if now - seen > grace]
            return [i for i in orphaned if release_trial(study, i, None, True)]


def fail_stale(study: optuna.Study, orphans: OrphanWatch) -> None:
    """Fail and re-queue trials of dead workers now (Optuna does it only when a trial starts), orphans included.

    What optuna.storages.fail_stale_trials does, through release_trial: that function warns on every call as
    experimental, and silencing it with warnings.catch_warnings is not thread-safe (this runs in the heartbeat
    thread too).
    """
    backend = _heartbeats(study)
    if backend is not None:
        for trial_id in backend._get_stale_trial_ids(internals.study_id(study)):  # Optuna's check, retried
            release_trial(study, trial_id, None, requeue=True)
    orphans.check(study)
