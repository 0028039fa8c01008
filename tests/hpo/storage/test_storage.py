"""Storage: URL precedence, masking, one-line errors, and a working RDBStorage on SQLite and PostgreSQL."""

from __future__ import annotations

import importlib.util
import inspect
import multiprocessing

import optuna
import pytest
import sqlalchemy as sa
from optuna.storages import RDBStorage

from hpo.storage import StorageError, engine_kwargs, guard, open_storage, require_study
from hpo.storage.deadline import Watchdog
from hpo.storage.guard import StorageUnavailable
from hpo.storage.urls import DEFAULT_URL, STORAGE_ENV, mask, parse_url, resolve_url


def test_url_precedence(monkeypatch):
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    assert resolve_url(None) == DEFAULT_URL == "sqlite:///hpo.db"
    monkeypatch.setenv(STORAGE_ENV, "sqlite:///env.db")
    assert resolve_url(None) == "sqlite:///env.db"
    assert resolve_url("sqlite:///cli.db") == "sqlite:///cli.db"


def test_mask_hides_password():
    shown = mask("postgresql+psycopg://alice:s3cret@db.example:5432/hpo")
    assert "s3cret" not in shown and "alice" in shown and "db.example" in shown


@pytest.mark.parametrize(
    "url, secret",
    [
        ("postgresql+psycopg://alice:Zq7@RETx@db:5432/hpo", "Zq7@RETx"),
        ("postgresql+psycopg://alice:Kj:Vw/Qx@db/hpo", "Kj:Vw/Qx"),
        ("postgresql+psycopg://alice:Xk%40Wp%2F7@db/hpo", "Xk%40Wp%2F7"),
        ("postgresql+psycopg://alice@db/hpo?sslmode=require&password=Zq7RETx", "Zq7RETx"),
        ("postgresql+psycopg://alice:Zq7RETx@db:notaport/hpo", "Zq7RETx"),
        ("alice:Zq7RETx@db", "Zq7RETx"),
    ],
)
def test_mask_hides_the_whole_password_however_the_url_looks(url, secret):
    shown = mask(url)
    assert secret not in shown and "***" in shown and "alice" in shown


def test_a_password_with_at_colon_and_slash_is_taken_whole():
    parsed = parse_url("postgresql+psycopg://alice:p@s:s/w@db.example:6543/hpo")
    assert (parsed.username, parsed.password, parsed.host, parsed.port) == ("alice", "p@s:s/w", "db.example", 6543)
    assert parse_url("postgresql+psycopg://alice:p%40ss@db/hpo").password == "p@ss"


def _fragments(password: str) -> set[str]:
    """Every 3-character piece of the password; any longer piece of it holds one."""
    return {password[i : i + 3] for i in range(len(password) - 2)}


# (url, its password): a raw '@', '/', ':', '#', '?' or '&' in a password, with or without a host after it.
ADVERSARIAL = [
    ("postgresql+psycopg://ft_user:S3cr@t/pw:x#?", "S3cr@t/pw:x#?"),
    ("postgresql+psycopg://ft_user@db/hpo?password=S3cr@t/pw:x#?", "S3cr@t/pw:x#?"),
    ("postgresql+psycopg://ft_user@db/hpo?password=Zq7@RETx&sslmode=require", "Zq7@RETx"),
    ("postgresql+psycopg://ft_user@db/hpo?sslmode=require&PASSWORD=Kq&W#3@x", "Kq&W#3@x"),
    ("postgresql+psycopg://ft_user:Wx#9?k@db/hpo", "Wx#9?k"),
    ("postgresql+psycopg://ft_user:Qz7RETx", "Qz7RETx"),
    ("postgresql+psycopg://ft_user:S3cr@t:99x/db", "S3cr@t:99x"),
    ("postgresql+psycopg://:Pq@/x:y@", "Pq@/x:y@"),
    ("mysql+pymysql://root:Jk@Lm/no@pe:x@db:3306/x", "Jk@Lm/no@pe:x"),
    ("postgresql+psycopg://ft_user:Vb9 Nm\nKl@[::1]:5432/db", "Vb9 Nm\nKl"),
    ("postgresql+psycopg://ft_user:Zq7@RETx", "Zq7@RETx"),  # or password Zq7 on host RETx: nobody can tell
    ("postgresql+psycopg://ft_user:Zq7@RETx:5432", "Zq7@RETx:5432"),
]


@pytest.mark.parametrize("url, password", ADVERSARIAL)
def test_no_piece_of_an_adversarial_password_is_shown(url, password):
    shown = mask(url)
    assert "***" in shown and not [f for f in _fragments(password) if f in shown], shown
    try:
        parse_url(url)
    except StorageError as e:  # the message masks the URL the same way
        assert not [f for f in _fragments(password) if f in str(e)], str(e)


def test_a_raw_at_in_a_password_query_value_is_no_host():
    parsed = parse_url("postgresql+psycopg://ft_user@db.example/hpo?password=Zq7@RETx&sslmode=require")
    assert (parsed.host, parsed.query["password"], parsed.query["sslmode"]) == ("db.example", "Zq7@RETx", "require")


