"""Fault tolerance on a real database: a SIGKILLed worker, SIGTERM/SIGINT, a worker that ignores them, a trial
left without a heartbeat, a database restart, many workers at once, and MariaDB. Workers are spawned processes
running the real worker loop; most use the trivial Probe objective so the faults, not training, take the time."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from benchmarks.probe import probe_main
from hpo.run import processes
from hpo.run.processes import publish_trial, supervise
from hpo.run.runner import run_worker
from hpo.run.workers import KILLED, Reaper
from hpo.storage import guard, open_storage
from hpo.storage.deadline import impatient
from hpo.storage.guard import INTERRUPTED, StorageUnavailable, budget_used
from hpo.storage.recovery import OrphanWatch, fail_stale
from tests.conftest import service_unavailable, wait_for
from tests.pgserver import PrivatePostgres
from tests.procfs import gone, worker_pids

HPO = str(Path(sys.executable).parent / "hpo")
pytestmark = pytest.mark.slow


def _running(url: str, name: str) -> list:
    try:
        return optuna.load_study(study_name=name, storage=url).get_trials(states=(TrialState.RUNNING,))
    except KeyError:  # the study is not created yet
        return []


def _reporting(url: str, name: str) -> int:
    """RUNNING trials that have reported an epoch: their workers are inside training."""
    return sum(bool(t.intermediate_values) for t in _running(url, name))


def _started(url: str, name: str) -> int:
    """RUNNING trials whose objective has begun: they hold a param, suggested after the worker published them."""
    return sum(bool(t.params) for t in _running(url, name))


def _requeued(url: str, name: str) -> list:
    """Trials queued again as retries of failed ones."""
    return [t for t in optuna.load_study(study_name=name, storage=url).trials if "failed_trial" in t.system_attrs]


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
    wait_for(lambda: _started(url, "kill"))  # killed once it has params to retry with
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
    tiny_spec.write_text(tiny_spec.read_text().replace("epochs = 2", "epochs = 500"))  # long trials
    cmd = [HPO, "run", "--study", str(tiny_spec), "--storage", fresh_postgres_url, "--json"]
    cmd += ["--workers", str(workers), "--artifacts", str(tmp_path / "artifacts")]
    # A shell without job control starts background commands with SIGINT ignored, and Python then never raises
    # KeyboardInterrupt; restore the default so the run sees Ctrl-C as it would from a terminal.
    restore = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, preexec_fn=restore
    )
    wait_for(lambda: len(_running(fresh_postgres_url, "tiny")) == workers, every=0.3)
    proc.send_signal(signum)
    proc.wait(timeout=300)  # a guard against a hang; the stop waits for one optimiser step, not the epochs
    assert proc.returncode == 130
    trials = optuna.load_study(study_name="tiny", storage=fresh_postgres_url).trials
    stopped = [t for t in trials if t.state != TrialState.WAITING]
    assert [(t.state, t.user_attrs.get("fail_reason")) for t in stopped] == [(TrialState.FAIL, INTERRUPTED)] * workers
    assert all(len(t.intermediate_values) < 500 for t in stopped)  # stopped, not run to the end
    queued = sorted((t.system_attrs["failed_trial"], t.params) for t in trials if t.state == TrialState.WAITING)
    assert queued == [(t.number, t.params) for t in stopped]  # each queued again with its params


def test_workers_stop_at_a_safe_point_when_their_parent_is_killed(tiny_spec, fresh_postgres_url, tmp_path):
    """SIGKILL or the OOM killer take the parent of --workers without a word to its workers, which run in a process
    group of their own: before, they trained on unsupervised. Each now stops as if the parent had forwarded SIGTERM."""
    tiny_spec.write_text(tiny_spec.read_text().replace("epochs = 2", "epochs = 500"))  # long trials
    url = fresh_postgres_url
    cmd = [HPO, "run", "--study", str(tiny_spec), "--storage", url, "--json", "--workers", "2"]
    proc = subprocess.Popen([*cmd, "--artifacts", str(tmp_path / "artifacts")], cwd=tmp_path, stderr=subprocess.PIPE)
    wait_for(lambda: _reporting(url, "tiny") == 2, every=0.3)
    workers = worker_pids(proc.pid)
    proc.kill()
    proc.communicate()
    assert len(workers) == 2
    try:
        wait_for(lambda: all(gone(pid) for pid in workers), timeout=60)  # a hang guard; they stop within a step
    finally:
        for pid in workers:  # a failure here must not leave them training on the shared database
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    trials = optuna.load_study(study_name="tiny", storage=url).trials
    stopped = [t for t in trials if t.state != TrialState.WAITING]
    assert [(t.state, t.user_attrs.get("fail_reason")) for t in stopped] == [(TrialState.FAIL, INTERRUPTED)] * 2
    assert sorted(t.system_attrs["failed_trial"] for t in trials if t.state == TrialState.WAITING) == sorted(
        t.number for t in stopped
    )  # queued again for the next run


class HeldTrial:
    """An objective that stays inside its trial until the file `release` exists, then returns 0."""

    def __init__(self, release: str) -> None:
        self.release = release

    def __call__(self, trial: optuna.Trial, hooks=None) -> float:
        trial.suggest_float("x", 0.0, 1.0)  # tells the test the trial has started
        while not os.path.exists(self.release):
            time.sleep(0.1)
        return 0.0


def held_main(url: str, name: str, n_trials: int, release: str) -> None:
    """A worker whose trials wait for the file `release`."""
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    run_worker(None, study, n_trials, objective=HeldTrial(release), on_trial=publish_trial)


def test_a_dead_workers_trial_is_requeued_while_the_live_worker_is_inside_its_own(
    fresh_postgres_url, monkeypatch, tmp_path
):
    # Separate processes, no supervising parent: only the heartbeat can find the dead worker's trial, and the
    # live worker never gets between trials until the test releases it.
    monkeypatch.setenv("HPO_HEARTBEAT_S", "1")
    monkeypatch.setenv("HPO_GRACE_S", "3")
    url, release = fresh_postgres_url, tmp_path / "release"
    optuna.create_study(study_name="beat", storage=open_storage(url))
    ctx = multiprocessing.get_context("spawn")
    live = ctx.Process(target=held_main, args=(url, "beat", 2, str(release)))
    doomed = ctx.Process(target=probe_main, args=(url, "beat", 2, 1000, 0.5))  # a trial of ~500 s
    live.start()
    try:
        wait_for(lambda: _started(url, "beat") == 1)
        doomed.start()
        wait_for(lambda: _started(url, "beat") == 2)
        doomed.kill()
        doomed.join()
        wait_for(lambda: _requeued(url, "beat"))
        held, dead = optuna.load_study(study_name="beat", storage=url).trials[:2]
        assert held.state == TrialState.RUNNING and dead.state == TrialState.FAIL  # the live worker is still inside
        release.touch()
        live.join(timeout=120)
    finally:
        for process in (live, doomed):
            if process.is_alive():  # a failed wait above: the held worker would wait for ever
                process.kill()
                process.join()
    assert live.exitcode == 0
    trials = optuna.load_study(study_name="beat", storage=url).trials
    _assert_clean(trials, 2)
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == dead.number]
    assert retry.state == TrialState.COMPLETE and retry.params == dead.params


class Stubborn:
    """An objective that ignores SIGTERM and SIGINT, as a worker stuck in native code would, and never returns."""

    def __call__(self, trial: optuna.Trial, hooks=None) -> float:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        trial.suggest_float("x", 0.0, 1.0)  # tells the test the signals are ignored now
        while True:
            time.sleep(1.0)


def stubborn_main(url: str, name: str) -> None:
    """A supervised worker running one Stubborn trial."""
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    run_worker(None, study, 1, objective=Stubborn(), on_trial=publish_trial)


def test_a_worker_killed_after_ignoring_the_signal_has_its_trial_failed(fresh_postgres_url, monkeypatch):
    monkeypatch.setattr(processes, "STOP_S", 1.0)  # the parent kills sooner; the behaviour is the same
    url = fresh_postgres_url
    study = optuna.create_study(study_name="stubborn", storage=open_storage(url))
    sent = []

    def stop_once_started(alive: int) -> None:
        if not sent and _started(url, "stubborn"):
            sent.append(signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)  # supervise forwards it to the worker, which ignores it

    codes, stopped = supervise(stubborn_main, [(url, "stubborn")], on_poll=stop_once_started, on_death=Reaper(study))
    assert stopped and codes == [-signal.SIGKILL]
    trials = optuna.load_study(study_name="stubborn", storage=url).trials
    states = [(t.state, t.user_attrs.get("fail_reason")) for t in trials]
    assert states == [(TrialState.FAIL, INTERRUPTED), (TrialState.WAITING, None)]  # queued again


@pytest.mark.parametrize("killed", [1, 2])
def test_hpo_run_outlives_a_killed_worker_when_the_others_finish(killed, tiny_spec, fresh_postgres_url, tmp_path):
    # The default 120 s grace period: the heartbeat is too slow to be what rescues the trial here.
    tiny_spec.write_text(tiny_spec.read_text().replace("epochs = 2", "epochs = 40"))  # trials long enough to kill
    url = fresh_postgres_url
    cmd = [HPO, "run", "--study", str(tiny_spec), "--storage", url, "--json", "--n-trials", "4"]
    cmd += ["--workers", "2", "--artifacts", str(tmp_path / "artifacts")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    wait_for(lambda: _started(url, "tiny") == 2, every=0.3)
    for pid in worker_pids(proc.pid)[:killed]:
        os.kill(pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    trials = optuna.load_study(study_name="tiny", storage=url).trials
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    dead = [t for t in trials if t.user_attrs.get("fail_reason") == KILLED]
    assert len(dead) == killed and all(t.state == TrialState.FAIL for t in dead)
    retries = {t.system_attrs.get("failed_trial"): t for t in trials if "failed_trial" in t.system_attrs}
    assert [retries[t.number].params for t in dead] == [t.params for t in dead]
    if killed == 1:  # the other worker ran the retry and the rest of the budget
        assert proc.returncode == 0, err
        assert "warning: worker" in err and "SIGKILL" in err
        _assert_clean(trials, 4)
        assert retries[dead[0].number].state == TrialState.COMPLETE
    else:  # nobody left to finish: the budget is not reached, and the retries stay queued for the next run
        assert proc.returncode == 2 and "error: worker" in err
        assert "the study finished 0 of its 4 trials" in err  # not the 2 killed ones, which wait as retries
        assert sorted(t.state.name for t in retries.values()) == ["WAITING", "WAITING"]


def test_a_skipped_heartbeat_names_the_trial_by_its_number(fresh_postgres_url, postgres_url, capfd):
    storage = open_storage(fresh_postgres_url)
    study = optuna.create_study(study_name="beat", storage=storage)
    study.ask()
    trial = study.ask()  # number 1, id 2
    storage.record_heartbeat(trial._trial_id)
    admin = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:  # the database goes away under the running trial
        name = sqlalchemy.engine.make_url(fresh_postgres_url).database
        conn.execute(sqlalchemy.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()
    storage.record_heartbeat(trial._trial_id)
    assert "heartbeat of trial #1 skipped" in capfd.readouterr().err


def test_a_trial_left_without_a_heartbeat_is_failed_and_retried(fresh_postgres_url, monkeypatch):
    monkeypatch.setenv("HPO_HEARTBEAT_S", "1")
    monkeypatch.setenv("HPO_GRACE_S", "2")
    url = fresh_postgres_url
    storage = open_storage(url)
    study = optuna.create_study(study_name="orphan", storage=storage)
    # What a worker SIGKILLed between creating its trial and its first heartbeat leaves: RUNNING, no heartbeat row.
    orphan_id = storage.create_new_trial(study._study_id)
    storage.set_trial_param(orphan_id, "x", 0.25, FloatDistribution(-1.0, 1.0))
    worker = multiprocessing.get_context("spawn").Process(target=probe_main, args=(url, "orphan", 3, 1))
    worker.start()
    worker.join(timeout=120)
    if worker.is_alive():  # it would linger for ever behind the orphan
        worker.kill()
        worker.join()
    assert worker.exitcode == 0
    trials = optuna.load_study(study_name="orphan", storage=url).trials
    _assert_clean(trials, 3)
    assert trials[0].state == TrialState.FAIL
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == trials[0].number]
    assert retry.state == TrialState.COMPLETE and retry.params == {"x": 0.25}


@pytest.fixture
def private_postgres():
    why = PrivatePostgres.available()
    if why:
        service_unavailable("private PostgreSQL", why)
    server = PrivatePostgres().start()
    yield server
    server.stop()


def _one_trial_study(url: str, name: str, monkeypatch, call_s: int, connect_s: int):
    """(storage, study) on `url` with one RUNNING trial, opened under these call and connect timeouts."""
    monkeypatch.setenv("HPO_CALL_TIMEOUT_S", str(call_s))
    monkeypatch.setenv("HPO_CONNECT_TIMEOUT_S", str(connect_s))
    storage = open_storage(url)
    study = optuna.create_study(study_name=name, storage=storage)
    study.ask()
    return storage, study


def _seconds_until_unavailable(storage, study) -> float:
    """Seconds until reading the study's trials raises StorageUnavailable (the test fails where it does not)."""
    start = time.monotonic()
    with pytest.raises(StorageUnavailable):
        storage.get_all_trials(study._study_id)
    return time.monotonic() - start


