"""Where studies live, and the one door to Optuna's storage: every hpo module reads and writes studies through
this package (open_storage here, GuardedStorage in guard, dead workers' trials in recovery, checkpoints in
artifacts), and only internals names what is private to Optuna.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable

import optuna
import sqlalchemy as sa
from optuna.storages import RDBStorage

from hpo.storage import internals
from hpo.storage.deadline import CALL_S
from hpo.storage.guard import RETRIED, GuardedStorage, StorageError
from hpo.storage.recovery import CleanRetry
from hpo.storage.urls import mask, parse_url, resolve_url, sqlite_file

HEARTBEAT_S = 30  # a running trial writes a heartbeat this often ($HPO_HEARTBEAT_S overrides, in seconds)
GRACE_S = 120  # ... and is declared stale (FAIL, then retried) after this long without one ($HPO_GRACE_S)
MAX_RETRY = 2  # retries of a stale trial before it stays FAIL
CREATE_TRIES = 5  # attempts to open a fresh database whose tables other processes are creating at the same moment
SQLITE_TIMEOUT_S = 60  # wait this long on a locked SQLite file before "database is locked"
CONNECT_TIMEOUT_S = 10  # give up on a database server that has not answered this long ($HPO_CONNECT_TIMEOUT_S)
KEEPALIVE_PROBES = 3  # unanswered TCP keepalive probes after which a peer counts as dead


def _libpq(connect_s: int, call_s: int) -> dict:
    """libpq's connect() arguments (psycopg, psycopg2): `connect_s` bounds the connection attempt. The server ends
    a statement that outlives the call deadline (statement_timeout), so one whose client the watchdog cut off
    does not run on, holding its locks. TCP keepalives, probed every call_s / 3 seconds after call_s idle, on
    both sides: the client notices a dead server host without the watchdog, and the server a dead client host
    (and drops its locks) in about 2 x call_s rather than the kernel's 2 hours; tcp_user_timeout drops a
    connection whose sent data has gone unacknowledged for call_s."""
    idle, every = call_s, max(1, call_s // 3)
    server = {
        "statement_timeout": f"{call_s}s",
        "tcp_keepalives_idle": idle,
        "tcp_keepalives_interval": every,
        "tcp_keepalives_count": KEEPALIVE_PROBES,
    }
    return {
        "connect_timeout": connect_s,
        "options": " ".join(f"-c {name}={value}" for name, value in server.items()),
        "keepalives": 1,
        "keepalives_idle": idle,
        "keepalives_interval": every,
        "keepalives_count": KEEPALIVE_PROBES,
        "tcp_user_timeout": call_s * 1000,
    }


# Per DB-API driver (URL "backend+driver"), its connect() arguments for (connect_s, call_s): connect_s bounds one
# connection attempt. Without it a server that accepts TCP but never answers hangs the caller: psycopg waits
# 130 s, PyMySQL for ever. PyMySQL reads the server's greeting under read_timeout, so on MySQL/MariaDB connect_s
# bounds every read and write too. call_s is the storage calls' deadline (hpo.storage.deadline).
CONNECT_ARGS: dict[str, Callable[[int, int], dict]] = {
    "psycopg": _libpq,
    "psycopg2": _libpq,
    "pg8000": lambda connect_s, call_s: {"timeout": connect_s},
    "pymysql": lambda connect_s, call_s: dict.fromkeys(("connect_timeout", "read_timeout", "write_timeout"), connect_s),
    "mysqldb": lambda connect_s, call_s: dict.fromkeys(("connect_timeout", "read_timeout", "write_timeout"), connect_s),
    "pysqlite": lambda connect_s, call_s: {"timeout": SQLITE_TIMEOUT_S},  # a file: no server, only its lock to wait
}
STORAGE_HELP = (
    "Storage URL; default $HPO_STORAGE, else sqlite:///hpo.db. Passwords are never printed. A database server "
    f"that has not answered within $HPO_CONNECT_TIMEOUT_S seconds (default {CONNECT_TIMEOUT_S}) is an error."
)


# The drivers the project is tested with, by the scheme's backend: what to write where SQLAlchemy's default driver
# for a bare scheme (mysql:// means MySQLdb) is not installed, or where the scheme is one SQLAlchemy does not know
# (postgres://, as Heroku and many .env files write it). psycopg comes with hpo; PyMySQL with its [dev] extra.
TESTED_DRIVERS: dict[str, tuple[str, str | None]] = {  # backend: (scheme to write, package to install)
    "postgresql": ("postgresql+psycopg", None),
    "postgres": ("postgresql+psycopg", None),
    "mysql": ("mysql+pymysql", "pymysql"),
    "mariadb": ("mariadb+pymysql", "pymysql"),
}
EXAMPLE_URLS = ("sqlite:///FILE", "postgresql+psycopg://USER@HOST/DB", "mysql+pymysql://USER@HOST/DB")


def _driver_hint(parsed: sa.engine.URL) -> str:
    """The hint "; write X://... instead" for a backend the project has a tested driver for, unless the URL names it."""
    scheme, package = TESTED_DRIVERS.get(parsed.get_backend_name(), (parsed.drivername, None))
    if scheme == parsed.drivername:
        return ""
    return f"; write {scheme}://... instead" + (f" (pip install {package})" if package else "")


def _brief(e: BaseException, url: str) -> str:
    """The first line of a driver error, without SQLAlchemy's background links or any form of the password."""
    text = str(getattr(e, "orig", None) or e).strip().splitlines()
    return mask(url, text[0] if text else type(e).__name__)


def _seconds(env: str, default: int) -> int:
    """A positive whole number of seconds from the environment, else the default."""
    raw = os.environ.get(env, "")
    if raw and not (raw.isdigit() and int(raw) > 0):
        raise StorageError(f"{env} must be a positive whole number of seconds, got {env}={raw!r}")
    return int(raw) if raw else default


