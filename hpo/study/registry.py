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

SAMPLERS: dict[str, Callable[[StudySpec, int | None], optuna.samplers.BaseSampler]] = {
    "tpe": lambda s, seed: optuna.samplers.TPESampler(seed=seed, n_startup_trials=s.sampler.n_startup_trials),
    "gp": lambda s, seed: optuna.samplers.GPSampler(seed=seed, n_startup_trials=s.sampler.n_startup_trials),
    "random": lambda s, seed: optuna.samplers.RandomSampler(seed=seed),
    "cmaes": lambda s, seed: optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=s.sampler.n_startup_trials),
}
# Pruner name -> (the [pruner] settings it accepts besides `name`, how it is built).
PRUNERS: dict[str, tuple[tuple[str, ...], Callable[[StudySpec], optuna.pruners.BasePruner]]] = {
    "median": (
        ("n_startup_trials", "n_warmup_steps"),
        lambda s: optuna.pruners.MedianPruner(
            n_startup_trials=s.pruner.n_startup_trials, n_warmup_steps=s.pruner.n_warmup_steps
        ),
    ),
    "hyperband": (
        ("min_resource", "reduction_factor"),
        lambda s: optuna.pruners.HyperbandPruner(
            min_resource=s.pruner.min_resource, max_resource=s.train.epochs, reduction_factor=s.pruner.reduction_factor
        ),
    ),
    "successive-halving": (
        ("min_resource", "reduction_factor"),
        lambda s: optuna.pruners.SuccessiveHalvingPruner(
            min_resource=s.pruner.min_resource, reduction_factor=s.pruner.reduction_factor
        ),
    ),
    "mo-asha": (  # multi-objective studies (hpo.study.pruners)
        tuple(Rungs.model_fields),
        lambda s: ParetoRungPruner(**s.pruner.model_dump(include=set(Rungs.model_fields))),
    ),
    "none": ((), lambda s: optuna.pruners.NopPruner()),
}
SAMPLER_NAMES: tuple[str, ...] = tuple(SAMPLERS)
PRUNER_SETTINGS: dict[str, tuple[str, ...]] = {name: settings for name, (settings, _) in PRUNERS.items()}


def sampler(spec: StudySpec, seed: int | None) -> optuna.samplers.BaseSampler:
    """The spec's sampler with this seed (None: unseeded)."""
    return SAMPLERS[spec.sampler.name](spec, seed)


def pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    return PRUNERS[spec.pruner.name][1](spec)
