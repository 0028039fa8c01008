"""What the loop that runs trials (hpo.run.runner) gives an objective to hear from inside a trial. A module of
its own, without the trainer's imports, so that a worker whose objective is not the trainer (benchmarks/probe.py)
starts without importing torch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class TrialHooks:
    """What the loop that runs a trial (hpo.run.runner) hears from inside it."""

    on_epoch: Callable[[int, int, dict], None] | None = None  # (trial number, epoch, metrics): its live display
    on_step: Callable[[int, int], None] | None = None  # (epoch, step) of core.train: its stop check


NO_HOOKS = TrialHooks()  # a trial nobody watches (study.optimize calls the objective with the trial alone)
