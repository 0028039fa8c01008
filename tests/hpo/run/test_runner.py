"""The worker loop: a global trial budget across runs, clean interrupts, joining only compatible studies."""

from __future__ import annotations

import os
import signal

import optuna
import pytest
from optuna.trial import TrialState

from hpo.run.runner import RunInterrupted, RunWatcher, run_worker
from hpo.storage import open_storage
from hpo.storage.guard import INTERRUPTED, GuardedStorage, budget_used
from hpo.study.create import StudyMismatchError, create_or_join
from hpo.study.hooks import NO_HOOKS
from hpo.study.objective import Objective
from hpo.study.spec import load_spec


def test_budget_is_the_study_total_across_runs(tiny_spec, tmp_path):
    spec, url = load_spec(tiny_spec), f"sqlite:///{tmp_path / 'hpo.db'}"
    first, _ = create_or_join(spec, open_storage(url))
    run_worker(spec, first, 2, objective=Objective(spec))
    second, _ = create_or_join(spec, open_storage(url))
    run_worker(spec, second, 3, objective=Objective(spec))
    run_worker(spec, second, 3, objective=Objective(spec))
    assert len(optuna.load_study(study_name="tiny", storage=url).trials) == 3


def test_budget_skips_interrupted_and_requeued_trials():
    def trial(state, number, **attrs):
        t = optuna.create_trial(state=state, value=0.0 if state == TrialState.COMPLETE else None, **attrs)
        t.number = number
        return t

    trials = [
        trial(TrialState.COMPLETE, 0),
        trial(TrialState.PRUNED, 1),
        trial(TrialState.FAIL, 2, user_attrs={"fail_reason": INTERRUPTED}),
        trial(TrialState.FAIL, 3),  # stale, retried by trial 4
        trial(TrialState.COMPLETE, 4, system_attrs={"failed_trial": 3, "retry_history": [3]}),
        trial(TrialState.FAIL, 5),
        trial(TrialState.WAITING, 6),  # queued: it will run, so it holds its slot
    ]
    assert budget_used(trials) == 5


class InterruptAtFirstEpoch(RunWatcher):
    def epoch(self, trial_number, epoch, metrics):
        raise KeyboardInterrupt


def test_interrupt_marks_the_running_trial_failed_and_leaves_none_running(tiny_spec, tmp_path):
    spec = load_spec(tiny_spec)
    study, _ = create_or_join(spec, open_storage(f"sqlite:///{tmp_path / 'hpo.db'}"))
    with pytest.raises(RunInterrupted):
        run_worker(spec, study, 3, objective=Objective(spec), watcher=InterruptAtFirstEpoch())
    t = study.trials[0]
    assert t.state == TrialState.FAIL and t.user_attrs["fail_reason"] == INTERRUPTED
    assert not study.get_trials(states=(TrialState.RUNNING,))


def test_an_interrupted_trial_is_queued_again_with_its_params(tiny_spec, tmp_path):
    spec = load_spec(tiny_spec)
    study, _ = create_or_join(spec, open_storage(f"sqlite:///{tmp_path / 'hpo.db'}"))
    with pytest.raises(RunInterrupted, match="queued again with its params"):
        run_worker(spec, study, 3, objective=Objective(spec), watcher=InterruptAtFirstEpoch())
    interrupted, retry = study.trials
    assert retry.state == TrialState.WAITING and retry.params == interrupted.params
    assert retry.system_attrs["failed_trial"] == interrupted.number and budget_used(study.trials) == 1


def test_the_next_run_re_runs_the_interrupted_trial_first(tiny_spec, tmp_path):
    spec, url = load_spec(tiny_spec), f"sqlite:///{tmp_path / 'hpo.db'}"
    study, _ = create_or_join(spec, open_storage(url))
    with pytest.raises(RunInterrupted):
        run_worker(spec, study, 3, objective=Objective(spec), watcher=InterruptAtFirstEpoch())
    resumed, _ = create_or_join(spec, open_storage(url))
    run_worker(spec, resumed, 3, objective=Objective(spec))
    interrupted, retry, *fresh = optuna.load_study(study_name="tiny", storage=url).trials
    assert retry.state == TrialState.COMPLETE and retry.params == interrupted.params
    assert [t.state for t in fresh] == [TrialState.COMPLETE] * 2  # the budget of 3, the interrupted one not counted


