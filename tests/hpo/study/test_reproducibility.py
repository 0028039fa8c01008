"""A trial's value is a function of its params, seed, spec and versions: re-running it repeats it, and an
interrupted `hpo run` goes on to its budget from the trials it has."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from core.evaluation import EvalConfig
from core.scenario import generate
from core.train import load_checkpoint, validate
from hpo.results.retrain import retrain, seed_paths
from hpo.run.runner import RunInterrupted, RunWatcher, run_worker
from hpo.storage import open_storage
from hpo.storage.guard import INTERRUPTED, budget_used
from hpo.study.create import create_or_join
from hpo.study.objective import Objective
from hpo.study.spec import load_spec


def test_retraining_a_complete_trial_at_its_epochs_repeats_its_model_and_ranks_it_on_fresh_scenes(tiny_spec, tmp_path):
    spec = load_spec(tiny_spec)
    storage = open_storage(f"sqlite:///{tmp_path / 'hpo.db'}")
    study, _ = create_or_join(spec, storage)
    run_worker(spec, study, 2, objective=Objective(spec))
    (last,) = [t for t in study.trials if t.number == 1]
    assert last.state == TrialState.COMPLETE
    result = retrain(
        study, storage, spec, tmp_path / "out", top=1, number=1, seeds=1, epochs=spec.train.epochs,
        eval_cfg=EvalConfig(snr_grid_db=(10.0,), n_scenes=4),
    )  # fmt: skip
    # The retrain validates on scenes of its own seed; on the search's validation scenes its model repeats the trial.
    assert result.provenance["validation_seed"] != spec.train.val_seed
    _, ckpt = seed_paths(tmp_path / "out", 1, result.winner.seeds[0])
    model, cfg, _ = load_checkpoint(ckpt)
    searched = cfg.replace(train=cfg.train.replace(val_seed=spec.train.val_seed))
    val = generate(cfg.scenario, cfg.train.n_val, spec.train.val_seed)
    assert validate(model, searched, val)["nmse_db"] == pytest.approx(last.value, abs=0.01)


class InterruptSecondTrial(RunWatcher):
    def epoch(self, trial_number, epoch, metrics):
        if trial_number == 1:
            raise KeyboardInterrupt


def test_interrupted_run_goes_on_to_its_budget_from_the_trials_it_has(tiny_spec, tmp_path):
    spec, url = load_spec(tiny_spec), f"sqlite:///{tmp_path / 'hpo.db'}"
    study, _ = create_or_join(spec, open_storage(url))
    with pytest.raises(RunInterrupted):
        run_worker(spec, study, 3, objective=Objective(spec), watcher=InterruptSecondTrial())
    resumed, _ = create_or_join(spec, open_storage(url))
    run_worker(spec, resumed, 3, objective=Objective(spec))
    trials = optuna.load_study(study_name="tiny", storage=url).trials
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) == 3 and budget_used(trials) == 3
    assert trials[1].user_attrs["fail_reason"] == INTERRUPTED
    assert trials[0].state == TrialState.COMPLETE  # the first trial was kept, not re-run