@pytest.mark.timeout(300)  # the guard against the old hang; the bound under test is a few seconds
def test_a_frozen_server_is_a_one_line_error_after_the_outage_limit(private_postgres, monkeypatch):
    monkeypatch.setattr(guard, "OUTAGE_S", 6.0)
    storage, study = _one_trial_study(private_postgres.url, "frozen", monkeypatch, call_s=2, connect_s=2)
    private_postgres.freeze()
    try:
        with pytest.raises(StorageUnavailable) as e:
            storage.get_all_trials(study._study_id)  # a pooled connection, whose server no longer answers
    finally:
        private_postgres.thaw()
    (line,) = str(e.value).splitlines()
    assert line.startswith("the database did not answer for 6 s (storage ")
    assert len(storage.get_all_trials(study._study_id)) == 1  # thawed, the same storage works again


@pytest.mark.timeout(300)
def test_a_stop_cuts_the_attempt_already_waiting_on_a_frozen_server(private_postgres, monkeypatch):
    """A stop signal that lands while an attempt waits on the socket (its own deadline 60 s away) has it cut
    within the stop's patience: impatient() hurries the thread's attempt under way, from the signal's handler."""
    storage, study = _one_trial_study(private_postgres.url, "hurried", monkeypatch, call_s=60, connect_s=2)
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: impatient(1.0))  # as run_worker's stop does
    private_postgres.freeze()
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGUSR1)).start()  # lands inside the waiting attempt
    try:
        waited = _seconds_until_unavailable(storage, study)
    finally:
        signal.signal(signal.SIGUSR1, previous)
        impatient(None)
        private_postgres.thaw()
    assert waited < 30, f"the attempt ran to its own deadline: {waited:.1f} s"  # hang guard; expected ~3 s


