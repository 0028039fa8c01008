"""The objective: per-epoch reports and health, the health constraint, provenance, NaN pruning, failures, and the
three objective modes (nmse, localisation, multi) with their values, metric names and pruning."""

from __future__ import annotations

import optuna
import pytest
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from core.localisation import keys as localisation_keys
from hpo.run.runner import run_worker
from hpo.storage import open_storage
from hpo.study.create import create_or_join
from hpo.study.objective import NONFINITE, Objective
from hpo.study.pruners import CURVE_ATTR
from hpo.study.spec import load_spec


def run(spec_path, tmp_path, n_trials, enqueue=()):
    spec = load_spec(spec_path)
    study, _ = create_or_join(spec, open_storage(f"sqlite:///{tmp_path / 'hpo.db'}"))
    for params in enqueue:
        study.enqueue_trial(params)
    run_worker(spec, study, n_trials, objective=Objective(spec))
    return spec, study


def test_trial_reports_every_epoch_and_records_health_constraint_and_provenance(tiny_spec, tmp_path):
    spec, study = run(tiny_spec, tmp_path, 1)
    (t,) = study.trials
    assert t.state == TrialState.COMPLETE
    assert len(t.intermediate_values) == spec.train.epochs
    health, final = t.user_attrs["eigengap_health"], t.user_attrs["eigengap_health_final"]
    assert len(health) == spec.train.epochs and health[-1] == round(final, 3)
    assert t.constraints == {"eigengap_health": spec.study.health_threshold - final}
    assert t.user_attrs["feasible"] is (final >= spec.study.health_threshold)
    assert t.user_attrs["spec_hash"] == spec.digest and t.user_attrs["seed"] == spec.train.seed
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


def set_objective(spec_path, objective: str, extra: str = "") -> None:
    spec_path.write_text(spec_path.read_text().replace("[study]\n", f"[study]\nobjective = '{objective}'\n{extra}"))


def test_single_is_read_as_nmse_and_names_its_metric(tiny_spec, tmp_path):
    set_objective(tiny_spec, "single")
    _, study = run(tiny_spec, tmp_path, 1)
    assert study.metric_names == ["val_nmse_db"] and study.user_attrs["objective"] == "nmse"
    assert study.trials[0].values[0] == study.trials[0].user_attrs["nmse_db"]


def test_localisation_maximises_the_gain_over_classic_on_the_epochs_that_measure_it(tiny_spec, tmp_path):
    set_objective(tiny_spec, "localisation")
    tiny_spec.write_text(tiny_spec.read_text().replace("[train]\nepochs = 2", "[train]\nepochs = 3"))
    tiny_spec.write_text(tiny_spec.read_text().replace("[localisation]\n", "[localisation]\nevery = 2\n"))
    spec, study = run(tiny_spec, tmp_path, 1)
    (t,) = study.trials
    assert study.metric_names == ["loc_gain_db"] and [d.name for d in study.directions] == ["MAXIMIZE"]
    assert sorted(t.intermediate_values) == [1, 2]  # every 2nd epoch, and the last
    assert t.state == TrialState.COMPLETE and t.values[0] == t.user_attrs["loc_gain_db"] == t.intermediate_values[2]
    assert set(localisation_keys()) <= set(t.user_attrs) and "eigengap_health" in t.constraints


def test_multi_objective_returns_nmse_and_the_gain_over_classic_with_a_curve_for_the_pruner(tiny_spec, tmp_path):
    set_objective(tiny_spec, "multi")
    _, study = run(tiny_spec, tmp_path, 1)
    (t,) = study.trials
    assert [d.name for d in study.directions] == ["MINIMIZE", "MAXIMIZE"]
    assert study.metric_names == ["val_nmse_db", "loc_gain_db"]
    assert t.state == TrialState.COMPLETE and t.intermediate_values == {}
    assert t.values == [t.user_attrs["nmse_db"], t.user_attrs["loc_gain_db"]]
    assert t.user_attrs[CURVE_ATTR]["1"] == [round(v, 4) for v in t.values]  # epoch 1: the last, and measured
    assert "eigengap_health" in t.constraints
    assert optuna.load_study(study_name=study.study_name, storage=study._storage).best_trials


