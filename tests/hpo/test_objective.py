"""The objective: per-epoch reports and health, the health constraint, provenance, NaN pruning, failures."""

from __future__ import annotations

import optuna
import pytest
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from hpo.objective import NONFINITE
from hpo.runner import create_or_join, run_worker
from hpo.spec import load_spec
from hpo.storage import open_storage


def run(spec_path, tmp_path, n_trials, enqueue=()):
    spec = load_spec(spec_path)
    study, _ = create_or_join(spec, open_storage(f"sqlite:///{tmp_path / 'hpo.db'}"))
    for params in enqueue:
        study.enqueue_trial(params)
    run_worker(spec, study, n_trials)
    return spec, study


def test_trial_reports_every_epoch_and_records_health_constraint_and_provenance(tiny_spec, tmp_path):
    spec, study = run(tiny_spec, tmp_path, 1)
    (t,) = study.trials
    assert t.state == TrialState.COMPLETE
    assert len(t.intermediate_values) == spec.train.epochs
    health = t.user_attrs["eigengap_health"]
    assert len(health) == spec.train.epochs and health[-1] == t.user_attrs["eigengap_health_final"]
    assert t.constraints == {"eigengap_health": spec.study.health_threshold - health[-1]}
    assert t.user_attrs["spec_hash"] == spec.digest and t.user_attrs["seed"] == spec.data.seed
    assert t.user_attrs["device"] == "cpu" and "optuna" in t.user_attrs["versions"]
    assert t.values[0] == t.user_attrs["nmse_db"]


def test_nonfinite_gradient_prunes_with_reason_and_the_study_goes_on(nan_spec, tmp_path):
    _, study = run(nan_spec, tmp_path, 2)
    assert [t.state for t in study.trials] == [TrialState.PRUNED, TrialState.PRUNED]
    for t in study.trials:
        assert t.user_attrs["prune_reason"] == NONFINITE
        assert isinstance(t.user_attrs["epoch"], int) and isinstance(t.user_attrs["step"], int)
        assert isinstance(t.user_attrs["parameter"], str) and t.user_attrs["parameter"]


def test_failed_trial_records_its_reason_and_the_worker_goes_on(tiny_spec, tmp_path):
    # Every width and every head count passes the spec's checks, but width 36 with 8 heads is invalid.
    space = "[search.width]\ntype = 'categorical'\nchoices = [32, 36]\n[search.heads]\ntype = 'categorical'\n"
    text = tiny_spec.read_text().replace("width = 32\n", "")
    tiny_spec.write_text(text.replace("[sampler]", space + "choices = [4, 8]\n[sampler]"))
    _, study = run(tiny_spec, tmp_path, 2, enqueue=[{"width": 36, "heads": 8}, {"width": 32, "heads": 4}])
    failed, ok = study.trials
    assert failed.state == TrialState.FAIL and "heads" in failed.user_attrs["fail_reason"]
    assert ok.state == TrialState.COMPLETE


def test_multi_objective_returns_nmse_and_health_without_intermediate_reports(tiny_spec, tmp_path):
    tiny_spec.write_text(tiny_spec.read_text().replace("[study]\n", "[study]\nobjective = 'multi'\n"))
    _, study = run(tiny_spec, tmp_path, 1)
    (t,) = study.trials
    assert [d.name for d in study.directions] == ["MINIMIZE", "MAXIMIZE"]
    assert t.state == TrialState.COMPLETE and t.intermediate_values == {}
    assert t.values == [t.user_attrs["nmse_db"], t.user_attrs["eigengap_health_final"]]
    assert optuna.load_study(study_name=study.study_name, storage=study._storage).best_trials


def test_grouped_attr_writes_read_back_with_stock_optuna(tiny_spec, storage_url):
    # The objective writes provenance, each epoch's health + report, and the final metrics one group per
    # transaction (GuardedStorage.set_trial_user_attrs); stock Optuna must read back every key and step.
    spec = load_spec(tiny_spec)
    study, _ = create_or_join(spec, open_storage(storage_url))
    run_worker(spec, study, 1)
    (t,) = optuna.load_study(study_name=study.study_name, storage=storage_url).trials
    assert t.state == TrialState.COMPLETE and len(t.intermediate_values) == spec.train.epochs
    assert len(t.user_attrs["eigengap_health"]) == spec.train.epochs
    provenance = {"seed", "val_seed", "spec", "spec_hash", "device", "threads", "versions"}
    final = {"nmse_db", "nmse_samp_db", "gain_db", "eigengap_health_final", "mean_gap", "train_s"}
    assert provenance | final <= set(t.user_attrs)


def test_grouped_write_upserts_and_refuses_a_finished_trial(storage_url):
    storage = open_storage(storage_url, heartbeat=False)  # study.ask without optimize: no heartbeat thread
    study = optuna.create_study(study_name="g", storage=storage)
    trial = study.ask()
    storage.set_trial_user_attrs(trial._trial_id, {"a": 1, "b": [1.0]}, report=(0, 2.5))
    storage.set_trial_user_attrs(trial._trial_id, {"b": [1.0, 2.0], "c": "x"}, report=(0, 3.5))
    study.tell(trial, 1.0)
    (t,) = optuna.load_study(study_name="g", storage=storage_url).trials
    assert t.user_attrs == {"a": 1, "b": [1.0, 2.0], "c": "x"} and t.intermediate_values == {0: 3.5}
    with pytest.raises(UpdateFinishedTrialError):
        storage.set_trial_user_attrs(trial._trial_id, {"a": 2})
