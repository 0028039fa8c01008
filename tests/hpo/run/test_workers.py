"""`hpo run --workers W`: thread shares, one study created up front, the global budget held exactly."""

from __future__ import annotations

import errno
import multiprocessing
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from benchmarks.probe import probe_main
from core.errors import CovblendError
from hpo import console
from hpo.run.processes import Death, supervise
from hpo.run.workers import (
    KILLED,
    UNRELEASED_EXIT,
    WORKERS_PER_CORE,
    Reaper,
    check_workers,
    finished,
    threads_per_worker,
)
from hpo.storage import internals, open_storage
from hpo.storage.guard import BudgetReached
from hpo.storage.recovery import release_trial

HPO = str(Path(sys.executable).parent / "hpo")


def test_each_worker_gets_its_share_of_the_cores():
    assert threads_per_worker(2, cores=2) == 1
    assert threads_per_worker(4, cores=16) == 4
    assert threads_per_worker(3, cores=2) == 1  # never zero threads


def test_workers_beyond_what_the_cores_hold_need_the_override():
    check_workers(WORKERS_PER_CORE * 2, cores=2)
    with pytest.raises(CovblendError, match=r"--workers must be <= 8 .*got --workers=9; --no-worker-cap"):
        check_workers(9, cores=2)
    check_workers(9, cores=2, uncapped=True)


def test_a_worker_that_cannot_be_started_stops_the_started_ones(monkeypatch):
    """The third spawn fails as fork does under a process limit (EAGAIN); root is exempt from RLIMIT_NPROC, so
    the refusal is injected at the spawn itself."""
    spawn = multiprocessing.get_context("spawn").Process
    started = []
    real = spawn._Popen

    def popen(process):
        if len(started) == 2:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        started.append(process)
        return real(process)

    monkeypatch.setattr(spawn, "_Popen", staticmethod(popen))
    with pytest.raises(CovblendError) as e:
        supervise(time.sleep, [(600,)] * 4)
    (line,) = str(e.value).splitlines()
    assert line.startswith("could not start worker 2 of 4: ") and "2 started workers were stopped" in line
    assert [p.is_alive() for p in started] == [False, False]


def test_killed_trials_whose_retries_wait_are_not_counted_as_finished(tmp_path):
    study = optuna.create_study(study_name="s", storage=open_storage(f"sqlite:///{tmp_path / 'hpo.db'}"))
    for _ in range(2):  # both workers killed inside their first trials
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        release_trial(study, trial._trial_id, KILLED, requeue=True)
    done = study.ask()
    study.tell(done, 0.5)
    assert finished(study.trials) == 1  # the told one; the killed ones wait as retries


def test_a_fresh_trial_beyond_the_budget_is_refused(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'hpo.db'}")
    study = optuna.create_study(study_name="s", storage=storage)
    with storage.serving(2):
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
        with pytest.raises(BudgetReached):
            study.ask()
    assert len(study.trials) == 2


@pytest.mark.slow
def test_two_workers_on_sqlite_finish_the_budget_without_lock_errors(tiny_spec, tmp_path):
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    cmd = [HPO, "run", "--study", str(tiny_spec), "--storage", url, "--workers", "2", "--n-trials", "4", "--json"]
    cmd += ["--artifacts", str(tmp_path / "artifacts")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "PostgreSQL" in done.stderr and "locked" not in done.stderr
    trials = optuna.load_study(study_name="tiny", storage=url).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert {t.user_attrs["threads"] for t in trials} == {threads_per_worker(2)}


@pytest.mark.slow
def test_parallel_workers_on_postgres_use_exactly_the_budget(fresh_postgres_url):
    optuna.create_study(study_name="probe", storage=open_storage(fresh_postgres_url))
    codes, stopped = supervise(probe_main, [(fresh_postgres_url, "probe", 30, 2)] * 3)
    assert codes == [0, 0, 0] and not stopped
    trials = optuna.load_study(study_name="probe", storage=fresh_postgres_url).trials
    assert len(trials) == 30 and len({t.number for t in trials}) == 30
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)


def test_a_stopped_worker_whose_database_did_not_answer_is_not_waited_on_again(tmp_path):
    """Its trial stays RUNNING for the stale check; a worker that stopped otherwise has its trial failed here."""
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 'hpo.db'}"))
    trial_id = internals.trial_id(study.ask())
    reaper = Reaper(study)
    reaper(Death(0, 100, UNRELEASED_EXIT, trial_id), True)
    assert reaper.unreleased == reaper.deaths
    assert study.trials[0].state == TrialState.RUNNING
    reaper(Death(1, 101, console.EXIT_INTERRUPTED, trial_id), True)
    assert study.trials[0].state == TrialState.FAIL
