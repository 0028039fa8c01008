"""Where studies live, and the one door to Optuna's storage: every hpo module reads and writes studies through
this package (open_storage here, GuardedStorage in guard, dead workers' trials in recovery, checkpoints in
artifacts), and only internals names what is private to Optuna.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, unquote, unquote_plus

import optuna
import sqlalchemy as sa
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

from core.errors import CovblendError
from hpo.storage import internals
from hpo.storage.guard import RETRIED, GuardedStorage

STORAGE_ENV = "HPO_STORAGE"
DEFAULT_URL = "sqlite:///hpo.db"
HEARTBEAT_S = 30  # a running trial writes a heartbeat this often ($HPO_HEARTBEAT_S overrides, in seconds)
GRACE_S = 120  # ... and is declared stale (FAIL, then retried) after this long without one ($HPO_GRACE_S)
MAX_RETRY = 2  # retries of a stale trial before it stays FAIL
SQLITE_TIMEOUT_S = 60  # wait this long on a locked SQLite file before "database is locked"
CONNECT_TIMEOUT_S = 10  # give up on a database server that has not answered this long ($HPO_CONNECT_TIMEOUT_S)
# Per DB-API driver (URL "backend+driver"), the connect() arguments that bound one connection attempt to t seconds.
# Without them a server that accepts TCP but never answers hangs the caller: psycopg waits 130 s, PyMySQL for
# ever. PyMySQL reads the server's greeting under read_timeout, so on MySQL/MariaDB t bounds every read too.
CONNECT_ARGS: dict[str, Callable[[int], dict]] = {
    "psycopg": lambda t: {"connect_timeout": t},
    "psycopg2": lambda t: {"connect_timeout": t},
    "pg8000": lambda t: {"timeout": t},
    "pymysql": lambda t: {"connect_timeout": t, "read_timeout": t, "write_timeout": t},
    "mysqldb": lambda t: {"connect_timeout": t, "read_timeout": t, "write_timeout": t},
    "pysqlite": lambda t: {"timeout": SQLITE_TIMEOUT_S},  # a file: no server to wait for, only its lock
}
# Query parameters some drivers read a password from (e.g. postgresql://u@host/db?password=...).
SECRET_QUERY_KEYS = ("password", "passwd", "pwd")
STORAGE_HELP = (
    "Storage URL; default $HPO_STORAGE, else sqlite:///hpo.db. Passwords are never printed. A database server "
    f"that has not answered within $HPO_CONNECT_TIMEOUT_S seconds (default {CONNECT_TIMEOUT_S}) is an error."
)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")


class StorageError(CovblendError):
    """The storage URL is malformed, the database unreachable, or a named study absent; one line."""


def resolve_url(cli_value: str | None = None) -> str:
    """--storage if given, else $HPO_STORAGE, else sqlite:///hpo.db."""
    return cli_value or os.environ.get(STORAGE_ENV) or DEFAULT_URL


def _password_spans(url: str) -> list[tuple[int, int]]:
    """Where passwords sit in the URL's text, merged and in order, found without parsing it (so an unparsable
    URL is covered too).

    The user info runs from "://" (or the start) to the LAST '@', so a password holding '@', ':' or '/' is taken
    whole; its password part starts after the first ':'. A password= query value counts as well.
    """
    start = url.find("://") + 3 if "://" in url else 0
    spans = []
    at = url.rfind("@", start)
    colon = url.find(":", start, at)
    if at >= 0 and colon >= 0 and not url.startswith("sqlite"):  # a SQLite path may hold ':' and '@'
        spans.append((colon + 1, at))
    for key in SECRET_QUERY_KEYS:
        spans += [m.span(1) for m in re.finditer(rf"[?&;]{key}=([^&;#]*)", url, flags=re.IGNORECASE)]
    merged: list[tuple[int, int]] = []
    for begin, end in sorted(spans):
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((begin, end))
    return merged


def mask(url: str, text: str | None = None) -> str:
    """The URL fit to print, every password in it replaced by ***. With `text` (a driver's message): that text
    with each form of the URL's password (as typed, percent-decoded, re-encoded) replaced by ***, or a note in
    its place when some 3-character piece of the password is still in it (a host name cut from a mistyped URL).

    The one place passwords are hidden: every URL and storage error this project prints goes through it.
    """
    spans = _password_spans(url)
    if text is None:
        shown, last = [], 0
        for begin, end in spans:
            shown += [url[last:begin], "***"]
            last = end
        return "".join(shown) + url[last:]
    typed = [url[begin:end] for begin, end in spans]
    forms = {form for p in typed for form in (p, unquote(p), unquote_plus(p), quote(unquote(p), safe=""))}
    for form in sorted(forms, key=len, reverse=True):
        if len(form) >= 3:  # a shorter one is no secret worth garbling every message for
            text = text.replace(form, "***")
    if any(form[i : i + 3] in text for form in forms for i in range(len(form) - 2)):
        return "(details withheld: they quote part of the password)"
    return text


def parse_url(url: str) -> sa.engine.URL:
    """The URL as SQLAlchemy takes it; user info is split at the last '@', like _password_spans."""
    try:
        scheme, sep, rest = url.partition("://")
        if not sep or not _SCHEME.fullmatch(scheme):
            raise ValueError("no scheme")
        if scheme.startswith("sqlite") or "@" not in rest:  # a file path may hold an '@'; it is no user info
            return sa.engine.make_url(url)
        info, host = rest.rsplit("@", 1)
        user, has_password, password = info.partition(":")
        parsed = sa.engine.make_url(f"{scheme}://{host}")
        return parsed.set(username=unquote(user) or None, password=unquote(password) if has_password else None)
    except (sa.exc.ArgumentError, ValueError) as e:
        # Without an '@' nothing marks a password, and "postgresql://user:secret" may well hold one: scheme only.
        shown = f"{scheme}://..." if sep and _SCHEME.fullmatch(scheme) else "(hidden)"
        if _password_spans(url):
            shown = mask(url)
        raise StorageError(f"cannot parse storage URL {shown}: expected e.g. sqlite:///hpo.db") from e


def sqlite_file(url: str) -> Path | None:
    """The database file of a sqlite URL, None for other backends or in-memory SQLite."""
    parsed = parse_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


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


def engine_kwargs(parsed: sa.engine.URL) -> dict:
    """create_engine arguments for this URL: pool_pre_ping, and the driver's connect timeout."""
    connect = CONNECT_ARGS.get(parsed.get_driver_name())
    kwargs: dict = {"pool_pre_ping": True}
    if connect is not None:
        kwargs["connect_args"] = connect(_seconds("HPO_CONNECT_TIMEOUT_S", CONNECT_TIMEOUT_S))
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
    exact = parsed.render_as_string(hide_password=False)  # the password re-encoded, so Optuna parses it back whole
    try:
        kwargs = engine_kwargs(parsed)  # names the driver, so an unknown one fails here
        if not create:
            _require_tables(exact, kwargs, url)
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
            return GuardedStorage(exact, engine_kwargs=kwargs, skip_table_creation=not create, **hb)
    except ImportError as e:
        raise StorageError(f"no database driver for {mask(url)}: {mask(url, str(e))}") from e
    except (sa.exc.SQLAlchemyError, optuna.exceptions.OptunaError, RuntimeError, ValueError) as e:
        raise StorageError(f"cannot open storage {mask(url)}: {_brief(e, url)}") from e


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
