"""hpo.study.ranking: feasible trials first, then by value, and every reader of a study names the same best."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState, create_trial

from hpo.results import views
from hpo.results.tally import tally
from hpo.study import ranking


def study_of(*trials: tuple[float, float], directions=("minimize",)) -> optuna.Study:
    """A study holding COMPLETE trials given as (value, health margin); margin <= 0 is feasible."""
    study = optuna.create_study(directions=list(directions))
    for value, margin in trials:
        values = [value] * len(directions)
        study.add_trial(create_trial(values=values, constraints={"eigengap_health": margin}))
    study.add_trial(create_trial(state=TrialState.FAIL))
    return study


def test_feasible_trials_come_first_then_lower_values():
    study = study_of((-9.0, 0.1), (-5.0, 0.0), (-7.0, -0.2), (-1.0, 0.3))
    ranked = ranking.ranked(study.get_trials(), study.directions)
    assert [t.number for t in ranked] == [2, 1, 0, 3]  # the failed trial #4 is not ranked
    assert ranking.best_trial(study).number == 2


def test_without_a_feasible_trial_every_reader_names_the_same_infeasible_best():
    study = study_of((-3.0, 0.2), (-6.0, 0.1), (-4.0, 0.4))
    summary, counts = views.best(study), tally(study)
    assert summary["best"]["number"] == counts.best_number == ranking.best_trial(study).number == 1
    assert summary["feasible"] is False and counts.best_feasible is False and counts.best == -6.0


def test_a_maximised_objective_ranks_its_highest_value_first():
    study = study_of((1.0, 0.0), (3.0, 0.0), (2.0, 0.0), directions=("maximize",))
    assert ranking.best_trial(study).number == 1


def test_a_trial_beats_the_best_only_when_it_ranks_before_every_complete_trial():
    study = study_of((-5.0, 0.0), (-8.0, 0.2))
    assert ranking.beats_best(study, [-6.0], feasible=True)  # the infeasible -8 ranks after any feasible trial
    assert not ranking.beats_best(study, [-4.0], feasible=True)
    assert not ranking.beats_best(study, [-9.0], feasible=False)  # infeasible: still behind the feasible -5


def test_on_a_pareto_front_the_best_has_the_lowest_first_value():
    study = optuna.create_study(directions=["minimize", "minimize"])
    for values in ([2.0, 1.0], [1.0, 2.0], [3.0, 3.0]):
        study.add_trial(create_trial(values=values, constraints={"eigengap_health": 0.0}))
    front, feasible = ranking.leaders(study.get_trials(), study.directions)
    assert [t.number for t in front] == [1, 0] and feasible
    assert ranking.best_trial(study).number == tally(study).best_number == 1
