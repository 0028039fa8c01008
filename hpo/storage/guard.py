"""An RDBStorage that many workers can share: an exact global trial budget, and short database outages survived.

Optuna creates a trial inside one transaction that holds the study row FOR UPDATE. GuardedStorage counts the
budget inside that same transaction and refuses a new trial (BudgetReached) once it is used, so W workers
never overshoot it, however their checks interleave. Reads and idempotent writes are retried with exponential
backoff on connection errors (a database restart), and a heartbeat that cannot be written is skipped rather
than killing Optuna's heartbeat thread, so a running trial is not declared stale by a blip shorter than the
grace period. set_trial_user_attrs writes many user attrs (and an epoch's report) in one transaction, where
Optuna spends a transaction on each.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from optuna.exceptions import StorageInternalError, UpdateFinishedTrialError
from optuna.storages import RDBStorage
from optuna.storages._rdb import models
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.dialects import postgresql, sqlite

from core.errors import CovblendError

INTERRUPTED = "interrupted"  # fail_reason of a trial stopped by Ctrl-C or SIGTERM
OUTAGE_S = 120.0  # keep retrying a storage call on connection errors for this long before giving up
BACKOFF_S = (0.2, 5.0)  # first and largest pause between retries; doubles in between
# Connection-level failures worth retrying; constraint or data errors are not among them.
TRANSIENT = (sa.exc.OperationalError, sa.exc.InterfaceError, StorageInternalError)
_COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING, TrialState.WAITING)
log = logging.getLogger(__name__)


class BudgetReached(CovblendError):
    """The study's trial budget is used; no new trial was created."""


def count_used(trials: Iterable[tuple[int, TrialState, bool]], retried: set[int]) -> int:
    """Trials that consume budget, from (number, state, interrupted) rows and the numbers of re-queued trials.

    Finished, running and queued (WAITING) trials count; a FAIL that was interrupted by the user, or that the
    heartbeat found stale and re-queued, does not: its retry, or the next fresh trial, takes its place.
    """
    return sum(
        state in _COUNTED and not (state == TrialState.FAIL and (interrupted or number in retried))
        for number, state, interrupted in trials
    )


def budget_used(trials: list[FrozenTrial]) -> int:
    """count_used over FrozenTrials (what study.get_trials returns)."""
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    rows = ((t.number, t.state, t.user_attrs.get("fail_reason") == INTERRUPTED) for t in trials)
    return count_used(rows, retried)


def retry_transient(call: Callable, what: str, outage_s: float = OUTAGE_S):
    """call() until it stops raising a TRANSIENT error, pausing with doubling backoff; re-raises after outage_s."""
    deadline, pause = time.monotonic() + outage_s, BACKOFF_S[0]
    while True:
        try:
            return call()
        except TRANSIENT as e:
            if time.monotonic() + pause > deadline:
                raise
            log.warning("storage %s failed (%s); retrying in %.1f s", what, type(e).__name__, pause)
            time.sleep(pause)
            pause = min(2 * pause, BACKOFF_S[1])


