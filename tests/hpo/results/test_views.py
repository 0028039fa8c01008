"""hpo.results.views and the HTML report: feasible trials first, the Pareto front, every value named by its metric."""

from __future__ import annotations

import csv
import io
import json

import optuna
from optuna.trial import create_trial

from hpo.results.html_report import study_figures, top_table
from hpo.results.views import best, named_values, to_csv, to_json, trials
from hpo.study.spec import metric_label


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


def test_per_snr_attrs_are_listed_in_snr_order():
    study = optuna.create_study()
    names = ["a", "gain", "gain@-10", "gain@-5", "gain@0", "gain@10", "gain@20", "gain@5", "n@[-10,0)", "n@[0,10)"]
    study.add_trial(create_trial(value=0.0, user_attrs={name: 0.0 for name in sorted(names)}))  # the storage's order
    shown = list(trials(study)[0]["user_attrs"])
    assert shown == ["a", "gain", "gain@-10", "gain@-5", "gain@0", "gain@5", "gain@10", "gain@20", *names[-2:]]


def test_values_are_printed_with_their_names():
    summary = best(multi_study(([1.0, 2.5], 0.0)))
    assert named_values(summary, summary["pareto_front"][0]) == "val_nmse_db=1.000 loc_gain_db=2.500"
    unnamed = {"metric_names": None}
    assert named_values(unnamed, {"values": [1.0]}) == "value_0=1.000"


def localisation_study() -> optuna.Study:
    study = optuna.create_study(directions=["maximize"])
    study.set_metric_names(["loc_gain_db"])
    study.add_trial(create_trial(value=1.25, user_attrs={"gross_rate": 0.01}))
    return study


def test_export_names_each_value_by_its_metric():
    rows = trials(localisation_study())
    assert rows[0]["metric_names"] == ["loc_gain_db"] and json.loads(to_json(rows))[0]["values"] == [1.25]
    (row,) = csv.DictReader(io.StringIO(to_csv(rows)))
    assert row["loc_gain_db"] == "1.25" and "values" not in row


def test_the_html_report_names_the_metric_and_its_reference():
    study = localisation_study()
    assert metric_label("loc_gain_db") in top_table(study)
    assert f"Intermediate values ({metric_label('loc_gain_db')} per epoch)" in study_figures(study)
    assert "NMSE" not in top_table(study).split("</tr>")[0].replace("nmse_samp_db", "")
