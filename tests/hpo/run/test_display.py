"""The live display of `hpo run`: live counts, epoch pace and ETA, the best trial's figures, prune reasons."""

from __future__ import annotations

import datetime as dt
import io
import re
import subprocess
import sys
from pathlib import Path

import optuna
from optuna.study import StudyDirection
from optuna.trial import TrialState
from rich.console import Console

from hpo.results.tally import final_health, gain_over_samp, tally_trials
from hpo.run.display import LiveDisplay, LogLines, step, tally_table
from hpo.run.runner import run_worker
from hpo.storage import open_storage
from hpo.study.create import create_or_join
from hpo.study.objective import NONFINITE, Objective
from hpo.study.spec import load_spec


def console() -> Console:
    return Console(file=io.StringIO(), width=120)


def text_of(renderable) -> str:
    c = Console(file=io.StringIO(), width=120)
    c.print(renderable)
    return c.file.getvalue()


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def trial(state: TrialState, value: float | None = None, seconds: float = 1.0, **attrs) -> optuna.trial.FrozenTrial:
    t = optuna.trial.create_trial(state=state, value=value, **attrs)
    t.datetime_start = dt.datetime(2020, 1, 1)
    t.datetime_complete = t.datetime_start + dt.timedelta(seconds=seconds) if state.is_finished() else None
    return t


