"""Where a trial's seconds go, for the benchmarks: hpo.study.objective.Objective with a stopwatch on each part.

TimedObjective times the whole objective call, the training inside it (core.train.train, epoch callbacks
included) and the epoch callbacks (report, should_prune and user attrs: storage and pruner), one TrialTiming
per trial in `timings`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import optuna

from hpo.study.hooks import NO_HOOKS
from hpo.study.objective import Objective


@dataclass(frozen=True)
class TrialTiming:
    """Where one trial's seconds went, as the objective saw them."""

    number: int  # trial number
    total_s: float  # the objective call, start to end
    train_s: float  # inside core.train.train, epoch callbacks included
    callback_s: float  # inside the epoch callbacks: report, should_prune, user attrs (storage + pruner)


class TimedObjective(Objective):
    """An Objective that keeps a TrialTiming of every trial it runs in `timings`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.timings: list[TrialTiming] = []

    def __call__(self, trial: optuna.Trial, hooks=NO_HOOKS):
        self._spent = {"train": 0.0, "callback": 0.0}
        start = time.perf_counter()
        try:
            return super().__call__(trial, hooks)
        finally:
            total = time.perf_counter() - start
            self.timings.append(TrialTiming(trial.number, total, self._spent["train"], self._spent["callback"]))

    def train(self, cfg, on_epoch, on_step):
        def timed(epoch: int, metrics: dict) -> None:
            t0 = time.perf_counter()
            try:
                on_epoch(epoch, metrics)
            finally:
                self._spent["callback"] += time.perf_counter() - t0

        start = time.perf_counter()
        try:
            return super().train(cfg, timed, on_step)
        finally:
            self._spent["train"] = time.perf_counter() - start
