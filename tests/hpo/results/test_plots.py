"""Study figures: the prune-reason breakdown and the best model's RMSE vs SNR, saved where the dashboard reads."""

from __future__ import annotations

import json

import optuna
import pytest
from optuna.artifacts import get_all_artifact_meta
from optuna.trial import TrialState, create_trial

from core.evaluation import EvalConfig, check_schema
from hpo.results import plots
from hpo.run.runner import run_worker
from hpo.storage import open_storage
from hpo.storage.artifacts import open_store
from hpo.study.create import create_or_join
from hpo.study.objective import Objective
from hpo.study.spec import StudySettings, load_spec
from tests.hpo.conftest import TINY_SPEC, write_spec

SMALL = EvalConfig(snr_grid_db=(0.0, 10.0, 20.0), n_scenes=8, methods=plots.FIGURE_METHODS, order_rules=())


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """The tiny study after two trials, with its artifact store; shared by the module's tests (a save with the
    same best trial reuses what an earlier one stored)."""
    folder = tmp_path_factory.mktemp("ran")
    spec = load_spec(write_spec(folder, "tiny", TINY_SPEC))
    study, _ = create_or_join(spec, open_storage(f"sqlite:///{folder / 'hpo.db'}"))
    store = open_store(folder / "art")
    run_worker(spec, study, 2, objective=Objective(spec, artifacts=store))
    return study, store


def saved_figures(study: optuna.Study) -> dict[str, dict]:
    """The plotly JSON optuna-dashboard would show, by graph object id."""
    from optuna_dashboard._custom_plot_data import get_plotly_graph_objects

    return {
        k: json.loads(v)
        for k, v in get_plotly_graph_objects(study._storage.get_study_system_attrs(study._study_id)).items()
    }


def test_prune_reasons_counts_pruner_nonfinite_and_other():
    study = optuna.create_study()
    for reason in ("pruner", "nonfinite_gradient", "nonfinite_gradient", "nonfinite_metric", None):
        attrs = {} if reason is None else {"prune_reason": reason}
        study.add_trial(create_trial(state=TrialState.PRUNED, user_attrs=attrs))
    study.add_trial(create_trial(value=1.0))
    assert plots.prune_reasons(study) == {"pruner": 1, "nonfinite_gradient": 2, "other": 2}


def test_study_end_saves_both_figures_for_the_dashboard(ran):
    study, store = ran
    ids = plots.save_study_plots(study, store, SMALL)
    figures = saved_figures(study)
    assert set(ids) == set(figures) == set(plots.FIGURE_IDS.values())
    rmse = figures[plots.FIGURE_IDS["rmse"]]
    names = {trace["name"] for trace in rmse["data"]}
    assert names == {"learned (R_blend)", "classic MUSIC (W·YYᴴ/L·W)", "stochastic CRB"}
    assert all(list(trace["x"]) == [0.0, 10.0, 20.0] for trace in rmse["data"])


def test_the_rmse_figure_says_true_k_and_draws_intervals_on_the_measured_curves(ran):
    study, store = ran
    plots.save_study_plots(study, store, SMALL)
    report = plots.stored_evaluation(study, store)
    check_schema(report)
    figure = plots.rmse_vs_snr_figure(report)
    caption = " ".join(a.text for a in figure.layout.annotations)
    assert "true K" in caption and "Oracle" not in caption
    measured = [t for t in figure.data if t.name != "stochastic CRB"]
    assert len(measured) == 4  # learned and classic, angle and range
    for trace in measured:
        assert sum(trace.error_y.array) > 0 and sum(trace.error_y.arrayminus) > 0


def test_the_study_evaluation_runs_only_what_the_figure_draws_with_the_specs_scenes(ran):
    study, _ = ran
    cfg = plots.figure_eval(study)
    assert cfg.methods == plots.FIGURE_METHODS == ("learned", "classic") and cfg.order_rules == ()
    assert cfg.n_scenes == 8  # the tiny spec's figure_scenes; by default 200
    assert StudySettings().figure_scenes >= 200


def test_a_dml_pipelines_figure_draws_classic_dml_its_baseline_and_names_its_estimator(tmp_path):
    folder = tmp_path
    spec = load_spec(write_spec(folder, "tinydml", TINY_SPEC.replace("[fixed]\n", '[fixed]\nestimator = "dml"\n')))
    study, _ = create_or_join(spec, open_storage(f"sqlite:///{folder / 'hpo.db'}"))
    store = open_store(folder / "art")
    run_worker(spec, study, 1, objective=Objective(spec, artifacts=store))
    plots.save_study_plots(study, store, SMALL.replace(snr_grid_db=(10.0,)))
    report = plots.stored_evaluation(study, store)
    assert set(report["rows"][0]["methods"]) == {"learned", "classic", "dml"}
    figure = plots.rmse_vs_snr_figure(report)
    assert {t.name for t in figure.data} == {
        "learned (R_blend)", "classic MUSIC (W·YYᴴ/L·W)", "classic DML (alternating projection)", "stochastic CRB"
    }  # fmt: skip
    assert "learned = DML on R_blend" in " ".join(a.text for a in figure.layout.annotations)


def test_a_second_save_reuses_the_stored_evaluation_of_the_same_best_trial(ran):
    study, store = ran
    plots.save_study_plots(study, store, SMALL)
    first = plots.stored_evaluation(study, store)
    plots.save_study_plots(study, store, SMALL)
    assert len(get_all_artifact_meta(study)) == 1
    assert plots.stored_evaluation(study, store) == first
    assert first["trial"] == min(study.trials, key=lambda t: t.values[0]).number


def test_without_a_checkpoint_only_the_prune_figure_is_saved(tiny_spec, tmp_path):
    spec = load_spec(tiny_spec)
    study, _ = create_or_join(spec, open_storage(f"sqlite:///{tmp_path / 'hpo.db'}"))
    run_worker(spec, study, 1, objective=Objective(spec))  # no artifact store: nothing uploaded
    assert plots.save_study_plots(study, open_store(tmp_path / "art"), SMALL) == [plots.FIGURE_IDS["prune"]]
