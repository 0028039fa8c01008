"""The multi-objective pruner on synthetic curves: it prunes dominated curves at rungs and keeps the front."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from core.errors import ConfigError
from hpo.study.pruners import CURVE_ATTR, ParetoRungPruner, Rungs
from hpo.study.ranking import dominates
from hpo.study.spec import PrunerSpec


def study_of(curves: list[dict], directions=("minimize", "minimize")) -> optuna.Study:
    """A study whose trials hold these curves ({step: values}); the last finished, the others complete."""
    study = optuna.create_study(directions=list(directions))
    for c in curves:
        attrs = {CURVE_ATTR: {str(s): v for s, v in c.items()}}
        study.add_trial(create_trial(values=list(c[max(c)]), user_attrs=attrs, state=TrialState.COMPLETE))
    return study


def candidate(c: dict) -> optuna.trial.FrozenTrial:
    """A running trial (number 10_000, apart from the study's) with curve c."""
    t = create_trial(state=TrialState.RUNNING, user_attrs={CURVE_ATTR: {str(s): v for s, v in c.items()}})
    t.number = 10_000
    return t


# Four peers along a front at every step: (0, 3), (1, 2), (2, 1), (3, 0).
FRONT = [{s: [float(i), float(3 - i)] for s in range(8)} for i in range(4)]


def test_a_curve_dominated_by_most_peers_is_pruned_at_a_rung():
    pruner = ParetoRungPruner(min_resource=1, reduction_factor=2, n_startup_trials=4, dominated_fraction=0.5)
    behind = {0: [1.5, 2.5], 1: [4.0, 4.0]}  # at step 1 (rung: 2 epochs) worse than every peer in both
    assert pruner.prune(study_of(FRONT), candidate(behind))


def test_a_curve_on_the_front_is_kept():
    pruner = ParetoRungPruner(min_resource=1, reduction_factor=2, n_startup_trials=4, dominated_fraction=0.0)
    on_front = {0: [0.5, 2.5], 1: [0.5, 2.5]}  # dominated by nobody
    assert not pruner.prune(study_of(FRONT), candidate(on_front))


def test_a_curve_dominated_by_few_peers_is_kept():
    pruner = ParetoRungPruner(min_resource=1, reduction_factor=2, n_startup_trials=4, dominated_fraction=0.5)
    near = {0: [1.5, 2.5], 1: [1.5, 2.5]}  # only (1, 2) dominates it: 1 of 4
    assert not pruner.prune(study_of(FRONT), candidate(near))


def test_no_check_between_rungs():
    pruner = ParetoRungPruner(min_resource=1, reduction_factor=2, n_startup_trials=4, dominated_fraction=0.5)
    assert pruner.rung_steps(7) == [0, 1, 3, 7]
    behind = {s: [9.0, 9.0] for s in range(3)}  # step 2 is no rung, and step 1 was checked already
    assert not pruner.prune(study_of(FRONT), candidate(behind))


def test_a_sparse_curve_meets_the_rung_it_skipped():
    pruner = ParetoRungPruner(min_resource=1, reduction_factor=2, n_startup_trials=4, dominated_fraction=0.5)
    every_other = [{s: v for s, v in c.items() if s % 2 == 1} for c in FRONT]  # steps 1, 3, 5, 7
    behind = {1: [0.5, 2.5], 5: [9.0, 9.0]}  # rung step 3 lies between steps 1 and 5
    assert pruner.prune(study_of(every_other), candidate(behind))


def test_too_few_peers_prune_nobody():
    pruner = ParetoRungPruner(min_resource=1, reduction_factor=2, n_startup_trials=5, dominated_fraction=0.5)
    assert not pruner.prune(study_of(FRONT), candidate({0: [9.0, 9.0]}))


def test_maximised_objectives_are_compared_the_other_way():
    pruner = ParetoRungPruner(min_resource=1, reduction_factor=2, n_startup_trials=4, dominated_fraction=0.5)
    study = study_of(FRONT, directions=("maximize", "maximize"))
    assert not pruner.prune(study, candidate({0: [9.0, 9.0]}))  # better than all when larger is better
    assert pruner.prune(study, candidate({0: [-1.0, -1.0]}))


def test_a_non_finite_value_is_pruned():
    pruner = ParetoRungPruner(min_resource=1, reduction_factor=2, n_startup_trials=4, dominated_fraction=0.5)
    assert pruner.prune(study_of(FRONT), candidate({0: [math.nan, 0.0]}))


def test_dominance_needs_one_strict_improvement():
    assert dominates([1, 2], [1, 3]) and not dominates([1, 3], [1, 3]) and not dominates([0, 4], [1, 3])


@pytest.mark.parametrize(
    "kwargs, name",
    [({"min_resource": 0}, "min_resource"), ({"reduction_factor": 1}, "reduction_factor"),
     ({"n_startup_trials": 0}, "n_startup_trials"), ({"dominated_fraction": 1.0}, "dominated_fraction")],
)  # fmt: skip
def test_bad_settings_are_config_errors(kwargs, name):
    with pytest.raises(ConfigError, match=name):
        ParetoRungPruner(**kwargs)


def test_mo_asha_has_no_defaults_of_its_own_a_spec_gives_them():
    assert all(field.is_required() for field in Rungs.model_fields.values())
    spec = PrunerSpec(name="mo-asha")  # only the name: every rung setting is PrunerSpec's default
    built = ParetoRungPruner(**{key: getattr(spec, key) for key in Rungs.model_fields})
    assert built.rungs.model_dump() == {key: PrunerSpec.model_fields[key].default for key in Rungs.model_fields}
