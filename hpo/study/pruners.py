"""A pruner for multi-objective studies, which Optuna's pruners refuse (trial.report and should_prune raise).

ParetoRungPruner works in the spirit of MO-ASHA (Schmucker et al., 2021): rungs sit at min_resource·η^k
epochs, and a trial that reaches a rung is compared, at that same epoch, with every other trial of the study
that got there (complete, pruned or still running). It is pruned when more than `dominated_fraction` of them
dominate it (no worse in every objective and better in one). A trial on the running Pareto front is dominated
by nobody, so it is never pruned; one deep behind the front is.

Each trial's curve lives in its user attr CURVE_ATTR (hpo.study.objective writes it). Rung k is checked at the
first recorded step at or after min_resource·η^k − 1, so a metric computed every few epochs still meets every rung.
"""

from __future__ import annotations

import math

import optuna
from optuna.trial import FrozenTrial
from pydantic import Field

from core.configs import Config
from hpo.study.ranking import dominates, signed

CURVE_ATTR = "objective_curve"  # user attr: {"<step>": [values]}, one entry per epoch with objective values


def curve(trial: FrozenTrial) -> dict[int, list[float]]:
    """The trial's objective values by step (0-based epoch); empty when it recorded none."""
    return {int(step): values for step, values in trial.user_attrs.get(CURVE_ATTR, {}).items()}


class Rungs(Config):
    """ParetoRungPruner's settings, all required: a study's come from its spec's [pruner] (hpo.study.spec.PrunerSpec
    declares the defaults, once)."""

    min_resource: int = Field(ge=1)  # epochs of the first rung
    reduction_factor: int = Field(ge=2)  # η: rung k at min_resource·η^k epochs
    n_startup_trials: int = Field(ge=1)  # peers a rung needs before it prunes anyone
    # The share of peers that may dominate a trial before it is pruned: ASHA keeps 1/η; 0.5 keeps the front and
    # everything within half the field of it.
    dominated_fraction: float = Field(ge=0, lt=1)


class ParetoRungPruner(optuna.pruners.BasePruner):
    """Prune a trial at a rung when more than dominated_fraction of its peers at that epoch dominate it."""

    def __init__(self, **settings) -> None:
        """settings: those of Rungs; one out of its range is a ConfigError naming it."""
        self.rungs = Rungs(**settings)

    def rung_steps(self, up_to: int) -> list[int]:
        """The 0-based steps of the rungs up to step up_to: min_resource·η^k − 1."""
        steps, epochs = [], self.rungs.min_resource
        while epochs - 1 <= up_to:
            steps.append(epochs - 1)
            epochs *= self.rungs.reduction_factor
        return steps

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        """Whether `trial`, at its latest recorded step, falls too far behind the front of its peers there."""
        mine = curve(trial)
        if not mine:
            return False
        recorded = sorted(mine)
        step, previous = recorded[-1], recorded[-2] if len(recorded) > 1 else -1
        if not any(previous < r <= step for r in self.rung_steps(step)):
            return False  # no rung between the last check and now
        me = signed(mine[step], study.directions)
        if not all(math.isfinite(v) for v in me):
            return True  # a non-finite objective can only get worse; Optuna's pruners prune nan too
        peers = []
        for other in study.get_trials(deepcopy=False):
            values = curve(other).get(step) if other.number != trial.number else None
            if values is not None and all(math.isfinite(v) for v in values):
                peers.append(signed(values, study.directions))
        if len(peers) < self.rungs.n_startup_trials:
            return False
        return sum(dominates(p, me) for p in peers) > self.rungs.dominated_fraction * len(peers)
