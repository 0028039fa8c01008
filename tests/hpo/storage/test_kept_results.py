"""A result computed while another process failed its trial (its heartbeat went stale in an outage longer than the
grace period) is kept for the trial's re-run, never lost to a traceback; a re-run that trains again starts with
no constraint or checkpoint link of the run it replaces (DESIGN §7)."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from hpo.run.runner import run_worker
from hpo.storage import open_storage
from hpo.storage.artifacts import CHECKPOINT_ATTR
from hpo.storage.recovery import KEPT_ATTR, release_trial

LOST_RUN = "checkpoint-of-the-replaced-run"


class FailedMeanwhile:
    """Computes 0.25 with a constraint and a checkpoint link, but before it returns another process finds its
    trial stale, fails it and queues a retry (what fail_stale does after the grace period)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, trial: optuna.Trial, hooks=None) -> float:
        self.calls += 1
        trial.suggest_float("x", 0.0, 1.0)
        trial.set_constraint("eigengap_health", -0.5)
        trial.set_user_attr(CHECKPOINT_ATTR, LOST_RUN)
        release_trial(trial.study, trial._trial_id, "stale", requeue=True)
        return 0.25


def test_a_result_computed_after_another_process_failed_the_trial_reaches_its_retry(tmp_path, capfd):
    study = optuna.create_study(study_name="s", storage=open_storage(f"sqlite:///{tmp_path / 'hpo.db'}"))
    objective = FailedMeanwhile()
    run_worker(None, study, 1, objective=objective)  # before: ValueError: Cannot tell a FAIL trial.
    failed, retry = study.trials
    assert failed.state == TrialState.FAIL and failed.user_attrs[KEPT_ATTR] == [0.25]
    assert retry.state == TrialState.COMPLETE and retry.value == 0.25 and retry.params == failed.params
    assert objective.calls == 1  # the retry took the kept result; it did not train again
    # The kept run's constraint and checkpoint link are the retry's: they describe the values it took.
    assert retry.constraints == {"eigengap_health": -0.5} and retry.user_attrs[CHECKPOINT_ATTR] == LOST_RUN
    assert "kept for its re-run" in capfd.readouterr().err


def test_a_retry_that_trains_again_starts_without_the_failed_runs_constraint_and_checkpoint(tmp_path):
    study = optuna.create_study(study_name="s", storage=open_storage(f"sqlite:///{tmp_path / 'hpo.db'}"))
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    trial.set_constraint("eigengap_health", 0.3)
    trial.set_user_attr(CHECKPOINT_ATTR, LOST_RUN)
    release_trial(study, trial._trial_id, "killed", requeue=True)
    (retry,) = study.get_trials(states=(TrialState.WAITING,))
    assert retry.constraints == {} and CHECKPOINT_ATTR not in retry.user_attrs
    assert retry.params == {"x": trial.params["x"]}
    again = study.ask()  # the retry, popped: its own constraint is recorded, not ignored as "already set"
    again.set_constraint("eigengap_health", -0.1)
    study.tell(again, 0.5)
    assert study.trials[1].constraints == {"eigengap_health": -0.1}