@pytest.mark.parametrize(
    "url",
    ["postgresql+psycopg://ft_user:S3cr@t/pw:x#?", "postgresql+psycopg://u:ab@cd", "mysql+pymysql://u:ab@cd:3306"],
)
def test_a_url_whose_host_cannot_be_told_from_its_password_is_refused(url):
    with pytest.raises(StorageError, match="percent-encoded"):
        parse_url(url)


def test_a_password_followed_by_host_and_database_is_no_riddle():
    assert mask("postgresql+psycopg://u:ab@cd/db") == "postgresql+psycopg://u:***@cd/db"
    assert mask("postgresql+psycopg://u@cd") == "postgresql+psycopg://u@cd"  # no password: nothing to hide


def test_a_driver_message_quoting_part_of_the_password_is_withheld():
    url = "postgresql+psycopg://alice:Zq7RETx@db/hpo"
    assert mask(url, "auth failed for Zq7RETx") == "auth failed for ***"
    assert "RETx" not in mask(url, "could not resolve host 'RETx'")


@pytest.mark.parametrize(
    "url, key",
    [
        ("postgresql+psycopg://u@h/db", "connect_timeout"),
        ("postgresql://u@h/db", "connect_timeout"),
        ("postgresql+pg8000://u@h/db", "timeout"),
        ("mysql+pymysql://u@h/db", "read_timeout"),
        ("mysql://u@h/db", "connect_timeout"),
    ],
)
def test_every_server_backend_bounds_its_connect(url, key, monkeypatch):
    monkeypatch.setenv("HPO_CONNECT_TIMEOUT_S", "7")
    assert engine_kwargs(parse_url(url))["connect_args"][key] == 7


def test_a_postgres_session_ends_a_statement_at_the_call_deadline(fresh_postgres_url, monkeypatch):
    monkeypatch.setenv("HPO_CALL_TIMEOUT_S", "1")
    monkeypatch.setattr(guard, "OUTAGE_S", 2.0)
    storage = open_storage(fresh_postgres_url)
    with storage.engine.connect() as conn:  # not through the storage's calls: no watchdog, only the server's limit
        shown = {
            name: conn.execute(sa.text(f"SHOW {name}")).scalar()
            for name in ("statement_timeout", "tcp_keepalives_idle")
        }
        assert shown == {"statement_timeout": "1s", "tcp_keepalives_idle": "1"}
        with pytest.raises(guard.TRANSIENT) as e:  # what the storage retries, as an outage
            conn.execute(sa.text("SELECT pg_sleep(5)"))
    assert "statement timeout" in str(e.value.orig)

    def sleep() -> None:
        with storage.engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_sleep(5)"))

    with pytest.raises(StorageUnavailable) as e:  # retried for the outage limit, then one line
        storage.retry(sleep, "pg_sleep")
    (line,) = str(e.value).splitlines()
    assert line.startswith("the database did not answer for 2 s (storage pg_sleep, last OperationalError)")


# The calls of RDBStorage that reach the database and a worker never makes; and the one that runs inside its
# caller's session, retried with that caller.
NOT_RETRIED = {"create_new_study", "delete_study", "get_all_versions", "get_current_version", "get_head_version"}
NOT_RETRIED |= {"upgrade", "_set_trial_attr_without_commit"}


def test_every_call_a_worker_makes_to_the_database_is_retried_or_handled():
    """So no driver error leaves a worker's storage, only StorageUnavailable after the outage limit: a call Optuna
    adds that reaches the database fails this until it is retried (guard.RETRIED) or handled by an override."""

    def reaches_database(method) -> bool:
        source = inspect.getsource(getattr(method, "__func__", method))
        return any(way in source for way in ("_create_scoped_session", "self.engine", "self._version_manager"))

    touching = {
        name
        for name, method in vars(RDBStorage).items()
        if callable(getattr(method, "__func__", method)) and not name.startswith("__") and reaches_database(method)
    }
    overridden = {name for name in vars(guard.GuardedStorage) if name in vars(RDBStorage)}
    assert touching - set(guard.RETRIED) - overridden == NOT_RETRIED
    assert {"set_trial_state_values", "record_heartbeat"} <= overridden  # its own retry; a skipped beat


def test_the_urls_own_driver_settings_win():
    url = "postgresql+psycopg://u@h/db?options=-c%20statement_timeout%3D0&keepalives=0"
    args = engine_kwargs(parse_url(url), call_s=30)["connect_args"]
    assert args["options"].startswith("-c statement_timeout=30s ") and args["options"].endswith("statement_timeout=0")
    assert "keepalives" not in args and args["keepalives_idle"] == 30  # keepalives=0 comes from the URL


def test_a_urls_own_connect_timeout_opens_connections(fresh_postgres_url):
    """The URL's ?connect_timeout= reaches the driver as text; the watchdog's bound on a new connection reads it."""
    storage = open_storage(f"{fresh_postgres_url}?connect_timeout=5")
    assert isinstance(optuna.get_all_study_names(storage), list)


