"""The samplers and pruners a spec may name: the settings each pruner takes, and how each one is built.

hpo.study.spec checks `[sampler] name` and `[pruner]` against these names and settings; create_or_join builds
the study's sampler and pruner from them. Samplers read constraints set by trial.set_constraint (Optuna 5).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import optuna

from hpo.study.pruners import ParetoRungPruner, Rungs

if TYPE_CHECKING:  # the spec is only read here; hpo.study.spec imports this module for the names
    from hpo.study.spec import StudySpec

MAX_SEED = 2**32 - 1  # the largest seed numpy's RandomState, and so every Optuna sampler, accepts
SAMPLERS: dict[str, Callable[[StudySpec, int | None], optuna.samplers.BaseSampler]] = {
    "tpe": lambda s, seed: optuna.samplers.TPESampler(seed=seed, n_startup_trials=s.sampler.n_startup_trials),
    "gp": lambda s, seed: optuna.samplers.GPSampler(seed=seed, n_startup_trials=s.sampler.n_startup_trials),
    "random": lambda s, seed: optuna.samplers.RandomSampler(seed=seed),
    "cmaes": lambda s, seed: optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=s.sampler.n_startup_trials),
}
# Pruner name -> (its class, the [pruner] settings it takes besides `name`, passed to it as keywords).
PRUNERS: dict[str, tuple[type[optuna.pruners.BasePruner], tuple[str, ...]]] = {
    "median": (optuna.pruners.MedianPruner, ("n_startup_trials", "n_warmup_steps")),
    "hyperband": (optuna.pruners.HyperbandPruner, ("min_resource", "reduction_factor")),
    "successive-halving": (optuna.pruners.SuccessiveHalvingPruner, ("min_resource", "reduction_factor")),
    "mo-asha": (ParetoRungPruner, tuple(Rungs.model_fields)),  # multi-objective studies (hpo.study.pruners)
    "none": (optuna.pruners.NopPruner, ()),
}
# Settings a pruner takes from elsewhere in the spec: Hyperband's last rung is a trial's full training.
FROM_SPEC: dict[str, Callable[[StudySpec], dict]] = {"hyperband": lambda s: {"max_resource": s.train.epochs}}
PRUNER_SETTINGS: dict[str, tuple[str, ...]] = {name: settings for name, (_, settings) in PRUNERS.items()}


def sampler(spec: StudySpec, seed: int | None) -> optuna.samplers.BaseSampler:
    """The spec's sampler with this seed (None: unseeded)."""
    return SAMPLERS[spec.sampler.name](spec, seed)


def pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    """The spec's pruner, built from its [pruner] settings."""
    cls, settings = PRUNERS[spec.pruner.name]
    from_spec = FROM_SPEC.get(spec.pruner.name, lambda s: {})(spec)
    return cls(**{key: getattr(spec.pruner, key) for key in settings}, **from_spec)
