"""An RDBStorage that many workers can share: an exact global trial budget, counted inside the transaction in which
Optuna creates a trial (it holds the study row FOR UPDATE), and short database outages survived (DESIGN §7).
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import optuna
import sqlalchemy as sa
from optuna.exceptions import StorageInternalError, UpdateFinishedTrialError
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.dialects import postgresql, sqlite

from core.errors import CovblendError
from hpo import console
from hpo.storage import internals
from hpo.storage.deadline import CALL_S, Watchdog, give_up, given_up, limit
from hpo.storage.internals import models

INTERRUPTED = "interrupted"  # fail_reason of a trial stopped by a signal (Ctrl-C, SIGTERM, SIGHUP)
OUTAGE_S = 120.0  # keep retrying a storage call on connection errors for this long before giving up
BACKOFF_S = (0.2, 5.0)  # first and largest pause between retries; doubles in between
# Connection-level failures worth retrying; constraint or data errors are not among them.
TRANSIENT = (sa.exc.OperationalError, sa.exc.InterfaceError, StorageInternalError)
PROCESSES_ATTR = "hpo:processes"  # study system attr: how many processes have claimed a number to sample with
UPSERTS = {"postgresql": postgresql, "sqlite": sqlite}  # dialects with INSERT ... ON CONFLICT DO UPDATE
_COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING, TrialState.WAITING)


# What a full disk says through each driver: SQLite (SQLITE_FULL), PostgreSQL (SQLSTATE 53100, "could not extend
# file ...: No space left on device"), MySQL/MariaDB ("The table ... is full", errno 28).
DISK_FULL = ("database or disk is full", "no space left on device", "disk full", "is full")


class StorageError(CovblendError):
    """The storage URL is malformed, the database unreachable or refusing a write, or a named study absent; one
    line."""


class StorageUnavailable(CovblendError):
    """The database did not answer for the whole outage limit (OUTAGE_S) of a call; one line."""


class StorageFull(CovblendError):
    """The database's disk is full: no retry can help, so it is one line at once, not minutes of retries."""


