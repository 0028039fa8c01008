"""Best-so-far checkpoints: who uploads, where they go, and `hpo best --download`."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState, create_trial
from typer.testing import CliRunner

from core.train import load_checkpoint
from hpo.cli import app
from hpo.run.runner import run_worker
from hpo.storage import open_storage
from hpo.storage.artifacts import ENV, checkpoint_id, open_store, resolve_dir
from hpo.study.create import create_or_join
from hpo.study.objective import Objective
from hpo.study.ranking import beats_best, best_trial
from hpo.study.spec import load_spec


def run(spec_path, tmp_path, n_trials):
    spec = load_spec(spec_path)
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    study, _ = create_or_join(spec, open_storage(url))
    store = open_store(tmp_path / "art")
    run_worker(spec, study, n_trials, objective=Objective(spec, artifacts=store))
    return url, study


def study_with(*trials: optuna.trial.FrozenTrial, directions=("minimize",)) -> optuna.Study:
    study = optuna.create_study(directions=list(directions))
    for t in trials:
        study.add_trial(t)
    return study


def test_only_trials_that_beat_the_best_so_far_upload_a_checkpoint(tiny_spec, tmp_path):
    _, study = run(tiny_spec, tmp_path, 4)
    best_before = float("inf")
    uploaded = 0
    for t in study.trials:  # the tiny spec's health threshold is 0, so every trial is feasible
        has = checkpoint_id(study, t) is not None
        assert has == (t.values[0] < best_before), t.number
        uploaded += has
        best_before = min(best_before, t.values[0])
    assert len(list((tmp_path / "art").iterdir())) == uploaded


def test_nan_pruned_trials_upload_nothing(nan_spec, tmp_path):
    _, study = run(nan_spec, tmp_path, 1)
    assert study.trials[0].state == TrialState.PRUNED
    assert list((tmp_path / "art").iterdir()) == []


def test_an_infeasible_trial_never_beats_a_feasible_one():
    study = study_with(create_trial(value=-1.0, constraints={"eigengap_health": -0.1}))
    assert not beats_best(study, [-5.0], feasible=False)
    assert beats_best(study, [-1.5], feasible=True)
    assert not beats_best(study, [-0.5], feasible=True)


def test_multi_objective_uploads_when_no_completed_trial_dominates():
    study = study_with(create_trial(values=[-2.0, 0.5]), directions=("minimize", "maximize"))
    assert beats_best(study, [-1.0, 0.9])  # worse NMSE, better health: on the front
    assert not beats_best(study, [-1.0, 0.4])  # worse in both


def test_artifact_dir_comes_from_the_option_then_the_environment_then_the_default(monkeypatch):
    monkeypatch.setenv(ENV, "/from/env")
    assert str(resolve_dir("/from/flag")) == "/from/flag"
    assert str(resolve_dir()) == "/from/env"
    monkeypatch.delenv(ENV)
    assert str(resolve_dir()) == "artifacts"


def test_best_download_writes_a_loadable_checkpoint_of_the_best_trial(tiny_spec, tmp_path):
    url, study = run(tiny_spec, tmp_path, 2)
    target = tmp_path / "best.pt"
    args = ["best", "--study", "tiny", "--storage", url, "--artifacts", str(tmp_path / "art"), "--download"]
    result = CliRunner().invoke(app, [*args, str(target)])
    assert result.exit_code == 0, result.output
    _, _, metrics = load_checkpoint(target)
    assert metrics["nmse_db"] == pytest.approx(best_trial(study).values[0])
    again = CliRunner().invoke(app, [*args, str(target)])  # never overwrites
    assert again.exit_code == 2 and "already exists" in again.output


def test_best_download_names_a_wrong_artifact_directory(tiny_spec, tmp_path):
    url, _ = run(tiny_spec, tmp_path, 1)
    args = ["best", "--study", "tiny", "--storage", url, "--artifacts", str(tmp_path / "elsewhere")]
    result = CliRunner().invoke(app, [*args, "--download", str(tmp_path / "best.pt")])
    assert result.exit_code == 2 and "elsewhere" in result.output
    assert not (tmp_path / "best.pt").exists()


def test_best_download_from_a_store_without_the_checkpoint_names_it_and_makes_no_out_folder(
    tiny_spec, tmp_path, monkeypatch
):
    url, _ = run(tiny_spec, tmp_path, 1)
    (tmp_path / "other").mkdir()  # another study's store, say: it exists, the checkpoint is not in it
    monkeypatch.chdir(tmp_path)
    args = ["best", "--study", "tiny", "--storage", url, "--artifacts", str(tmp_path / "other")]
    result = CliRunner().invoke(app, [*args, "--download", "out/best.pt"])
    assert result.exit_code == 2 and "is not in" in result.stderr and "other" in result.stderr
    assert not (tmp_path / "out").exists()
