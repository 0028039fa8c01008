"""What hpo reads from a Slurm job's environment: its ids for each trial's provenance, and its CPUs per task for
the torch threads (a single `hpo run`, or each of its `--workers`)."""

from __future__ import annotations

import pytest

from core.errors import CovblendError
from hpo import batch
from hpo.provenance import placement
from hpo.run.launch import prepare
from hpo.run.workers import check_workers, threads_per_worker

SLURM = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_CPUS_PER_TASK")


@pytest.fixture(autouse=True)
def _outside_slurm(monkeypatch):
    """Each test starts outside any job, whatever runs the suite."""
    for name in SLURM:
        monkeypatch.delenv(name, raising=False)


def test_an_array_task_is_named_by_its_job_array_and_task_ids(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "1042")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "1040")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "2")
    assert batch.job() == {"slurm_job_id": 1042, "slurm_array_job_id": 1040, "slurm_array_task_id": 2}


def test_a_trial_records_the_job_it_ran_in(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    assert placement("cpu") == {"device": "cpu", "slurm_job_id": 77}


def test_outside_slurm_a_trial_records_no_job():
    assert placement("cpu") == {"device": "cpu"}


def test_a_task_trains_with_its_cpus_as_threads(monkeypatch, tiny_spec, tmp_path):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "3")  # the tiny spec says threads = 1
    launch = prepare(str(tiny_spec), f"sqlite:///{tmp_path / 'hpo.db'}")
    assert launch.spec.train.threads == 3


def test_workers_in_a_task_share_its_cpus_not_the_hosts(monkeypatch):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "6")
    assert threads_per_worker(2) == 3


def test_a_malformed_cpus_per_task_is_one_line_naming_it(monkeypatch):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "2(x3)")
    with pytest.raises(CovblendError, match=r"SLURM_CPUS_PER_TASK must be a number of CPUs >= 1, got .*'2\(x3\)'"):
        check_workers(1)
