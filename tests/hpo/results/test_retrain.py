"""Retraining the top trials over seeds: the winner by mean, results on the trials, resume without redoing."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.distributions import FloatDistribution

from core.evaluation import EvalConfig
from hpo.results.retrain import (
    MEAN_PREFIX,
    SEEDS_ATTR,
    STD_PREFIX,
    RetrainWatcher,
    TrialSummary,
    best_seed,
    retrain,
    seed_paths,
    trial_config,
    winner,
)
from hpo.storage import open_storage
from hpo.study.spec import load_spec
from tests.hpo.conftest import write_spec

FAST_EVAL = EvalConfig(snr_grid_db=(0.0, 10.0), n_scenes=8)  # the evaluation's shape, not its accuracy
SPACE = {"lr": FloatDistribution(1e-6, 1e-2, log=True), "beta": FloatDistribution(0.2, 0.4)}


@pytest.fixture
def wide_spec(tiny_spec):
    """The tiny spec with lr down to 1e-6: at that rate two epochs learn nearly nothing."""
    tiny_spec.write_text(tiny_spec.read_text().replace("low = 1e-3", "low = 1e-6"))
    return load_spec(tiny_spec)


@pytest.fixture
def lucky_study(wide_spec, tmp_path):
    """Trial 0 is the study's best by far, but its params (lr 1e-6) cannot learn: a lucky outlier.
    Trial 1's params (lr 1e-2) are good, its search value modest."""
    storage = open_storage(f"sqlite:///{tmp_path / 'hpo.db'}")
    study = optuna.create_study(storage=storage, study_name="tiny")
    for value, lr in ((-50.0, 1e-6), (-1.0, 1e-2)):
        trial = optuna.create_trial(
            params={"lr": lr, "beta": 0.3}, distributions=SPACE, value=value, user_attrs={"seed": 0}
        )
        study.add_trial(trial)
    return study, storage


MINIMIZE, MAXIMIZE = [optuna.study.StudyDirection.MINIMIZE], [optuna.study.StudyDirection.MAXIMIZE]


def summary(number: int, values: tuple[float, ...], nmse: tuple[float, ...] | None = None) -> TrialSummary:
    """A retrained single-objective trial: its value per seed (and, when given, a val NMSE per seed)."""
    n = len(values)
    nmse = nmse or values
    return TrialSummary(number, {}, (min(values),), tuple(range(n)), tuple((v,) for v in values), nmse, (1.0,) * n)


def test_winner_has_the_best_mean_not_the_best_single_seed():
    lucky = summary(0, (-20.0, -2.0, -2.0))  # best single run, mean -8
    steady = summary(1, (-10.0, -10.0, -10.0))
    assert winner([lucky, steady], MINIMIZE).number == 1


def test_winner_follows_the_study_objective_when_nmse_says_the_opposite():
    # A localisation study maximises loc_gain_db: trial 1 gains more over classic MUSIC, trial 0 has the lower NMSE.
    better_nmse = summary(0, (0.2, 0.4), nmse=(-12.0, -12.0))
    better_gain = summary(1, (1.1, 0.9), nmse=(-8.0, -8.0))
    assert winner([better_nmse, better_gain], MAXIMIZE).number == 1


def test_a_trial_with_a_diverged_seed_cannot_win():
    assert winner([summary(0, (-30.0, math.nan)), summary(1, (-1.0, -1.0))], MINIMIZE).number == 1


def test_seeds_are_ranked_on_the_specs_final_scenes_unless_told_otherwise(lucky_study, wide_spec, tmp_path):
    trial = lucky_study[0].trials[0]
    assert wide_spec.localisation.n_scenes == 8 and wide_spec.final_scenes == 8  # the tiny spec sets both
    big = wide_spec.path.read_text().replace("final_scenes = 8", "final_scenes = 40")
    assert trial_config(load_spec(write_spec(tmp_path, "big", big)), trial, 0, 2).localisation.n_scenes == 40
    assert trial_config(wide_spec, trial, 0, 2, val_scenes=12).localisation.n_scenes == 12
    nmse = big.replace("n_scenes = 8\n", "n_scenes = 0\n").replace("[study]\n", "[study]\nobjective = 'nmse'\n")
    assert trial_config(load_spec(write_spec(tmp_path, "nmse", nmse)), trial, 0, 2).localisation.n_scenes == 0


def test_lucky_outlier_of_the_search_loses_to_the_better_mean(lucky_study, wide_spec, tmp_path):
    study, storage = lucky_study
    result = retrain(study, storage, wide_spec, tmp_path / "out", top=2, seeds=2, epochs=2, eval_cfg=FAST_EVAL)
    assert [s.number for s in result.summaries] == [0, 1]  # the search ranked the outlier first
    assert result.winner.number == 1


def test_retrain_results_are_user_attrs_of_the_original_trials(lucky_study, wide_spec, tmp_path):
    study, storage = lucky_study
    result = retrain(study, storage, wide_spec, tmp_path / "out", top=2, seeds=2, epochs=2, eval_cfg=FAST_EVAL)
    stored = optuna.load_study(study_name="tiny", storage=storage.url).trials
    for trial, s in zip(stored, result.summaries, strict=True):
        assert trial.user_attrs[MEAN_PREFIX + "val_nmse_db"] == pytest.approx(s.mean_values[0])
        assert trial.user_attrs[STD_PREFIX + "val_nmse_db"] == pytest.approx(s.std_values[0])
        assert trial.user_attrs[SEEDS_ATTR] == [0, 1]


class StopAfterFirstSeed(RetrainWatcher):
    def seed_finished(self, record, skipped):
        raise KeyboardInterrupt


class Count(RetrainWatcher):
    def __init__(self):
        self.started = []

    def seed_started(self, number, seed, index, total):
        self.started.append((number, seed))


def test_interrupted_retrain_resumes_without_redoing_finished_seeds(lucky_study, wide_spec, tmp_path):
    study, storage = lucky_study
    out = tmp_path / "out"
    args = dict(top=1, seeds=2, epochs=2, eval_cfg=FAST_EVAL)
    with pytest.raises(KeyboardInterrupt):
        retrain(study, storage, wide_spec, out, watcher=StopAfterFirstSeed(), **args)
    first = seed_paths(out, 0, 0)[0]
    written = first.stat().st_mtime_ns
    count = Count()
    result = retrain(study, storage, wide_spec, out, watcher=count, **args)
    assert count.started == [(0, 1)]
    assert (result.trained, result.skipped) == (1, 1)
    assert first.stat().st_mtime_ns == written


def test_other_epochs_do_not_reuse_finished_seeds(lucky_study, wide_spec, tmp_path):
    study, storage = lucky_study
    out = tmp_path / "out"
    retrain(study, storage, wide_spec, out, top=1, seeds=1, epochs=1, eval_cfg=FAST_EVAL)
    result = retrain(study, storage, wide_spec, out, top=1, seeds=1, epochs=2, eval_cfg=FAST_EVAL)
    assert (result.trained, result.skipped) == (1, 0)


MAX, MIN = optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE


@pytest.mark.parametrize(
    "direction, values, seed",
    [
        (MAX, [0.498, 0.745], 1),  # loc_gain_db, maximised: the higher
        (MIN, [-9.0, -8.0], 0),  # NMSE, minimised: the lower
        (MAX, [0.3, 0.1, 0.3], 0),  # a tie: the first seed
    ],
)
def test_the_shipped_seed_is_the_best_on_the_retrains_validation_scenes(direction, values, seed):
    records = [{"seed": i, "values": [v]} for i, v in enumerate(values)]
    assert best_seed(records, [direction])["seed"] == seed