@pytest.mark.timeout(300)
def test_a_stop_opens_a_new_connection_within_its_patience_not_the_connect_timeout(private_postgres, monkeypatch):
    """A stop's first write on a frozen server: the pool's ping of its pooled connection is cut, and the pool opens
    a new one at once, in the same attempt. That connection waits what is left of the attempt's deadline (the stop's
    2 s patience), not the 30 s connect timeout."""
    storage, study = _one_trial_study(private_postgres.url, "reconnect", monkeypatch, call_s=2, connect_s=30)
    private_postgres.freeze()
    impatient(2.0)  # as run_worker's stop does
    try:
        waited = _seconds_until_unavailable(storage, study)
    finally:
        impatient(None)
        private_postgres.thaw()
    assert waited < 15, f"the new connection waited the connect timeout: {waited:.1f} s"  # expected ~4 s; was 32 s


# Timeouts of the `hpo run` processes the frozen-server stop tests signal: 2 s deadlines, 1 s heartbeats and a 3 s
# grace, so their stop and the retry of their trials take seconds.
FROZEN_STOP_KNOBS = {
    "HPO_CALL_TIMEOUT_S": "2",
    "HPO_CONNECT_TIMEOUT_S": "2",
    "HPO_HEARTBEAT_S": "1",
    "HPO_GRACE_S": "3",
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "signum, workers, twice",
    [(signal.SIGTERM, 1, True), (signal.SIGINT, 2, True), (signal.SIGTERM, 2, False)],
    ids=["second SIGTERM", "second SIGINT to --workers 2", "one SIGTERM to --workers 2"],
)
def test_a_stop_while_the_server_is_frozen_ends_with_the_trials_left_for_a_retry(
    signum, workers, twice, private_postgres, tiny_spec, tmp_path, monkeypatch
):
    """A second signal stops at once; one signal stops once the writes of the stop give up (5 s each). Either
    way the last line says the trials could not be marked FAIL, and they are failed and retried after the grace."""
    tiny_spec.write_text(tiny_spec.read_text().replace("epochs = 2", "epochs = 500"))
    url = private_postgres.url
    for knob, seconds in FROZEN_STOP_KNOBS.items():
        monkeypatch.setenv(knob, seconds)
    cmd = [HPO, "run", "--study", str(tiny_spec), "--storage", url, "--json", "--workers", str(workers)]
    restore = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731 (see the SIGINT test above)
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=restore
    )
    try:
        wait_for(lambda: _reporting(url, "tiny") == workers, every=0.3)
        private_postgres.freeze()
        proc.send_signal(signum)  # the stop begins: its writes wait on the database (5 s each, then retries)
        if twice:
            time.sleep(1.0)
            proc.send_signal(signum)
        # Hang guards. Before, a second signal took 27 s with one worker; the parent of two did not exit in minutes
        # after one signal or two (its writes retried for the 2-minute outage limit).
        _, err = proc.communicate(timeout=30 if twice else 120)
    finally:
        proc.kill()
        private_postgres.thaw()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    how = "interrupted again" if twice else "interrupted; the database does not answer"
    running, it = ("the running trial", "it is") if workers == 1 else (f"the {workers} running trials", "they are")
    assert err.strip().splitlines()[-1] == (
        f"stopped: {how}: {running} could not be marked FAIL; "
        f"after HPO_GRACE_S (3 s) without a heartbeat, {it} failed and re-run by another worker"
    )
    # What the line says: another process fails the trials once their heartbeats are 3 s old, and re-queues them.
    study = optuna.load_study(study_name="tiny", storage=open_storage(url))
    left = study.get_trials(states=(TrialState.RUNNING,))
    assert len(left) == workers
    wait_for(lambda: fail_stale(study, OrphanWatch()) or len(_requeued(url, "tiny")) == workers, timeout=60)
    assert sorted(map(str, (t.params for t in _requeued(url, "tiny")))) == sorted(map(str, (t.params for t in left)))