class RecordingDisplay(LiveDisplay):
    """The live display, remembering the `running` count it shows after each epoch."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.running_at_epochs: list[int] = []

    def epoch(self, trial_number, epoch, metrics) -> None:
        super().epoch(trial_number, epoch, metrics)
        self.running_at_epochs.append(self.tally.running)


def test_running_counts_the_trial_that_is_training(tiny_spec, tmp_path):
    spec = load_spec(tiny_spec)
    study, _ = create_or_join(spec, open_storage(f"sqlite:///{tmp_path / 'hpo.db'}"))
    with RecordingDisplay(console(), 2, spec.train.epochs) as live:
        run_worker(spec, study, 2, watcher=live, objective=Objective(spec))
    assert live.running_at_epochs[:: spec.train.epochs] == [1, 1]  # each trial's first epoch re-reads the counts
    assert live.tally.running == 0 and live.tally.complete == 2


def test_epoch_text_shows_the_total_the_measured_pace_and_the_eta():
    study = optuna.create_study()
    study.add_trial(trial(TrialState.COMPLETE, 1.0, seconds=10))
    study.add_trial(trial(TrialState.COMPLETE, 2.0, seconds=30))
    clock = Clock()
    live = LiveDisplay(console(), 5, 4, clock)
    live.trial_started(study)
    study.ask()  # the trial study.optimize creates after trial_started
    clock.now = 6.0
    live.epoch(2, 1, {"nmse_db": -3.0})  # 2 of 4 epochs in 6 s
    text = live.status
    # 20 s/trial (median); 2 trials not started + half of this one, one at a time: 50 s.
    assert "epoch 2/4" in text and "nmse_db=-3.00" in text and "3.0 s/epoch" in text
    assert "20 s/trial, ETA 50 s" in text


def test_before_any_trial_finishes_the_pace_is_estimated_from_the_epochs():
    study = optuna.create_study()
    clock = Clock()
    live = LiveDisplay(console(), 2, 10, clock)
    live.trial_started(study)
    study.ask()
    clock.now = 3.0
    live.epoch(0, 0, {"nmse_db": -1.0})
    # 3 s/epoch x 10 epochs; 1 trial not started + 0.9 of this one.
    assert "~30 s/trial, ETA ~57 s" in live.status


def test_the_tables_show_the_best_trials_gain_and_health_and_the_prune_reasons():
    trials = [
        trial(TrialState.COMPLETE, -7.0, user_attrs={"gain_db": 2.5, "eigengap_health": [0.5, 0.93]}),
        trial(TrialState.COMPLETE, -5.0, user_attrs={"gain_db": 9.0, "eigengap_health": [0.1]}),
        trial(TrialState.PRUNED, user_attrs={"prune_reason": "pruner"}),
        trial(TrialState.PRUNED, user_attrs={"prune_reason": "pruner"}),
        trial(TrialState.PRUNED, user_attrs={"prune_reason": NONFINITE}),
    ]
    for number, t in enumerate(trials):
        t.number = number
    t = tally_trials(trials, [StudyDirection.MINIMIZE])
    assert (t.best_number, t.best_gain_db, t.best_health) == (0, 2.5, 0.93)
    assert (t.pruned, t.nan_pruned) == (2, 1)
    text = text_of(tally_table(t, "val_nmse_db"))
    assert f"pruned because: pruner 2, {NONFINITE} 1" in text
    assert "val_nmse_db" in text and "+2.50 dB" in text and "0.93" in text


def test_gain_falls_back_to_the_sample_covariance_nmse():
    assert gain_over_samp({"nmse_samp_db": -4.0, "val_nmse_db": -6.5}) == 2.5
    assert gain_over_samp({"nmse_db": -6.5}) is None


def test_final_health_reads_a_number_a_per_epoch_list_or_the_final_attr():
    assert final_health({"eigengap_health": 0.8}) == 0.8
    assert final_health({"eigengap_health": [0.2, 0.7]}) == 0.7
    assert final_health({"eigengap_health_final": 0.9, "eigengap_health": [0.2]}) == 0.9
    assert final_health({"eigengap_health": []}) is None


def test_a_step_is_announced_as_one_line_off_a_terminal():
    c = console()
    with step(c, "building the study figures"):
        pass
    assert c.file.getvalue() == "building the study figures\n"


def test_a_watching_parent_shows_its_note_with_the_pace_of_all_workers():
    study = optuna.create_study()
    for seconds in (10, 30):
        study.add_trial(trial(TrialState.COMPLETE, 0.0, seconds=seconds))
    for _ in range(2):
        study.ask()  # two workers' running trials
    live = LiveDisplay(console(), 6, 4, Clock(), workers=2)
    live.poll(study, 2, "1 thread")
    # 20 s/trial; 2 not started + 2 running counted half done, 2 at a time: 20 * 3 / 2.
    assert live.status == "2/2 workers x 1 thread · 20 s/trial, ETA 30 s"
    assert live.tally.running == 2


def test_the_eta_divides_by_the_workers_alive_while_one_is_between_trials():
    study = optuna.create_study()
    for seconds in (10, 30):
        study.add_trial(trial(TrialState.COMPLETE, 0.0, seconds=seconds))
    study.ask()  # one worker's running trial; the other worker has not asked for its next one yet
    live = LiveDisplay(console(), 6, 4, Clock(), workers=2)
    live.poll(study, 2, "1 thread")
    # 20 s/trial; 3 not started + 1 running counted half done, 2 at a time: 20 * 3.5 / 2 (not / 1).
    assert live.status == "2/2 workers x 1 thread · 20 s/trial, ETA 35 s"


HPO = str(Path(sys.executable).parent / "hpo")


def test_off_a_terminal_hpo_run_prints_a_plain_line_per_trial_and_worker(tiny_spec, tmp_path):
    log = tmp_path / "run.log"
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    with log.open("w") as out:  # stdout to a file, as docker compose logs and CI see it
        proc = subprocess.run(
            [HPO, "run", "--study", str(tiny_spec), "--storage", url], stdout=out, stderr=subprocess.PIPE, text=True
        )
    assert proc.returncode == 0, proc.stderr
    text = log.read_text()
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f]", text)  # no escape sequences, carriage returns or tabs
    lines = text.splitlines()
    assert lines[0].startswith("study tiny from ") and lines[0].endswith(": budget 3")  # not wrapped at 80 columns
    trials = [line for line in lines if line.startswith("trial ")]
    assert [line.split()[1] for line in trials] == ["0", "1", "2"]
    for line in trials:
        assert "COMPLETE: val_nmse_db=" in line or "COMPLETE: loc_gain_db=" in line
        assert re.search(r" · in [^·]+ · best #\d ", line) and "/3 trials, " in line
    assert "(dB; classic = 0)" in trials[0] or "(dB; lower is better)" in trials[0]
    assert sum(line.startswith("worker started: pid ") for line in lines) == 1
    assert sum(line.startswith("worker stopped: pid ") for line in lines) == 1


def test_a_watching_parent_logs_each_worker_start_and_stop_and_each_finished_trial_once():
    study = optuna.create_study()
    study.set_metric_names(["loc_gain_db"])
    c = console()
    lines = LogLines(c, 4, 2, Clock(), workers=2)
    with lines:
        lines.poll(study, 2, "1 thread")
        study.add_trial(trial(TrialState.COMPLETE, 0.5, seconds=10))
        for alive in (2, 1, 0):
            lines.poll(study, alive, "1 thread")
    out = c.file.getvalue().splitlines()
    assert out[:2] == [
        "worker started: 1/2 alive · 2 workers x 1 thread",
        "worker started: 2/2 alive · 2 workers x 1 thread",
    ]
    assert out[2].startswith("trial 0 COMPLETE: loc_gain_db=+0.500 (dB; classic = 0) · in 10 s · best #0 +0.500")
    assert out[3:] == ["worker stopped: 1/2 alive", "worker stopped: 0/2 alive"]


def test_a_pruned_trials_line_says_its_value_is_the_last_reported_one_and_when():
    # Optuna keeps a pruned trial's last intermediate value as its value; read beside the complete trials' final
    # values it would look like one (a training-time loc_gain_db at epoch 5, above the best final value).
    study = optuna.create_study(direction="maximize")
    study.set_metric_names(["loc_gain_db"])
    c = console()
    lines = LogLines(c, 2, 10, Clock(), workers=1)
    with lines:
        study.add_trial(trial(TrialState.COMPLETE, 0.2, seconds=15))
        study.add_trial(trial(TrialState.PRUNED, 0.4, seconds=7, intermediate_values={1: 0.1, 4: 0.4}))
        lines.poll(study, 1, "2 threads")
    out = [line for line in c.file.getvalue().splitlines() if line.startswith("trial ")]
    assert out[0].startswith("trial 0 COMPLETE: loc_gain_db=+0.200 (dB; classic = 0)")
    assert out[1].startswith("trial 1 PRUNED: last reported loc_gain_db=+0.400 at epoch 5 · in 7.0 s")
