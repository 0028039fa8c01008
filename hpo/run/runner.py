"""Create-or-join a study and run trials until the study's global budget is used.

The budget counts trials that finished (COMPLETE, PRUNED, FAIL), are RUNNING or are queued (WAITING), across
every run and worker on the study, so a second `hpo run` only does what is left. Trials stopped by the user
(fail_reason "interrupted") and heartbeat-stale trials that were re-queued do not consume budget: their retry
does (hpo.storage.guard.count_used). `run_worker` is one process's loop; hpo.run.workers runs several on one study.
"""

from __future__ import annotations

import copy
import math
import signal
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import optuna
import sqlalchemy as sa
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RDBStorage
from optuna.storages._rdb import models
from optuna.trial import FrozenTrial, TrialState

from core.errors import CovblendError
from hpo.storage.guard import INTERRUPTED, TRANSIENT, BudgetReached, GuardedStorage, budget_used, retry_transient
from hpo.study.objective import NONFINITE, Objective
from hpo.study.pruners import ParetoRungPruner
from hpo.study.spec import OBJECTIVE_ALIASES, StudySpec, is_feasible
from hpo.study.study_spec import store_spec

# Sampler and pruner by spec name. Samplers read constraints set by trial.set_constraint (Optuna 5).
SAMPLERS: dict[str, Callable] = {
    "tpe": lambda s, seed: optuna.samplers.TPESampler(seed=seed, n_startup_trials=s.sampler.n_startup_trials),
    "gp": lambda s, seed: optuna.samplers.GPSampler(seed=seed, n_startup_trials=s.sampler.n_startup_trials),
    "random": lambda s, seed: optuna.samplers.RandomSampler(seed=seed),
    "cmaes": lambda s, seed: optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=s.sampler.n_startup_trials),
}
PRUNERS: dict[str, Callable] = {
    "median": lambda s: optuna.pruners.MedianPruner(
        n_startup_trials=s.pruner.n_startup_trials, n_warmup_steps=s.pruner.n_warmup_steps
    ),
    "hyperband": lambda s: optuna.pruners.HyperbandPruner(
        min_resource=s.pruner.min_resource, max_resource=s.train.epochs, reduction_factor=s.pruner.reduction_factor
    ),
    "successive-halving": lambda s: optuna.pruners.SuccessiveHalvingPruner(
        min_resource=s.pruner.min_resource, reduction_factor=s.pruner.reduction_factor
    ),
    "mo-asha": lambda s: ParetoRungPruner(  # multi-objective studies (hpo.study.pruners)
        s.pruner.min_resource, s.pruner.reduction_factor, s.pruner.n_startup_trials, s.pruner.dominated_fraction
    ),
    "none": lambda s: optuna.pruners.NopPruner(),
}
LINGER_POLL_S = 1.0  # how often a worker with nothing to do checks for stale trials of dead workers


class StudyMismatchError(CovblendError):
    """An existing study cannot be joined with this spec (different objective directions)."""


class RunInterrupted(CovblendError):
    """The run was stopped by Ctrl-C or SIGTERM; its running trial was marked FAIL."""


class _Terminated(KeyboardInterrupt):
    """SIGTERM or Ctrl-C, raised where it is safe, so Optuna marks the running trial FAIL."""


class _StopOnSignal:
    """SIGTERM and SIGINT handler of run_worker: raise at a safe point, not wherever the signal lands.

    An exception raised inside a storage call can leave a connection checked out in the middle of a write;
    on SQLite its lock then blocks the FAIL writes that follow, which retry for minutes instead of the run
    stopping. So while a trial runs, a signal only sets `requested`, and `checkpoint` raises at the next safe
    point: before the trial's next optimiser step (core.train's on_step) or at its epoch boundary (before the
    epoch's storage writes), whichever comes first. The wait is therefore at most one optimiser step, or one
    validation pass when the signal lands in one. Between trials, and on a second signal, it raises at once.
    """

    def __init__(self, objective: Objective) -> None:
        self.objective = objective
        self.requested = False

    def __call__(self, signum, frame) -> None:
        if self.requested or self.objective.current_trial_id is None:
            raise _Terminated()
        self.requested = True

    def checkpoint(self) -> None:
        if self.requested:
            raise _Terminated()


