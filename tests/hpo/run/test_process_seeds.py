"""Every process that samples a study has its own sampler seed (DESIGN §7): separate `hpo run` processes and
`--workers` children never propose the same params, and a lone `hpo run --seed S` on a new study stays
reproducible."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from hpo.cli import app
from hpo.run.runner import run_worker
from hpo.storage import open_storage
from hpo.study.create import create_or_join
from hpo.study.objective import Objective
from hpo.study.seeds import process_seed
from hpo.study.spec import load_spec

HPO = str(Path(sys.executable).parent / "hpo")


def test_the_first_process_keeps_the_seed_and_the_others_derive_distinct_ones():
    seeds = [process_seed(7, index) for index in range(1000)]
    assert seeds[0] == 7
    assert len(set(seeds)) == 1000
    assert seeds == [process_seed(7, index) for index in range(1000)]  # a function of (seed, index) only
    assert all(0 <= s < 2**32 for s in seeds)


def test_processes_claim_distinct_numbers_in_a_study(storage_url):
    storage = open_storage(storage_url)
    study = optuna.create_study(study_name="s", storage=storage)
    other = optuna.create_study(study_name="t", storage=storage)
    claims = [storage.claim_process(study._study_id) for _ in range(3)]
    assert claims == [0, 1, 2]
    assert storage.claim_process(other._study_id) == 0  # numbered per study


def test_a_lone_run_with_a_seed_repeats_its_params_and_records_its_seed(tiny_spec, tmp_path):
    spec = load_spec(tiny_spec)
    params = []
    for name in ("a", "b"):
        study, _ = create_or_join(spec, open_storage(f"sqlite:///{tmp_path / name}.db"), seed=5)
        run_worker(spec, study, 2, seed=5, objective=Objective(spec))
        params.append([t.params for t in study.trials])
        assert {t.user_attrs["sampler_seed"] for t in study.trials} == {5}
    assert params[0] == params[1]


def test_a_second_run_on_the_same_study_samples_with_another_seed(tiny_spec, tmp_path):
    spec, url = load_spec(tiny_spec), f"sqlite:///{tmp_path / 'hpo.db'}"
    for budget in (1, 2):  # the second run resumes the study: before, it replayed the first run's params
        study, _ = create_or_join(spec, open_storage(url))
        run_worker(spec, study, budget, objective=Objective(spec))
    first, second = optuna.load_study(study_name="tiny", storage=url).trials
    assert first.user_attrs["sampler_seed"] == spec.sampler.seed
    assert second.user_attrs["sampler_seed"] != spec.sampler.seed
    assert first.params != second.params


def _duplicates(trials) -> int:
    seen = [tuple(sorted(t.params.items())) for t in trials]
    return len(seen) - len(set(seen))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_separate_processes_never_sample_the_same_params(tiny_spec, fresh_postgres_url, tmp_path):
    """Three `hpo run` processes, one of them with two workers, as compose replicas or other hosts would be."""
    args = ["run", "--study", str(tiny_spec), "--storage", fresh_postgres_url, "--json"]
    created = CliRunner().invoke(app, [*args, "--create-only"])  # as compose's create service does, in-process here
    assert created.exit_code == 0, created.output
    base = [HPO, *args]
    runs = [[*base, "--n-trials", "8"]] * 2 + [[*base, "--n-trials", "8", "--workers", "2"]]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for cmd in runs]
    for proc in procs:
        _, stderr = proc.communicate(timeout=840)
        assert proc.returncode == 0, stderr.decode()
    trials = optuna.load_study(study_name="tiny", storage=fresh_postgres_url).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 8  # the budget, exactly
    assert _duplicates(trials) == 0
    by_process = {t.user_attrs["sampler_process"]: t.user_attrs["sampler_seed"] for t in trials}
    assert len(set(by_process.values())) == len(by_process)  # one seed per process
