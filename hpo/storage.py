"""Where studies live: URL precedence, a robust RDBStorage, masked URLs and one-line storage errors.

Precedence: --storage, then $HPO_STORAGE, then sqlite:///hpo.db. PostgreSQL goes through SQLAlchemy 2 and
psycopg 3 with pool_pre_ping; a heartbeat marks a dead worker's trial FAIL after the grace period and
RetryHeartbeatStaleTrialCallback queues it again with the same params.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import optuna
import sqlalchemy as sa
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

from core.errors import CovblendError
from hpo.guard import GuardedStorage

STORAGE_ENV = "HPO_STORAGE"
DEFAULT_URL = "sqlite:///hpo.db"
HEARTBEAT_S = 30  # a running trial writes a heartbeat this often ($HPO_HEARTBEAT_S overrides, in seconds)
GRACE_S = 120  # ... and is declared stale (FAIL, then retried) after this long without one ($HPO_GRACE_S)
MAX_RETRY = 2  # retries of a stale trial before it stays FAIL
SQLITE_TIMEOUT_S = 60  # wait this long on a locked SQLite file before "database is locked"


class StorageError(CovblendError):
    """The storage URL is malformed, the database unreachable, or a named study absent; one line."""


def resolve_url(cli_value: str | None = None) -> str:
    """--storage if given, else $HPO_STORAGE, else sqlite:///hpo.db."""
    return cli_value or os.environ.get(STORAGE_ENV) or DEFAULT_URL


def _parse(url: str) -> sa.engine.URL:
    try:
        return sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError) as e:
        raise StorageError(f"cannot parse storage URL {url!r}: expected e.g. sqlite:///hpo.db") from e


def mask(url: str) -> str:
    """The URL with any password replaced by ***, fit to print; an unparsable URL is shown only by scheme."""
    try:
        return _parse(url).render_as_string(hide_password=True)
    except StorageError:
        return url.split("://", 1)[0] + "://(unparsable)" if "://" in url else "(unparsable URL)"


def sqlite_file(url: str) -> Path | None:
    """The database file of a sqlite URL, None for other backends or in-memory SQLite."""
    parsed = _parse(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _brief(e: BaseException) -> str:
    """The first line of a driver error, without SQLAlchemy's background links."""
    text = str(getattr(e, "orig", None) or e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _seconds(env: str, default: int) -> int:
    """A positive whole number of seconds from the environment, else the default."""
    raw = os.environ.get(env, "")
    if raw and not (raw.isdigit() and int(raw) > 0):
        raise StorageError(f"{env} must be a positive whole number of seconds, got {env}={raw!r}")
    return int(raw) if raw else default


def open_storage(url: str, *, create: bool = True, heartbeat: bool = True) -> RDBStorage:
    """A GuardedStorage (an RDBStorage) on `url`; raises StorageError with one line when it cannot be opened.

    create=False is for commands that read existing studies: it neither creates a SQLite file nor
    creates tables, so a wrong URL leaves nothing behind.
    """
    parsed = _parse(url)
    backend = parsed.get_backend_name()
    path = sqlite_file(url)
    if path is not None and not create and not path.is_file():
        raise StorageError(f"no database at {mask(url)}: file {path} does not exist")
    if path is not None and create and not path.parent.is_dir():
        raise StorageError(f"cannot create {mask(url)}: folder {path.parent} does not exist")
    engine_kwargs: dict = {"pool_pre_ping": True}
    if backend == "sqlite":
        engine_kwargs["connect_args"] = {"timeout": SQLITE_TIMEOUT_S}
    try:
        if not create:
            _require_tables(url, engine_kwargs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeat is "experimental"
            hb = (
                dict(
                    heartbeat_interval=_seconds("HPO_HEARTBEAT_S", HEARTBEAT_S),
                    grace_period=_seconds("HPO_GRACE_S", GRACE_S),
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY),
                )
                if heartbeat
                else {}
            )
            return GuardedStorage(url, engine_kwargs=engine_kwargs, skip_table_creation=not create, **hb)
    except ImportError as e:
        raise StorageError(f"no database driver for {mask(url)}: {e}") from e
    except (sa.exc.SQLAlchemyError, optuna.exceptions.OptunaError, RuntimeError, ValueError) as e:
        raise StorageError(f"cannot open storage {mask(url)}: {_brief(e)}") from e


def _require_tables(url: str, engine_kwargs: dict) -> None:
    """Raise StorageError unless the database answers and already holds Optuna's tables; creates nothing."""
    engine = sa.create_engine(url, **engine_kwargs)
    try:
        with engine.connect() as conn:
            present = sa.inspect(conn).has_table("studies")
    finally:
        engine.dispose()
    if not present:
        raise StorageError(f"no studies in {mask(url)}: the database holds no Optuna tables")


def require_study(storage: RDBStorage, url: str, name: str) -> None:
    """Raise StorageError naming the known studies when `name` is not one of them."""
    try:
        names = optuna.get_all_study_names(storage)
    except sa.exc.SQLAlchemyError as e:
        raise StorageError(f"cannot read studies from {mask(url)}: {_brief(e)}") from e
    if name not in names:
        known = ", ".join(sorted(names)) or "none"
        raise StorageError(f"no study named {name!r} in {mask(url)} (studies: {known})")


def open_existing_study(storage: str | None, name: str) -> tuple[optuna.Study, RDBStorage]:
    """The named existing study and its storage (URL precedence as resolve_url), creating nothing."""
    url = resolve_url(storage)
    st = open_storage(url, create=False, heartbeat=False)
    require_study(st, url, name)
    return optuna.load_study(study_name=name, storage=st), st