def disk_full(e: BaseException | None) -> StorageFull | None:
    """The StorageFull in e's chain (its causes and contexts), or a new one when a driver error there says the
    disk is full; None otherwise."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, StorageFull):
            return e
        text = str(e).lower()
        if isinstance(e, (*TRANSIENT, OSError)) and any(s in text for s in DISK_FULL):
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            return StorageFull(f"the database's disk is full ({first}); free space, then run again")
        e = e.__cause__ or e.__context__
    return None


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


def retry_transient(call: Callable, what: str):
    """call() until it stops raising a TRANSIENT error, pausing with doubling backoff; after OUTAGE_S, raises
    StorageUnavailable (one line: the driver's error stays its cause). Under impatience (hpo.storage.deadline), a
    call after one that gave up raises StorageUnavailable without trying."""
    earlier = given_up()
    if earlier is not None:
        raise StorageUnavailable(f"the database did not answer (storage {what} not tried: {earlier} gave up before it)")
    start, pause = time.monotonic(), BACKOFF_S[0]
    while True:
        try:
            return call()
        except TRANSIENT as e:
            full = disk_full(e)
            if full is not None:
                raise full from e
            # Read at each failure, not once: a stop signal that lands during the retries (impatient) shortens them.
            outage = limit(OUTAGE_S)
            if time.monotonic() + pause > start + outage:
                give_up(what)
                raise StorageUnavailable(
                    f"the database did not answer for {outage:.0f} s (storage {what}, last {type(e).__name__})"
                ) from e
            console.warn(f"storage {what} failed ({type(e).__name__}); retrying in {pause:.1f} s")
            time.sleep(pause)
            pause = min(2 * pause, BACKOFF_S[1])


# Reads and idempotent writes (upserts keyed by trial and name) are safe to repeat after a lost connection.
# Optuna's _CachedStorage, which wraps every RDB storage a Study uses, calls the private twins
# (_create_new_trial, _get_trials, _set_trial_param, _get_best_trial_id), so those are retried too. A trial's
# constraints are system attrs (set_trial_system_attr). open_storage fails when one of these is missing.
# With set_trial_state_values (its own retry) and record_heartbeat (a skipped beat), these are every call of
# RDBStorage that reaches the database but the study's creation, deletion and schema upgrade, so no driver error
# leaves a worker's storage: an outage is StorageUnavailable after OUTAGE_S (tests/hpo/storage pins the list).
RETRIED = (
    "create_new_trial",
    "_create_new_trial",
    "_get_trials",
    "_set_trial_param",
    "_get_best_trial_id",
    "get_all_trials",
    "get_trial",
    "get_trial_param",
    "get_trial_user_attrs",
    "get_trial_system_attrs",
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
    "set_study_user_attr",
    "set_study_system_attr",
    "_get_stale_trial_ids",
)


def _retrying(name: str) -> Callable:
    base = getattr(RDBStorage, name)

    @functools.wraps(base)
    def method(self, *args, **kwargs):
        return self.retry(lambda: base(self, *args, **kwargs), name)

    return method


def _retried(cls: type[RDBStorage]) -> type[RDBStorage]:
    """The class decorator that gives cls a retrying override of each RETRIED method of RDBStorage."""
    for name in RETRIED:
        if hasattr(RDBStorage, name):  # a missing one fails open_storage (internals.check), not this import
            setattr(cls, name, _retrying(name))
    return cls


@_retried
class GuardedStorage(RDBStorage):
    """RDBStorage with an optional global trial budget and retries on connection errors.

    `budget` (None: unlimited) applies to fresh trials only: popping a queued trial or re-queueing a stale one
    creates nothing that count_used does not already count.
    """

    budget: int | None = None  # set by serving()
    # Called in Optuna's heartbeat thread after each heartbeat this process writes (serving()): hpo.run.runner looks
    # for other workers' stale trials there, so a dead worker's trial is found within grace + one heartbeat even
    # while every live worker is inside a long trial.
    on_heartbeat: Callable[[], None] | None = None

    def __init__(self, *args, call_timeout: float = CALL_S, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.watchdog = Watchdog(call_timeout)  # every call's deadline (hpo.storage.deadline)
        if self.engine.dialect.name != "sqlite":  # no socket to cut; and disposing would drop an in-memory database
            sa.event.listen(self.engine, "connect", self.watchdog.watch)
            sa.event.listen(self.engine, "do_connect", self.watchdog.connect)
            self.engine.dispose()  # the connections Optuna opened to set up are unknown to the watchdog: new ones
        # Trial id -> number, learnt at each trial's first heartbeat, so that a skipped beat names the trial as
        # every display does (#number): the database may be unreachable just when that message is written.
        self._numbers: dict[int, int] = {}

    @contextlib.contextmanager
    def serving(self, budget: int, on_heartbeat: Callable[[], None] | None = None) -> Iterator[None]:
        """A worker loop's stay on this storage: fresh trials stop at `budget` (from then on), and on_heartbeat runs
        after each heartbeat this process writes until the loop leaves."""
        self.budget, self.on_heartbeat = budget, on_heartbeat
        try:
            yield
        finally:
            self.on_heartbeat = None

    def _get_prepared_new_trial(self, study_id: int, template_trial: FrozenTrial | None, session):
        if template_trial is None and self.budget is not None:
            if self.engine.dialect.name == "sqlite":
                _lock_study(session, study_id)  # SQLite ignores Optuna's FOR UPDATE
            if self._used(study_id, session) >= self.budget:
                raise BudgetReached(f"the study's budget of {self.budget} trials is used")
        return super()._get_prepared_new_trial(study_id, template_trial, session)

    @staticmethod
    def _used(study_id: int, session) -> int:
        """count_used from three lean queries in the creating transaction (no params or values loaded)."""
        trial, user_attr, system_attr = (
            models.TrialModel,
            models.TrialUserAttributeModel,
            models.TrialSystemAttributeModel,
        )
        rows = session.execute(
            sa.select(trial.trial_id, trial.number, trial.state).where(trial.study_id == study_id)
        ).all()

        def attr(model, key: str) -> list:  # (trial_id, value_json) of the study's trials' attr `key`
            query = sa.select(model.trial_id, model.value_json).join(trial, trial.trial_id == model.trial_id)
            return session.execute(query.where(trial.study_id == study_id, model.key == key)).all()

        interrupted = {tid for tid, value in attr(user_attr, "fail_reason") if value == json.dumps(INTERRUPTED)}
        retried = {n for _, history in attr(system_attr, "retry_history") for n in json.loads(history)}
        return count_used(((number, state, tid in interrupted) for tid, number, state in rows), retried)

    def claim_process(self, study_id: int) -> int:
        """The next number of the study's sampling processes: 0 for the first, then 1, 2, ... whatever host or
        process asks, each number given once. A retry after a lost commit may skip a number, never repeat one."""
        study_attr = models.StudySystemAttributeModel

        def claim() -> int:
            with internals.transaction(self) as session:
                _lock_study(session, study_id)  # held to the commit, so no other claim reads the same count
                stored = session.scalar(
                    sa.select(study_attr.value_json).where(
                        study_attr.study_id == study_id, study_attr.key == PROCESSES_ATTR
                    )
                )
                number = 0 if stored is None else json.loads(stored)
                row = {"study_id": study_id, "key": PROCESSES_ATTR, "value_json": json.dumps(number + 1)}
                self._upsert(session, study_attr, [row], ("study_id", "key"))
            return number

        return self.retry(claim, "process claim")

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

        return self.retry(call, "set_trial_state_values")

    def set_trial_user_attrs(
        self, trial_id: int, attrs: dict[str, Any], report: tuple[int, float] | None = None
    ) -> None:
        """Several user attrs, and optionally one intermediate value report=(step, value), in one transaction,
        where Optuna spends one on each: on PostgreSQL that was most of the objective's per-trial storage time.
        Idempotent (upserts), so retried like the other writes."""
        self.retry(lambda: self._write_user_attrs(trial_id, attrs, report, running=True), "set_trial_user_attrs")

    def annotate_trial(self, trial_id: int, attrs: dict[str, Any], what: str) -> None:
        """User attrs on a trial whatever its state: `hpo retrain` keeps its results on finished trials, where the
        dashboard shows them and Optuna's API refuses to write (UpdateFinishedTrialError). Retried (upserts); a
        write the database refuses is a StorageError naming `what` (e.g. "retrain results on trial 3")."""
        try:
            self.retry(lambda: self._write_user_attrs(trial_id, attrs, None, running=False), "annotate_trial")
        except (sa.exc.SQLAlchemyError, StorageInternalError) as e:  # the second wraps the first
            raise StorageError(f"cannot store {what}: {e}") from e

    def _write_user_attrs(
        self, trial_id: int, attrs: dict[str, Any], report: tuple[int, float] | None, running: bool
    ) -> None:
        """One transaction: the report and the attrs, JSON-encoded as Optuna stores them. running: the trial
        must still be updatable (Optuna's rule for its own writes)."""
        trial, user_attr, intermediate = (
            models.TrialModel,
            models.TrialUserAttributeModel,
            models.TrialIntermediateValueModel,
        )
        with internals.transaction(self) as session:
            state = session.scalar(sa.select(trial.state).where(trial.trial_id == trial_id))
            if state is None:
                raise KeyError(models.NOT_FOUND_MSG)
            if running:
                self.check_trial_is_updatable(trial_id, state)
            if report is not None:
                value, kind = intermediate.intermediate_value_to_stored_repr(report[1])
                row = dict(trial_id=trial_id, step=report[0], intermediate_value=value, intermediate_value_type=kind)
                self._upsert(session, intermediate, [row], ("trial_id", "step"))
            if attrs:
                rows = [{"trial_id": trial_id, "key": k, "value_json": json.dumps(v)} for k, v in attrs.items()]
                self._upsert(session, user_attr, rows, ("trial_id", "key"))

    def _upsert(self, session, model, rows: list[dict], keys: tuple[str, ...]) -> None:
        """Insert `rows` into `model`'s table, updating the other columns of rows whose `keys` exist already."""
        dialect = UPSERTS.get(self.engine.name)
        if dialect is not None:  # one statement for all rows
            insert = dialect.insert(model).values(rows)
            update = {c: getattr(insert.excluded, c) for c in rows[0] if c not in keys}
            session.execute(insert.on_conflict_do_update(index_elements=list(keys), set_=update))
            return
        for row in rows:  # MySQL and others: a read per row, then an update or an insert
            match = [getattr(model, k) == row[k] for k in keys]
            if session.scalar(sa.select(sa.func.count()).select_from(model).where(*match)):
                session.execute(sa.update(model).where(*match).values({c: row[c] for c in row if c not in keys}))
            else:
                session.execute(sa.insert(model).values(row))

    def orphan_trial_ids(self, study_id: int) -> list[int]:
        """RUNNING trials of the study without any heartbeat row (their worker died before its first beat)."""
        trial, heartbeat = models.TrialModel, models.TrialHeartbeatModel
        query = (
            sa.select(trial.trial_id)
            .outerjoin(heartbeat, heartbeat.trial_id == trial.trial_id)
            .where(trial.study_id == study_id, trial.state == TrialState.RUNNING, heartbeat.trial_id.is_(None))
        )

        def read() -> list[int]:
            with self.engine.connect() as conn:
                return list(conn.scalars(query))

        return self.retry(read, "orphan check")

    def retry(self, call: Callable, what: str):
        """retry_transient(call), each attempt under the watchdog's deadline."""

        def attempt():
            with self.watchdog.bounded():
                return call()

        return retry_transient(attempt, what)

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            with self.watchdog.bounded():
                super().record_heartbeat(trial_id)
                if trial_id not in self._numbers:
                    self._numbers[trial_id] = self.get_trial_number_from_id(trial_id)
        except TRANSIENT as e:
            # Optuna's heartbeat thread dies on an exception; skip this beat, the next one retries.
            name = f"#{self._numbers[trial_id]}" if trial_id in self._numbers else f"id {trial_id}"
            console.warn(f"heartbeat of trial {name} skipped: {type(e).__name__}")
            return
        if self.on_heartbeat is not None:
            try:
                self.on_heartbeat()
            except Exception as e:  # the thread must live on for this trial's own heartbeats; the next beat retries
                console.warn(f"stale-trial check after the heartbeat of trial {trial_id} failed: {e!r}")


def _lock_study(session, study_id: int) -> None:
    """Take the study row's lock until the transaction ends (on SQLite: the database's write lock) by a no-op
    write, so that a count read after it cannot change before the commit."""
    study = models.StudyModel
    session.execute(sa.update(study).where(study.study_id == study_id).values(study_name=study.study_name))


def record(trial: optuna.Trial, attrs: dict, report: tuple[int, float] | None = None) -> None:
    """Set user attrs, and report (step, value) if given, in one storage round trip where the storage allows.

    On a GuardedStorage this is one transaction; the trial's cached copy (what trial.user_attrs and the pruner
    read) is then updated the way Trial.set_user_attr and Trial.report update it. Other storages get the
    public calls, one per key.
    """
    backend = internals.backend(trial.storage)
    if not isinstance(backend, GuardedStorage):
        if report is not None:
            trial.report(report[1], report[0])
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return
    backend.set_trial_user_attrs(internals.trial_id(trial), attrs, report)
    cached = internals.cached(trial)
    cached.user_attrs.update(attrs)
    if report is not None:
        cached.intermediate_values[report[0]] = report[1]