@pytest.mark.timeout(300)
def test_a_signal_that_lands_in_a_trials_storage_write_stops_within_the_stops_patience(
    private_postgres, tiny_spec, tmp_path, monkeypatch
):
    """The database freezes first, so the trial's epoch write is in its retries when SIGTERM comes: that write
    gives up under the stop's patience (5 s), not the 2-minute outage limit it began with, and the stop ends in
    its one line, exit 130. Before, the write retried for 2 minutes and Optuna's `finally` then ended the run in
    a traceback, exit 1."""
    tiny_spec.write_text(tiny_spec.read_text().replace("epochs = 2", "epochs = 500"))
    url = private_postgres.url
    for knob, seconds in FROZEN_STOP_KNOBS.items():
        monkeypatch.setenv(knob, seconds)
    cmd = [HPO, "run", "--study", str(tiny_spec), "--storage", url, "--json"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: any(t.intermediate_values for t in _running(url, "tiny")), every=0.3)
        private_postgres.freeze()
        for line in proc.stderr:  # the next epoch's write meets the frozen server and begins to retry
            if line.startswith("warning: storage set_trial_user_attrs failed"):
                break
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)  # hang guard: before, 2 minutes
    finally:
        proc.kill()
        private_postgres.thaw()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        "stopped: interrupted; the database does not answer: the running trial could not be marked FAIL; "
        "after HPO_GRACE_S (3 s) without a heartbeat, it is failed and re-run by another worker"
    )


