"""Fault tolerance on a real database: a SIGKILLed worker, SIGTERM/SIGINT, a database restart, many workers
at once, and MariaDB. Workers are spawned processes running the real worker loop; most use the trivial
Probe objective so the faults, not training, take the time."""

from __future__ import annotations

import multiprocessing
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpo.guard import INTERRUPTED, budget_used
from hpo.storage import open_storage
from hpo.workers import probe_main, supervise
from tests.conftest import service_unavailable
from tests.pgserver import PrivatePostgres

HPO = str(Path(sys.executable).parent / "hpo")
pytestmark = pytest.mark.slow


def _wait_for(predicate, timeout: float = 120.0, every: float = 0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s")


def _running(url: str, name: str) -> list:
    try:
        return optuna.load_study(study_name=name, storage=url).get_trials(states=(TrialState.RUNNING,))
    except KeyError:  # the study is not created yet
        return []


def _assert_clean(trials, budget: int) -> None:
    """The budget is used exactly, numbers are unique, and nothing is left RUNNING or WAITING."""
    assert budget_used(trials) == budget
    assert len({t.number for t in trials}) == len(trials)
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]


def test_a_killed_workers_trial_is_retried_with_the_same_params(fresh_postgres_url, monkeypatch):
    monkeypatch.setenv("HPO_HEARTBEAT_S", "1")
    monkeypatch.setenv("HPO_GRACE_S", "3")
    url = fresh_postgres_url
    optuna.create_study(study_name="kill", storage=open_storage(url))
    ctx = multiprocessing.get_context("spawn")
    doomed = ctx.Process(target=probe_main, args=(url, "kill", 3, 10, 0.5))  # 5 s trials
    doomed.start()
    _wait_for(lambda: _running(url, "kill"))
    doomed.kill()
    doomed.join()
    codes, _ = supervise(probe_main, [(url, "kill", 3, 1)])
    assert codes == [0]
    trials = optuna.load_study(study_name="kill", storage=url).trials
    _assert_clean(trials, 3)
    (dead,) = [t for t in trials if t.state == TrialState.FAIL]
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == dead.number]
    assert retry.state == TrialState.COMPLETE and retry.params == dead.params


@pytest.mark.parametrize("signum, workers", [(signal.SIGTERM, 2), (signal.SIGINT, 1)])
def test_a_signal_stops_the_run_and_fails_its_trials_as_interrupted(
    signum, workers, tiny_spec, fresh_postgres_url, tmp_path
):
    tiny_spec.write_text(tiny_spec.read_text().replace("epochs = 2", "epochs = 50"))  # long trials
    cmd = [HPO, "run", "--study", str(tiny_spec), "--storage", fresh_postgres_url, "--json"]
    cmd += ["--workers", str(workers), "--artifacts", str(tmp_path / "artifacts")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    _wait_for(lambda: len(_running(fresh_postgres_url, "tiny")) == workers, every=0.3)
    sent = time.monotonic()
    proc.send_signal(signum)
    proc.wait(timeout=30)
    assert time.monotonic() - sent < 10 and proc.returncode == 130
    trials = optuna.load_study(study_name="tiny", storage=fresh_postgres_url).trials
    assert [(t.state, t.user_attrs.get("fail_reason")) for t in trials] == [(TrialState.FAIL, INTERRUPTED)] * workers


@pytest.fixture
def private_postgres():
    why = PrivatePostgres.available()
    if why:
        service_unavailable("private PostgreSQL", why)
    server = PrivatePostgres().start()
    yield server
    server.stop()


def test_workers_ride_out_a_database_restart(private_postgres):
    url = private_postgres.url
    optuna.create_study(study_name="restart", storage=open_storage(url))
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=probe_main, args=(url, "restart", 40, 4, 0.05)) for _ in range(2)]
    for w in workers:
        w.start()
    _wait_for(lambda: len(optuna.load_study(study_name="restart", storage=url).trials) >= 5)
    private_postgres.down_for(3.0)
    for w in workers:
        w.join(timeout=300)
    assert [w.exitcode for w in workers] == [0, 0]
    trials = optuna.load_study(study_name="restart", storage=url).trials
    _assert_clean(trials, 40)
    unfinished = [
        (t.number, t.state.name, t.user_attrs, t.system_attrs)
        for t in trials
        if t.state not in (TrialState.COMPLETE, TrialState.PRUNED)
    ]
    assert not unfinished


def test_every_storage_call_of_a_trial_rides_out_an_outage(private_postgres):
    # Optuna's _CachedStorage calls private RDBStorage methods (_set_trial_param, _get_trials, ...): a trial
    # whose suggest, report, should_prune and tell all meet a dead database must still complete.
    study = optuna.create_study(study_name="outage", storage=open_storage(private_postgres.url))
    trial = study.ask()
    private_postgres.halt()
    threading.Timer(2.0, private_postgres.resume).start()
    x = trial.suggest_float("x", 0.0, 1.0)
    trial.report(x, 0)
    trial.should_prune()
    study.tell(trial, x)
    assert study.trials[trial.number].state == TrialState.COMPLETE


def test_eight_workers_make_exactly_400_trials(fresh_postgres_url, capfd):
    optuna.create_study(study_name="stress", storage=open_storage(fresh_postgres_url))
    codes, _ = supervise(probe_main, [(fresh_postgres_url, "stress", 400, 1)] * 8)
    assert codes == [0] * 8
    trials = optuna.load_study(study_name="stress", storage=fresh_postgres_url).trials
    assert len(trials) == 400
    _assert_clean(trials, 400)
    assert "already finished" not in capfd.readouterr().err


MARIADB_URL = "mysql+pymysql://root@127.0.0.1:3306/test"


@pytest.fixture
def mariadb_url():
    """A fresh database on the MariaDB server, dropped afterwards."""
    import sqlalchemy as sa

    name = f"hpo_{uuid.uuid4().hex[:12]}"
    try:
        admin = sa.create_engine(MARIADB_URL)
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    except Exception as e:  # no driver, no server: not available here
        service_unavailable("MariaDB", f"{type(e).__name__}: {e}")
    yield sa.engine.make_url(MARIADB_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
    admin.dispose()


def test_mariadb_holds_the_budget_with_parallel_workers(mariadb_url):
    optuna.create_study(study_name="maria", storage=open_storage(mariadb_url))
    codes, _ = supervise(probe_main, [(mariadb_url, "maria", 20, 2)] * 2)
    assert codes == [0, 0]
    _assert_clean(optuna.load_study(study_name="maria", storage=mariadb_url).trials, 20)