@dataclass(frozen=True)
class Tally:
    """Trial counts of a study, its best value so far, and what the best trial says about itself."""

    complete: int
    pruned: int  # pruned by the pruner (or a non-finite metric)
    nan_pruned: int  # pruned for a non-finite loss or gradient
    failed: int
    running: int
    waiting: int  # queued, e.g. retries of stale trials
    best: float | None  # best feasible value (single) or best first value on the front (multi)
    best_number: int | None
    best_gain_db: float | None = None  # the best trial's NMSE gain over R_samp, dB (> 0: R_blend is better)
    best_health: float | None = None  # the best trial's final eigengap health, in [0, 1]
    prune_reasons: dict[str, int] = field(default_factory=dict)  # PRUNED trials per prune_reason, most first


# The objective's names for the validation NMSE of R_blend, newest first (older studies used the first one).
NMSE_ATTRS = ("nmse_db", "val_nmse_db")


def _number(value) -> float | None:
    """A finite float from a stored attr value, else None (bool, str and NaN are no numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def gain_over_samp(attrs: dict) -> float | None:
    """NMSE gain of R_blend over R_samp in dB from a trial's user attrs: gain_db, else nmse_samp_db − NMSE."""
    if "gain_db" in attrs:
        return _number(attrs["gain_db"])
    samp = _number(attrs.get("nmse_samp_db"))
    nmse = next((v for v in (_number(attrs.get(k)) for k in NMSE_ATTRS) if v is not None), None)
    return None if samp is None or nmse is None else samp - nmse


def final_health(attrs: dict) -> float | None:
    """A trial's final eigengap health from its user attrs, however it was stored.

    eigengap_health_final (a number) wins; else eigengap_health, either a number (the final value) or the
    per-epoch list (its last entry is the final value).
    """
    for key in ("eigengap_health_final", "eigengap_health"):
        value = attrs.get(key)
        if isinstance(value, list):
            value = value[-1] if value else None
        found = _number(value)
        if found is not None:
            return found
    return None


def tally(study: optuna.Study) -> Tally:
    """tally_trials of the study's trials, from one read."""
    return tally_trials(study.get_trials(deepcopy=False))


def tally_trials(trials: Sequence[FrozenTrial]) -> Tally:
    """Counts by state, NaN-pruned apart, prune reasons, and the best trial's value, gain and health."""
    count = {s: 0 for s in TrialState}
    reasons: Counter[str] = Counter()
    for t in trials:
        count[t.state] += 1
        if t.state == TrialState.PRUNED:
            reasons[t.user_attrs.get("prune_reason") or "other"] += 1
    nan = reasons[NONFINITE]
    done = [t for t in trials if t.state == TrialState.COMPLETE and is_feasible(t.constraints)]
    best = min(done, key=lambda t: t.values[0], default=None)
    return Tally(
        complete=count[TrialState.COMPLETE],
        pruned=count[TrialState.PRUNED] - nan,
        nan_pruned=nan,
        failed=count[TrialState.FAIL],
        running=count[TrialState.RUNNING],
        waiting=count[TrialState.WAITING],
        best=best.values[0] if best else None,
        best_number=best.number if best else None,
        best_gain_db=gain_over_samp(best.user_attrs) if best else None,
        best_health=final_health(best.user_attrs) if best else None,
        prune_reasons=dict(reasons.most_common()),
    )


def create_or_join(
    spec: StudySpec, storage: optuna.storages.BaseStorage, study_name: str | None = None, seed: int | None = None
) -> tuple[optuna.Study, list[str]]:
    """The study `study_name` (default: the spec's name), created if missing; returns it and any warnings."""
    name = study_name or spec.name
    seed = spec.sampler.seed if seed is None else seed
    existing = name in optuna.get_all_study_names(storage)
    if existing:
        have = [d.name.lower() for d in storage.get_study_directions(storage.get_study_id_from_name(name))]
        if have != spec.study.directions:
            raise StudyMismatchError(
                f"study {name!r} optimises {have}, but spec {spec.path} asks for {spec.study.directions}"
            )
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        sampler=SAMPLERS[spec.sampler.name](spec, seed),
        pruner=PRUNERS[spec.pruner.name](spec),
        directions=spec.study.directions,
        load_if_exists=True,
    )
    stored = study.user_attrs.get("objective")
    if existing and stored is not None and OBJECTIVE_ALIASES.get(stored, stored) != spec.study.objective:
        raise StudyMismatchError(
            f"study {name!r} optimises {stored!r}, but spec {spec.path} asks for {spec.study.objective!r}"
        )
    notes = []
    if not existing:
        store_spec(study, spec)  # retrain and others need only the study from now on
        study.set_user_attr("spec", spec.name)
        study.set_user_attr("spec_hash", spec.digest)
        study.set_user_attr("objective", spec.study.objective)
        study.set_user_attr("description", spec.study.description)
    if not existing or study.metric_names is None:  # studies created before names were set get them on joining
        with warnings.catch_warnings():  # experimental since Optuna 3.2, and what the dashboard reads
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(spec.study.metric_names)
    if existing and study.user_attrs.get("spec_hash") != spec.digest:
        notes.append(f"study {name!r} was created from a different version of {spec.path}; joining anyway")
    return study, notes