@pytest.mark.parametrize("peer, state", [(-1e3, TrialState.PRUNED), (1e3, TrialState.COMPLETE)])
def test_multi_objective_trials_are_pruned_by_the_study_pruner(tiny_spec, tmp_path, peer, state):
    # One earlier trial whose curve is far better (or worse) than anything a tiny model reaches; with
    # dominated_fraction 0 a trial it dominates at the first rung (epoch 0) is stopped there.
    set_objective(tiny_spec, "multi")
    pruner = "[pruner]\nname = 'mo-asha'\nn_startup_trials = 1\ndominated_fraction = 0.0\n"
    text = tiny_spec.read_text().replace('[pruner]\nname = "none"\n', pruner)
    tiny_spec.write_text(text.replace("[localisation]\n", "[localisation]\nevery = 1\n"))
    spec = load_spec(tiny_spec)
    study, _ = create_or_join(spec, open_storage(f"sqlite:///{tmp_path / 'hpo.db'}"))
    curve = {str(epoch): [peer, -peer] for epoch in range(spec.train.epochs)}  # NMSE minimised, gain maximised
    study.add_trial(optuna.trial.create_trial(values=[peer, -peer], user_attrs={CURVE_ATTR: curve}))
    run_worker(spec, study, 2, objective=Objective(spec))
    t = study.trials[-1]
    assert t.state == state
    if state == TrialState.PRUNED:
        assert t.user_attrs["prune_reason"] == "pruner" and t.user_attrs["epoch"] == 0
        assert list(t.user_attrs[CURVE_ATTR]) == ["0"]


@pytest.mark.parametrize("epochs, state", [(2, TrialState.PRUNED), (1, TrialState.COMPLETE)])
def test_a_single_objective_trial_is_pruned_before_its_last_epoch_and_never_at_it(tiny_spec, tmp_path, epochs, state):
    # An earlier trial far better at every epoch: the median pruner stops a new trial at epoch 0 unless epoch 0 is
    # its last, where its training is done and its value as real as a complete trial's.
    set_objective(tiny_spec, "nmse")
    pruner = "[pruner]\nname = 'median'\nn_startup_trials = 1\nn_warmup_steps = 0\n"
    text = tiny_spec.read_text().replace('[pruner]\nname = "none"\n', pruner)
    tiny_spec.write_text(text.replace("epochs = 2\n", f"epochs = {epochs}\n"))
    spec = load_spec(tiny_spec)
    study, _ = create_or_join(spec, open_storage(f"sqlite:///{tmp_path / 'hpo.db'}"))
    study.add_trial(optuna.trial.create_trial(value=-1e3, intermediate_values={0: -1e3, 1: -1e3}))
    run_worker(spec, study, 2, objective=Objective(spec))
    t = study.trials[-1]
    assert t.state == state
    if state == TrialState.PRUNED:
        assert t.user_attrs["prune_reason"] == "pruner" and t.user_attrs["epoch"] == 0


def test_grouped_attr_writes_read_back_with_stock_optuna(tiny_spec, storage_url):
    # The objective writes provenance, each epoch's health + report, and the final metrics one group per
    # transaction (GuardedStorage.set_trial_user_attrs); stock Optuna must read back every key and step.
    spec = load_spec(tiny_spec)
    study, _ = create_or_join(spec, open_storage(storage_url))
    run_worker(spec, study, 1, objective=Objective(spec))
    (t,) = optuna.load_study(study_name=study.study_name, storage=storage_url).trials
    assert t.state == TrialState.COMPLETE and len(t.intermediate_values) == spec.train.epochs
    assert len(t.user_attrs["eigengap_health"]) == spec.train.epochs
    provenance = {"seed", "val_seed", "spec", "spec_hash", "device", "threads", "versions"}
    final = {"nmse_db", "nmse_samp_db", "gain_db", "eigengap_health_final", "feasible", "mean_gap", "train_s"}
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


def test_a_localisation_study_runs_end_to_end(tiny_spec, storage_url):
    set_objective(tiny_spec, "localisation")
    tiny_spec.write_text(tiny_spec.read_text().replace("[localisation]\n", "[localisation]\nevery = 1\n"))
    spec = load_spec(tiny_spec)
    study, _ = create_or_join(spec, open_storage(storage_url))
    run_worker(spec, study, 2, objective=Objective(spec))
    stored = optuna.load_study(study_name=study.study_name, storage=storage_url)  # stock Optuna reads it back
    assert stored.metric_names == ["loc_gain_db"] and stored.user_attrs["objective"] == "localisation"
    assert [t.state for t in stored.trials] == [TrialState.COMPLETE] * 2
    for t in stored.trials:
        assert sorted(t.intermediate_values) == list(range(spec.train.epochs))
        assert t.values[0] == t.intermediate_values[spec.train.epochs - 1]
        assert t.user_attrs["classic_gross_rate"] == stored.trials[0].user_attrs["classic_gross_rate"]
    assert stored.best_trial.number in (0, 1)