class SignalAtFirstStep(Objective):
    """The real objective, sending this process SIGTERM from inside the first optimiser step of its trial; the
    steps that began are kept in `steps`."""

    def __init__(self, spec) -> None:
        super().__init__(spec)
        self.steps: list[tuple[int, int]] = []

    def train(self, cfg, on_epoch, on_step):
        def step(epoch: int, n: int) -> None:  # before run_worker's stop check, which the hooks carry
            self.steps.append((epoch, n))
            if len(self.steps) == 1:
                os.kill(os.getpid(), signal.SIGTERM)
            if on_step is not None:
                on_step(epoch, n)

        return super().train(cfg, on_epoch, step)


def test_a_signal_stops_the_trial_at_the_next_optimiser_step_not_the_epochs_end(tiny_spec, tmp_path):
    tiny_spec.write_text(tiny_spec.read_text().replace("n_train = 128", "n_train = 640"))  # 10 steps an epoch
    spec = load_spec(tiny_spec)
    study, _ = create_or_join(spec, open_storage(f"sqlite:///{tmp_path / 'hpo.db'}"))
    objective = SignalAtFirstStep(spec)
    with pytest.raises(RunInterrupted):
        run_worker(spec, study, 3, objective=objective)
    t = study.trials[0]
    assert t.state == TrialState.FAIL and t.user_attrs["fail_reason"] == INTERRUPTED
    assert t.intermediate_values == {} and objective.steps == [(0, 0)]  # stopped inside epoch 0, at its 1st step


class SignalBeforeItsTrial(Objective):
    """The real objective, sending this process SIGTERM as Optuna calls it, before its own code runs."""

    def __call__(self, trial, hooks=NO_HOOKS):
        os.kill(os.getpid(), signal.SIGTERM)
        return super().__call__(trial, hooks)


def test_a_signal_as_the_trial_starts_still_fails_it_as_interrupted(tiny_spec, tmp_path):
    spec = load_spec(tiny_spec)
    study, _ = create_or_join(spec, open_storage(f"sqlite:///{tmp_path / 'hpo.db'}"))
    with pytest.raises(RunInterrupted):
        run_worker(spec, study, 3, objective=SignalBeforeItsTrial(spec))
    t = study.trials[0]
    assert t.state == TrialState.FAIL and t.user_attrs["fail_reason"] == INTERRUPTED


def test_a_signal_as_optuna_creates_the_trial_fails_it_as_interrupted(tiny_spec, tmp_path, monkeypatch):
    create, created = GuardedStorage._create_new_trial, []  # what Optuna's cache calls

    def create_then_signal(self, *args, **kwargs):
        trial = create(self, *args, **kwargs)
        if not created:  # the first trial only: the retry that the stop queues is created after the handler is gone
            created.append(trial)
            os.kill(os.getpid(), signal.SIGTERM)  # handled here, inside Optuna's ask, before the objective is called
        return trial

    monkeypatch.setattr(GuardedStorage, "_create_new_trial", create_then_signal)
    spec = load_spec(tiny_spec)
    study, _ = create_or_join(spec, open_storage(f"sqlite:///{tmp_path / 'hpo.db'}"))
    with pytest.raises(RunInterrupted, match="marked FAIL"):
        run_worker(spec, study, 3, objective=Objective(spec))
    t = study.trials[0]
    assert t.state == TrialState.FAIL and t.user_attrs["fail_reason"] == INTERRUPTED
    assert not study.get_trials(states=(TrialState.RUNNING,))


def test_joining_with_other_metrics_is_refused(tiny_spec, tmp_path):
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    create_or_join(load_spec(tiny_spec), open_storage(url))
    tiny_spec.write_text(tiny_spec.read_text().replace("[study]\n", "[study]\nobjective = 'multi'\n"))
    with pytest.raises(StudyMismatchError, match=r"\['val_nmse_db'\].*\['val_nmse_db', 'loc_gain_db'\]"):
        create_or_join(load_spec(tiny_spec), open_storage(url))


def test_joining_after_a_spec_edit_warns(tiny_spec, tmp_path):
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    create_or_join(load_spec(tiny_spec), open_storage(url))
    tiny_spec.write_text(tiny_spec.read_text().replace("n_trials = 3", "n_trials = 4"))
    _, notes = create_or_join(load_spec(tiny_spec), open_storage(url))
    assert notes and "different version" in notes[0]