def test_the_watchdog_passes_over_a_closed_connection(postgres_url):
    engine = sa.create_engine(postgres_url)
    dog = Watchdog(1.0)
    sa.event.listen(engine, "connect", dog.watch)
    with engine.connect() as conn:
        (raw,) = dog.connections
        conn.execute(sa.text("SELECT 1"))
    raw.close()  # what the pool does to a connection it drops while the watchdog still knows it
    dog.cut()  # psycopg's fileno() raised on it, and the watchdog's thread died with a traceback
    engine.dispose()


def open_at_once(url: str, barrier, answers) -> None:
    """A process that opens `url` the moment its siblings do, and says how it went."""
    barrier.wait()
    try:
        open_storage(url)
        answers.put("opened")
    except StorageError as e:
        answers.put(str(e))


def test_processes_opening_a_fresh_database_at_once_all_open_it(storage_url):
    """Hosts started together on an empty database: each creates Optuna's tables, and all but one used to fail
    ("table studies already exists", a duplicate key in PostgreSQL's pg_type)."""
    ctx = multiprocessing.get_context("spawn")
    barrier, answers = ctx.Barrier(4), ctx.Queue()
    processes = [ctx.Process(target=open_at_once, args=(storage_url, barrier, answers)) for _ in range(4)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=120)
    assert [answers.get(timeout=1) for _ in processes] == ["opened"] * 4


def test_a_bad_connect_timeout_is_one_line(monkeypatch):
    monkeypatch.setenv("HPO_CONNECT_TIMEOUT_S", "soon")
    with pytest.raises(StorageError, match="HPO_CONNECT_TIMEOUT_S"):
        open_storage("postgresql+psycopg://u@127.0.0.1:9/x")


def test_unparsable_url_is_one_line():
    with pytest.raises(StorageError) as e:
        open_storage("not a url")
    assert "\n" not in str(e.value) and "cannot parse" in str(e.value)


def test_unreachable_database_is_one_line_without_password():
    with pytest.raises(StorageError) as e:
        open_storage("postgresql+psycopg://alice:s3cret@127.0.0.1:9/hpo")
    msg = str(e.value)
    assert "\n" not in msg and "s3cret" not in msg and "127.0.0.1:9" in msg


@pytest.mark.parametrize("create", [True, False], ids=["hpo run", "a command that reads"])
@pytest.mark.parametrize(
    "url, hint",
    [
        ("postgres://u@127.0.0.1:9/x", "write postgresql+psycopg://... instead"),  # no such dialect in SQLAlchemy
        ("mysql://root:s3cret@127.0.0.1:9/x", "No module named 'MySQLdb'; write mysql+pymysql://... instead"),
        ("mariadb://root@127.0.0.1:9/x", "write mariadb+pymysql://... instead (pip install pymysql)"),
        ("redis://127.0.0.1:9", "studies live in an SQL database: sqlite:///FILE, postgresql+psycopg://"),
    ],
)
def test_a_scheme_without_an_installed_driver_names_the_one_to_write(url, hint, create):
    if url.startswith("m") and importlib.util.find_spec("MySQLdb") is not None:  # mysql://, mariadb://
        pytest.skip("MySQLdb, the default mysql:// driver, is installed here")
    with pytest.raises(StorageError) as e:
        open_storage(url, create=create)
    assert hint in str(e.value) and "s3cret" not in str(e.value) and "\n" not in str(e.value)


def test_a_driver_the_url_names_gets_no_hint_to_write_itself():
    with pytest.raises(StorageError) as e:
        open_storage("postgresql+psycopg://u@127.0.0.1:9/x")
    assert "instead" not in str(e.value)


def test_reading_a_missing_sqlite_file_creates_nothing(tmp_path):
    path = tmp_path / "missing.db"
    with pytest.raises(StorageError, match="does not exist"):
        open_storage(f"sqlite:///{path}", create=False)
    assert not path.exists()


def test_reading_an_empty_postgres_creates_no_tables(fresh_postgres_url):
    import sqlalchemy as sa

    with pytest.raises(StorageError, match="no studies"):
        open_storage(fresh_postgres_url, create=False)
    engine = sa.create_engine(fresh_postgres_url)
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == []
    engine.dispose()


def test_storage_roundtrip_with_heartbeat(storage_url):
    storage = open_storage(storage_url)
    assert storage.heartbeat_interval and storage.grace_period and storage.heartbeat_stale_trial_callback
    assert storage.engine_kwargs["pool_pre_ping"] is True
    study = optuna.create_study(study_name="s", storage=storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    again = optuna.load_study(study_name="s", storage=open_storage(storage_url, create=False))
    assert len(again.trials) == 2


def test_unknown_study_names_the_known_ones(storage_url):
    storage = open_storage(storage_url)
    optuna.create_study(study_name="present", storage=storage)
    with pytest.raises(StorageError, match="no study named 'absent'.*present"):
        require_study(storage, storage_url, "absent")


def test_an_in_memory_database_keeps_its_tables_for_one_process():
    storage = open_storage("sqlite:///:memory:")
    optuna.create_study(study_name="s", storage=storage)
    assert optuna.get_all_study_names(storage) == ["s"]
