"""Measured pace of a study: seconds per trial from stored trials, the ETA arithmetic, durations for people."""

from __future__ import annotations

import datetime as dt

import optuna
import pytest
from optuna.trial import TrialState

from hpo.run.pace import duration, eta_seconds, load_note, trial_seconds


def finished(state: TrialState, seconds: float) -> optuna.trial.FrozenTrial:
    t = optuna.trial.create_trial(state=state, value=0.0 if state == TrialState.COMPLETE else None)
    t.datetime_start = dt.datetime(2020, 1, 1)
    t.datetime_complete = t.datetime_start + dt.timedelta(seconds=seconds)
    return t


def test_trial_seconds_is_the_median_of_complete_and_pruned_trials():
    trials = [finished(TrialState.COMPLETE, 10), finished(TrialState.PRUNED, 4), finished(TrialState.COMPLETE, 30)]
    assert trial_seconds(trials) == 10


def test_trial_seconds_ignores_failed_and_unfinished_trials():
    running = optuna.trial.create_trial(state=TrialState.RUNNING)
    assert trial_seconds([finished(TrialState.FAIL, 1), running]) is None


def test_eta_counts_unstarted_trials_and_the_rest_of_running_ones_over_the_parallel_workers():
    assert eta_seconds(20.0, not_started=3, running_left=1.0, parallel=2) == 40.0


def test_eta_refuses_fewer_than_one_parallel_trial():
    with pytest.raises(ValueError, match="parallel=0"):
        eta_seconds(1.0, 1, 0.0, parallel=0)


@pytest.mark.parametrize(("seconds", "text"), [(8.42, "8.4 s"), (23.4, "23 s"), (250, "4m10s"), (7500, "2h05m")])
def test_duration_reads_as_seconds_minutes_or_hours(seconds, text):
    assert duration(seconds) == text


def test_load_note_warns_only_when_the_load_exceeds_the_cores():
    assert load_note(load=1.5, cores=2) is None
    assert "load average 6.2 on 2 cores" in load_note(load=6.2, cores=2)