def engine_kwargs(parsed: sa.engine.URL, call_s: int = CALL_S) -> dict:
    """create_engine arguments for this URL: pool_pre_ping, and its driver's CONNECT_ARGS for the connect timeout
    and the calls' deadline `call_s`. A driver argument the URL's query sets itself is left to the URL; libpq's
    `options` get ours in front of the URL's, where a -c setting of the URL's own comes later and wins."""
    connect = CONNECT_ARGS.get(parsed.get_driver_name())
    kwargs: dict = {"pool_pre_ping": True}
    if connect is not None:
        ours = connect(_seconds("HPO_CONNECT_TIMEOUT_S", CONNECT_TIMEOUT_S), call_s)
        if "options" in ours and "options" in parsed.query:
            ours["options"] += f" {parsed.query['options']}"
        kwargs["connect_args"] = {k: v for k, v in ours.items() if k == "options" or k not in parsed.query}
    return kwargs


def open_storage(url: str, *, create: bool = True, heartbeat: bool = True) -> RDBStorage:
    """A GuardedStorage (an RDBStorage) on `url`; raises StorageError with one line when it cannot be opened.

    create=False is for commands that read existing studies: it neither creates a SQLite file nor
    creates tables, so a wrong URL leaves nothing behind. First checks that Optuna still has every private name
    hpo.storage relies on (internals.check), so a changed Optuna fails here, not by silently losing cover.
    """
    internals.check(RETRIED)
    parsed = parse_url(url)
    path = sqlite_file(url)
    if path is not None and not create and not path.is_file():
        raise StorageError(f"no database at {mask(url)}: file {path} does not exist")
    if path is not None and create and not path.parent.is_dir():
        raise StorageError(f"cannot create {mask(url)}: folder {path.parent} does not exist")
    if path is not None and create and not all(os.access(p, os.W_OK) for p in (path, path.parent) if p.exists()):
        # SQLite writes the file and a journal beside it; without this, the first write fails deep in Optuna
        raise StorageError(f"cannot write {mask(url)}: {path} or its folder is read-only")
    exact = parsed.render_as_string(hide_password=False)  # the password re-encoded, so Optuna parses it back whole
    try:
        call_s = _seconds("HPO_CALL_TIMEOUT_S", CALL_S)
        kwargs = engine_kwargs(parsed, call_s)  # names the driver, so an unknown one fails here
        if not create:
            _require_tables(exact, kwargs, url)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeat is "experimental"
            hb = (
                dict(
                    heartbeat_interval=_seconds("HPO_HEARTBEAT_S", HEARTBEAT_S),
                    grace_period=_seconds("HPO_GRACE_S", GRACE_S),
                    heartbeat_stale_trial_callback=CleanRetry(max_retry=MAX_RETRY),
                )
                if heartbeat
                else {}
            )
            for attempt in range(1, CREATE_TRIES + 1):
                try:
                    return GuardedStorage(
                        exact, engine_kwargs=kwargs, skip_table_creation=not create, call_timeout=call_s, **hb
                    )
                except sa.exc.SQLAlchemyError as e:
                    if not (create and _created_meanwhile(e)) or attempt == CREATE_TRIES:
                        raise
                    time.sleep(0.1 * attempt)  # the other process's tables are committed by now, or soon
    except ImportError as e:
        cause = e  # Optuna re-raises the driver's ImportError as "Failed to import DB access module ..."
        while isinstance(cause.__cause__, ImportError):
            cause = cause.__cause__
        raise StorageError(f"no database driver for {mask(url)}: {mask(url, str(cause))}{_driver_hint(parsed)}") from e
    except (sa.exc.SQLAlchemyError, optuna.exceptions.OptunaError, RuntimeError, ValueError) as e:
        if isinstance(e, sa.exc.NoSuchModuleError):  # no such dialect or driver: postgres://, redis://
            hint = _driver_hint(parsed) or f"; studies live in an SQL database: {', '.join(EXAMPLE_URLS)}"
        elif _created_meanwhile(e):
            hint = "; other processes create its tables: create the study first (hpo run --create-only)"
        else:
            hint = ""
        raise StorageError(f"cannot open storage {mask(url)}: {_brief(e, url)}{hint}") from e


def _created_meanwhile(e: BaseException) -> bool:
    """Whether `e`, from creating Optuna's tables in a fresh database, says another process was creating them at
    the same moment: a table, type or version row that exists already (PostgreSQL: a duplicate key in
    pg_type; SQLite: "table ... already exists" or a UNIQUE alembic_version)."""
    return isinstance(e, sa.exc.IntegrityError) or (
        isinstance(e, sa.exc.SQLAlchemyError) and "already exists" in str(getattr(e, "orig", e))
    )


def _require_tables(exact: str, kwargs: dict, url: str) -> None:
    """Raise StorageError unless the database at `exact` (`url` as given) answers and holds Optuna's tables."""
    engine = sa.create_engine(exact, **kwargs)
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
        raise StorageError(f"cannot read studies from {mask(url)}: {_brief(e, url)}") from e
    if name not in names:
        known = ", ".join(sorted(names)) or "none"
        raise StorageError(f"no study named {name!r} in {mask(url)} (studies: {known})")


def open_existing_study(storage: str | None, name: str) -> tuple[optuna.Study, RDBStorage]:
    """The named existing study and its storage (URL precedence as resolve_url), creating nothing."""
    url = resolve_url(storage)
    st = open_storage(url, create=False, heartbeat=False)
    require_study(st, url, name)
    return optuna.load_study(study_name=name, storage=st), st