class Observer:
    """What a live display hears from the worker loop; the base class ignores everything."""

    def trial_started(self, study: optuna.Study) -> None: ...

    def epoch(self, trial_number: int, epoch: int, metrics: dict) -> None: ...

    def trial_finished(self, study: optuna.Study, trial: FrozenTrial) -> None: ...


def _fail_if_running(study: optuna.Study, trial_id: int | None) -> None:
    """Mark this worker's trial FAIL (interrupted) when an interrupt left it RUNNING."""
    if trial_id is None:
        return
    storage = study._storage
    if storage.get_trial(trial_id).state == TrialState.RUNNING:
        storage.set_trial_user_attr(trial_id, "fail_reason", INTERRUPTED)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)


def _backend(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage under Optuna's per-study cache (create_study wraps an RDBStorage in a _CachedStorage)."""
    return getattr(study._storage, "_backend", study._storage)


def release_trial(study: optuna.Study, trial_id: int, reason: str | None, requeue: bool) -> bool:
    """FAIL a RUNNING trial whose process is gone; returns whether this call failed it.

    `reason` becomes its fail_reason. With `requeue`, the storage's heartbeat-stale callback (Optuna's
    RetryHeartbeatStaleTrialCallback, see hpo.storage) queues it again with the same params, as if the heartbeat
    had found it stale. A trial already finished, by its worker or by another process's check, is left alone.
    """
    backend = _backend(study)
    try:
        if backend.get_trial(trial_id).state != TrialState.RUNNING:
            return False
        if reason is not None:
            backend.set_trial_user_attr(trial_id, "fail_reason", reason)
        if not backend.set_trial_state_values(trial_id, TrialState.FAIL):
            return False
    except UpdateFinishedTrialError:
        return False  # another process finished or failed it between our read and our write
    callback = backend.get_heartbeat_stale_trial_callback() if requeue else None
    if callback is not None:
        failed = copy.deepcopy(backend.get_trial(trial_id))
        # The callback copies user attrs into the retry, which has not failed.
        failed.user_attrs.pop("fail_reason", None)
        callback(study, failed)
    return True


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
        """Query at most every LINGER_POLL_S; release the trials orphaned for the grace period; returns their ids."""
        with self.lock:
            return self._check(study)

    def _check(self, study: optuna.Study) -> list[int]:
        backend = _backend(study)
        interval = backend.get_heartbeat_interval() if isinstance(backend, RDBStorage) else None
        now = time.monotonic()
        if interval is None or now - self.checked < LINGER_POLL_S:
            return []  # no heartbeats on this storage: a trial without one proves nothing
        self.checked = now
        grace = backend.grace_period or 2 * interval  # Optuna's own default
        T, H = models.TrialModel, models.TrialHeartbeatModel
        query = (
            sa.select(T.trial_id)
            .outerjoin(H, H.trial_id == T.trial_id)
            .where(T.study_id == study._study_id, T.state == TrialState.RUNNING, H.trial_id.is_(None))
        )

        def read() -> list[int]:
            with backend.engine.connect() as conn:
                return list(conn.scalars(query))

        ids = retry_transient(read, "orphan check")
        self.first_seen = {i: self.first_seen.get(i, now) for i in ids}
        return [i for i, seen in self.first_seen.items() if now - seen > grace and release_trial(study, i, None, True)]


def _fail_stale(study: optuna.Study, orphans: OrphanWatch) -> None:
    """Fail and re-queue trials of dead workers now (Optuna does it only when a trial starts), orphans included.

    What optuna.storages.fail_stale_trials does, through release_trial: that function warns on every call as
    experimental, and silencing it with warnings.catch_warnings is not thread-safe (this runs in the heartbeat
    thread too).
    """
    backend = _backend(study)
    if isinstance(backend, RDBStorage) and backend.get_heartbeat_interval() is not None:
        for trial_id in backend._get_stale_trial_ids(study._study_id):
            release_trial(study, trial_id, None, requeue=True)
    orphans.check(study)


def _next_step(study: optuna.Study, n_trials: int, linger: bool) -> str:
    """ "run" a trial, "wait" for other workers' running trials (one may be a dead worker's), or "stop"."""
    trials = study.get_trials(deepcopy=False)
    if budget_used(trials) < n_trials or any(t.state == TrialState.WAITING for t in trials):
        return "run"
    return "wait" if linger and any(t.state == TrialState.RUNNING for t in trials) else "stop"


def run_worker(
    spec: StudySpec,
    study: optuna.Study,
    n_trials: int,
    *,
    timeout: float | None = None,
    observer: Observer | None = None,
    objective: Objective | None = None,
    linger: bool = True,
    on_trial: Callable[[int | None], None] | None = None,
) -> Objective:
    """Run trials until the study's budget of n_trials is used or `timeout` seconds pass; returns the objective.

    Several processes (on any hosts) may run this on one study: on a GuardedStorage the budget is exact. With
    `linger`, a worker whose budget is used stays while other trials run, failing and re-running the trials of
    workers that died (heartbeat), so the study ends with nothing RUNNING. Connection errors (a database
    restart) are retried with backoff. One trial's failure never stops the loop. Ctrl-C or SIGTERM marks the
    running trial FAIL with fail_reason "interrupted" before its next optimiser step or at its epoch boundary
    (_StopOnSignal; a second signal: at once) and raises RunInterrupted. on_trial(trial_id) hears the id
    of each trial as its objective starts, and None when it ends (hpo.run.workers tells its parent that way).
    """
    observer = observer or Observer()
    objective = objective or Objective(spec)
    deadline = None if timeout is None else time.monotonic() + timeout
    if isinstance(_backend(study), GuardedStorage):
        _backend(study).budget = n_trials
    orphans = OrphanWatch()
    publish = on_trial or (lambda trial_id: None)
    if isinstance(_backend(study), GuardedStorage):  # between trials the loop below checks; during one, each beat
        _backend(study).on_heartbeat = lambda: _fail_stale(study, orphans)

    def run_one(trial: optuna.Trial):
        publish(trial._trial_id)
        return objective(trial)

    stop = _StopOnSignal(objective)

    def on_epoch(trial_number: int, epoch: int, metrics: dict) -> None:
        stop.checkpoint()
        observer.epoch(trial_number, epoch, metrics)

    objective.observer = on_epoch
    objective.on_step = lambda epoch, step: stop.checkpoint()
    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while deadline is None or time.monotonic() < deadline:
            stop.checkpoint()
            orphans.check(study)  # early, so an orphan's grace period runs while this worker still has work
            step = retry_transient(lambda: _next_step(study, n_trials, linger), "budget check")
            if step == "stop":
                break
            if step == "wait":
                retry_transient(lambda: _fail_stale(study, orphans), "stale-trial check")
                time.sleep(LINGER_POLL_S)
                continue
            try:
                observer.trial_started(study)
                study.optimize(
                    run_one,
                    n_trials=1,
                    catch=(Exception,),  # recorded as FAIL with fail_reason by the objective; the worker goes on
                    gc_after_trial=False,
                    callbacks=[observer.trial_finished],
                )
            except BudgetReached:
                pass  # another worker took the last slot between our check and our ask; check again
            except TRANSIENT:
                # The database went away around a trial's ask or tell. A trial left RUNNING loses its heartbeat
                # and is re-queued by the stale check; the loop's next check waits out the outage.
                time.sleep(LINGER_POLL_S)
            objective.current_trial_id = None
            publish(None)
    except KeyboardInterrupt as e:
        _fail_if_running(study, objective.current_trial_id)
        raise RunInterrupted("interrupted: the running trial was marked FAIL (fail_reason='interrupted')") from e
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if isinstance(_backend(study), GuardedStorage):
            _backend(study).on_heartbeat = None
    return objective