def test_workers_ride_out_a_database_restart(private_postgres):
    url = private_postgres.url
    optuna.create_study(study_name="restart", storage=open_storage(url))
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=probe_main, args=(url, "restart", 40, 4, 0.05)) for _ in range(2)]
    for w in workers:
        w.start()
    wait_for(lambda: len(optuna.load_study(study_name="restart", storage=url).trials) >= 5)
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


def test_a_full_disk_is_one_line_at_once_not_minutes_of_retries(tiny_spec, tmp_path):
    from typer.testing import CliRunner

    from hpo.cli import app

    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    spec = tiny_spec.read_text().replace("n_trials = 3", "n_trials = 50")
    tiny_spec.write_text(spec)
    created = CliRunner().invoke(app, ["run", "--study", str(tiny_spec), "--storage", url, "--create-only"])
    assert created.exit_code == 0, created.output

    def cap(dbapi_connection, record) -> None:
        # SQLite refuses to grow a database past max_page_count with SQLITE_FULL, as it does on a full disk
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages + 4}")

    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "connect", cap)
    try:
        result = CliRunner().invoke(app, ["run", "--study", str(tiny_spec), "--storage", url])
    finally:
        sqlalchemy.event.remove(sqlalchemy.engine.Engine, "connect", cap)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "retrying" not in result.stderr
    assert len(errors) == 1 and "disk is full" in errors[0] and "no further trial was started" in errors[0]
    states = [t.state for t in optuna.load_study(study_name="tiny", storage=url).trials]
    assert states.count(TrialState.FAIL) == 1 and states[-1] == TrialState.FAIL  # before: the budget burnt as FAILs
