"""deploy/slurm on a real Slurm cluster (a private single-node one, tests/slurmcluster.py): the create job, then an
array of 3 `hpo run` workers on one study in the shared PostgreSQL, submitted with the README's sbatch commands; one
task is cancelled with scancel in the middle of a trial. One array run serves every test of the module."""

from __future__ import annotations

import os
import re
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from hpo.storage.guard import INTERRUPTED, budget_used
from tests.conftest import service_unavailable, wait_for
from tests.slurmcluster import PrivateSlurm

ROOT = Path(__file__).resolve().parents[2]
SLURM = ROOT / "deploy" / "slurm"
TASKS = 3
N_TRIALS = 6
EPOCHS = 6
pytestmark = pytest.mark.slow

# studies/quick.toml, shrunk so that a trial takes seconds: the same objective, blend and search space.
SHRINK = {
    r"^n_trials = \d+": f"n_trials = {N_TRIALS}\nfigure_scenes = 8",
    r"^n_train = \d+": "n_train = 256",
    r"^n_val = \d+": "n_val = 64",
    r"^epochs = \d+": f"epochs = {EPOCHS}",
    r"^n_scenes = 256\b": "n_scenes = 8",  # [localisation]
    r"^n_scenes = 4096\b": "n_scenes = 128",  # [calibration]
    r"^every = 5\b": "every = 3",  # both
}


@pytest.fixture(scope="module")
def cluster():
    why = PrivateSlurm.available()
    if why is not None:
        service_unavailable("Slurm", why)
    slurm = PrivateSlurm()
    try:
        yield slurm.start()
    finally:
        slurm.stop()  # every job, slurmd, slurmctld and munged, even when start() failed half-way


@dataclass(frozen=True)
class ArrayRun:
    trials: list[FrozenTrial]
    array_job: int  # the array's job id
    cancelled_trial: int  # the number of the trial whose task was cancelled
    cancelled_task: int  # that task's SLURM_ARRAY_TASK_ID
    logs: dict[int, str]  # each task's output, by task id


def _spec(folder: Path) -> Path:
    text = (ROOT / "studies" / "quick.toml").read_text()
    for pattern, value in SHRINK.items():
        text, n = re.subn(pattern, value, text, flags=re.M)
        assert n, f"studies/quick.toml no longer has {pattern!r}: update SHRINK"
    path = folder / "slurmtiny.toml"
    path.write_text(text)
    return path


def _trials(url: str, name: str) -> list[FrozenTrial]:
    try:
        return optuna.load_study(study_name=name, storage=url).trials
    except KeyError:  # not created yet
        return []


@pytest.fixture(scope="module")
def array_run(postgres_url, cluster, tmp_path_factory) -> ArrayRun:  # no cluster without a database
    folder = tmp_path_factory.mktemp("slurm-study")
    name = f"slurm-{uuid.uuid4().hex[:12]}"  # the shared database outlives this run
    env = cluster.env()
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",  # the venv's hpo, as an activated shell has
        HPO_STORAGE=postgres_url,
        HPO_ARTIFACTS=str(folder / "artifacts"),  # one folder every task writes: the shared filesystem
    )
    args = [str(_spec(folder)), "--study-name", name]

    def sbatch(*options: str) -> int:
        done = cluster.run("sbatch", "--parsable", *options, cwd=folder, env=env)
        return int(done.stdout.strip().split(";")[0])

    try:
        create = sbatch(str(SLURM / "hpo-create.sbatch"), *args)
        array = sbatch(
            f"--dependency=afterok:{create}", "--kill-on-invalid-dep=yes", f"--array=1-{TASKS}", "--cpus-per-task=1",
            str(SLURM / "hpo-worker.sbatch"), *args,
        )  # fmt: skip

        def mid_trial() -> FrozenTrial | None:  # a trial past its first epoch and before its last
            running = [t for t in _trials(postgres_url, name) if t.state == TrialState.RUNNING]
            return next((t for t in running if 1 <= len(t.user_attrs.get("eigengap_health", ())) < EPOCHS), None)

        victim = wait_for(mid_trial, 600.0, 0.2, "a trial in its middle epochs")
        task = victim.user_attrs["slurm_array_task_id"]
        cluster.run("scancel", f"{array}_{task}", env=env)  # the task's own job id is the array's for one of them

        def ended() -> bool:
            return not cluster.run("squeue", "-h", "-j", str(array), env=env).stdout.strip()

        wait_for(ended, 600.0, 0.2, "the array to end")
        logs = {t: (folder / f"hpo-worker-{array}_{t}.out").read_text() for t in range(1, TASKS + 1)}
        yield ArrayRun(_trials(postgres_url, name), array, victim.number, task, logs)
    finally:
        try:
            optuna.delete_study(study_name=name, storage=postgres_url)
        except KeyError:
            pass  # never created


def _done(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]


def test_the_array_uses_the_budget_exactly(array_run):
    assert len(_done(array_run.trials)) == N_TRIALS and budget_used(array_run.trials) == N_TRIALS


def test_no_trial_is_left_running_or_queued(array_run):
    assert [t.number for t in array_run.trials if t.state in (TrialState.RUNNING, TrialState.WAITING)] == []


def test_no_two_trials_share_params(array_run):
    params = [tuple(sorted(t.params.items())) for t in _done(array_run.trials)]
    assert len(set(params)) == len(params)


def test_the_cancelled_tasks_trial_is_failed_as_interrupted(array_run):
    (trial,) = [t for t in array_run.trials if t.number == array_run.cancelled_trial]
    assert trial.state == TrialState.FAIL and trial.user_attrs["fail_reason"] == INTERRUPTED


def test_the_cancelled_task_stopped_hpo_run_at_a_safe_point(array_run):
    log = array_run.logs[array_run.cancelled_task]
    assert "stopped: interrupted: the running trial was marked FAIL" in log, log  # not killed: it wrote its FAIL


def test_the_interrupted_trial_is_re_run_by_another_task(array_run):
    (interrupted,) = [t for t in array_run.trials if t.number == array_run.cancelled_trial]
    (retry,) = [t for t in array_run.trials if t.system_attrs.get("failed_trial") == interrupted.number]
    assert retry.state in (TrialState.COMPLETE, TrialState.PRUNED) and retry.params == interrupted.params
    assert retry.user_attrs["slurm_array_task_id"] != array_run.cancelled_task


def test_each_trial_records_its_job_array_and_task(array_run):
    started = [t for t in array_run.trials if t.state != TrialState.WAITING]
    assert {t.user_attrs["slurm_array_job_id"] for t in started} == {array_run.array_job}
    assert {t.user_attrs["slurm_array_task_id"] for t in started} <= set(range(1, TASKS + 1))
    jobs = {t.user_attrs["slurm_array_task_id"]: t.user_attrs["slurm_job_id"] for t in started}
    assert len(set(jobs.values())) == len(jobs)  # each task is a job of its own


def test_each_task_samples_with_a_seed_of_its_own(array_run):
    seeds = {(t.user_attrs["slurm_array_task_id"], t.user_attrs["sampler_seed"]) for t in _done(array_run.trials)}
    assert len({seed for _, seed in seeds}) == len(seeds) == len({task for task, _ in seeds})


def test_cpus_per_task_are_the_torch_threads(array_run):
    assert {t.user_attrs["threads"] for t in _done(array_run.trials)} == {1}  # --cpus-per-task=1; the spec says 2
