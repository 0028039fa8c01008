"""hpo.results.report.best: feasible trials first, the Pareto front of multi-objective studies, the values' names."""

from __future__ import annotations

import optuna
from optuna.trial import create_trial

from hpo.results.report import best, named_values


def multi_study(*trials) -> optuna.Study:
    study = optuna.create_study(directions=["minimize", "minimize"])
    study.set_metric_names(["val_nmse_db", "loc_gain_db"])
    for values, health_margin in trials:
        study.add_trial(create_trial(values=values, constraints={"eigengap_health": health_margin}))
    return study


def test_the_front_holds_feasible_trials_only_ordered_by_the_first_value():
    study = multi_study(([2.0, 1.0], 0.0), ([1.0, 2.0], -0.1), ([0.0, 0.0], 0.2), ([3.0, 3.0], -0.1))
    summary = best(study)
    assert summary["feasible"] is True and summary["metric_names"] == ["val_nmse_db", "loc_gain_db"]
    assert [t["number"] for t in summary["pareto_front"]] == [1, 0]  # #2 dominates all but is infeasible


def test_without_a_feasible_trial_the_front_of_all_is_shown_and_flagged():
    summary = best(multi_study(([2.0, 1.0], 0.1), ([1.0, 2.0], 0.1), ([3.0, 3.0], 0.1)))
    assert summary["feasible"] is False and [t["number"] for t in summary["pareto_front"]] == [1, 0]


def test_values_are_printed_with_their_names():
    summary = best(multi_study(([1.0, 2.5], 0.0)))
    assert named_values(summary, summary["pareto_front"][0]) == "val_nmse_db=1.000 loc_gain_db=2.500"
    unnamed = {"metric_names": None}
    assert named_values(unnamed, {"values": [1.0]}) == "value_0=1.000"