class GuardedStorage(RDBStorage):
    """RDBStorage with an optional global trial budget and retries on connection errors.

    `budget` (None: unlimited) applies to fresh trials only: popping a queued trial or re-queueing a stale one
    creates nothing that count_used does not already count.
    """

    budget: int | None = None
    # Called in Optuna's heartbeat thread after each heartbeat this process writes: hpo.run.runner looks for other
    # workers' stale trials there, so a dead worker's trial is found within grace + one heartbeat even while
    # every live worker is inside a long trial.
    on_heartbeat: Callable[[], None] | None = None

    def _get_prepared_new_trial(self, study_id: int, template_trial: FrozenTrial | None, session):
        if template_trial is None and self.budget is not None:
            if self.engine.dialect.name == "sqlite":
                # SQLite ignores FOR UPDATE; a no-op write takes the database's write lock before we count.
                session.execute(
                    sa.update(models.StudyModel)
                    .where(models.StudyModel.study_id == study_id)
                    .values(study_name=models.StudyModel.study_name)
                )
            if self._used(study_id, session) >= self.budget:
                raise BudgetReached(f"the study's budget of {self.budget} trials is used")
        return super()._get_prepared_new_trial(study_id, template_trial, session)

    @staticmethod
    def _used(study_id: int, session) -> int:
        """count_used from three lean queries in the creating transaction (no params or values loaded)."""
        T, U, S = models.TrialModel, models.TrialUserAttributeModel, models.TrialSystemAttributeModel
        rows = session.execute(sa.select(T.trial_id, T.number, T.state).where(T.study_id == study_id)).all()
        interrupted = set(
            session.scalars(
                sa.select(U.trial_id)
                .join(T, T.trial_id == U.trial_id)
                .where(T.study_id == study_id, U.key == "fail_reason", U.value_json == json.dumps(INTERRUPTED))
            )
        )
        retried = set()
        for history in session.scalars(
            sa.select(S.value_json)
            .join(T, T.trial_id == S.trial_id)
            .where(T.study_id == study_id, S.key == "retry_history")
        ):
            retried.update(json.loads(history))
        return count_used(((number, state, tid in interrupted) for tid, number, state in rows), retried)

    def set_trial_state_values(self, trial_id: int, state: TrialState, values=None) -> bool:
        attempts = []

        def call() -> bool:
            attempts.append(1)
            try:
                return super(GuardedStorage, self).set_trial_state_values(trial_id, state, values)
            except UpdateFinishedTrialError:
                # A retry of a write whose commit was lost with the connection: done if it holds our state.
                if len(attempts) > 1 and RDBStorage.get_trial(self, trial_id).state == state:
                    return True
                raise

        return retry_transient(call, "set_trial_state_values")

    def set_trial_user_attrs(
        self, trial_id: int, attrs: dict[str, Any], report: tuple[int, float] | None = None
    ) -> None:
        """Several user attrs, and optionally one intermediate value report=(step, value), in one transaction.

        Optuna spends a transaction on each user attr and on each report (a trial-state read, a lookup, an
        insert, a commit); a trial writes about fifteen attrs and a report per epoch, which on PostgreSQL was
        most of the per-trial storage time the objective controls. Here one state read and one upsert per
        table do them all. Idempotent (upserts), so retried like the other writes.
        """
        T, U, V = models.TrialModel, models.TrialUserAttributeModel, models.TrialIntermediateValueModel
        dialect = {"postgresql": postgresql, "sqlite": sqlite}.get(self.engine.name)

        def upsert(session, model, rows: list[dict], keys: list, update: list[str]) -> None:
            insert = dialect.insert(model).values(rows)
            excluded = {name: getattr(insert.excluded, name) for name in update}
            session.execute(insert.on_conflict_do_update(index_elements=keys, set_=excluded))

        def call() -> None:
            with _create_scoped_session(self.scoped_session, True) as session:
                if dialect is None:  # MySQL and others: Optuna's own per-key writes, still in this one transaction
                    if report is not None:
                        self._set_trial_intermediate_value_without_commit(session, trial_id, *report)
                    for key, value in attrs.items():
                        self._set_trial_attr_without_commit(session, U, trial_id, key, value)
                    return
                state = session.scalar(sa.select(T.state).where(T.trial_id == trial_id))
                if state is None:
                    raise KeyError(models.NOT_FOUND_MSG)
                self.check_trial_is_updatable(trial_id, state)
                if report is not None:
                    value, kind = V.intermediate_value_to_stored_repr(report[1])
                    row = dict(
                        trial_id=trial_id, step=report[0], intermediate_value=value, intermediate_value_type=kind
                    )
                    upsert(session, V, [row], [V.trial_id, V.step], ["intermediate_value", "intermediate_value_type"])
                if attrs:
                    rows = [{"trial_id": trial_id, "key": k, "value_json": json.dumps(v)} for k, v in attrs.items()]
                    upsert(session, U, rows, [U.trial_id, U.key], ["value_json"])

        retry_transient(call, "set_trial_user_attrs")

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            super().record_heartbeat(trial_id)
        except TRANSIENT as e:
            # Optuna's heartbeat thread dies on an exception; skip this beat, the next one retries.
            log.warning("heartbeat of trial %d skipped: %s", trial_id, type(e).__name__)
            return
        if self.on_heartbeat is not None:
            try:
                self.on_heartbeat()
            except Exception as e:  # the thread must live on for this trial's own heartbeats; the next beat retries
                log.warning("stale-trial check after the heartbeat of trial %d failed: %r", trial_id, e)


# Reads and idempotent writes (upserts keyed by trial and name) are safe to repeat after a lost connection.
# Optuna's _CachedStorage, which wraps every RDB storage a Study uses, calls the private twins
# (_create_new_trial, _get_trials, _set_trial_param, _get_best_trial_id), so those are retried too.
RETRIED = (
    "create_new_trial",
    "_create_new_trial",
    "_get_trials",
    "_set_trial_param",
    "_get_best_trial_id",
    "get_all_trials",
    "get_trial",
    "get_n_trials",
    "get_best_trial",
    "get_all_studies",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_trial_id_from_study_id_trial_number",
    "set_trial_param",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "set_trial_constraints",
    "_get_stale_trial_ids",
)


def _retrying(name: str) -> Callable:
    base = getattr(RDBStorage, name)

    @functools.wraps(base)
    def method(self, *args, **kwargs):
        return retry_transient(lambda: base(self, *args, **kwargs), name)

    return method


for _name in RETRIED:
    if hasattr(RDBStorage, _name):
        setattr(GuardedStorage, _name, _retrying(_name))
