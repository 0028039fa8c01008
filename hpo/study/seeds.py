"""Sampler seeds, one per process that samples a study (DESIGN §7).

Every process that runs trials (`hpo run`, each `--workers` child, compose replicas, other hosts) claims the
next process number of the study from its storage (GuardedStorage.claim_process: 0, 1, 2, ... each given once)
and samples with seed + number. Distinct numbers give distinct seeds, so separate processes never replay one
another's random draws, by construction and without any clock or host name; and the first process of a new
study keeps the seed unchanged, so a lone `hpo run --seed S` on a new study repeats its params exactly.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

import optuna

from hpo.storage import internals
from hpo.storage.guard import PROCESSES_ATTR, GuardedStorage
from hpo.study import registry

if TYPE_CHECKING:  # read only; importing the spec's module would import the trainer's, and torch, into every worker
    from hpo.study.spec import StudySpec

STUDY_SEED_ATTR = "sampler_seed"  # study user attr: the base seed drawn at creation for a spec that has none
SEED_ATTR = "sampler_seed"  # trial user attr: the seed of the process that sampled it
PROCESS_ATTR = "sampler_process"  # trial user attr: that process's number in the study


def process_seed(seed: int, number: int) -> int:
    """The sampler seed of the study's process `number` for the base `seed`: seed itself for the first."""
    return (seed + number) % (registry.MAX_SEED + 1)


def draw_seed() -> int:
    """A random base seed, for a study whose spec gives none (stored in the study, so its processes share it)."""
    return secrets.randbelow(registry.MAX_SEED + 1)


def reseed(study: optuna.Study, spec: StudySpec, seed: int | None = None) -> dict[str, int]:
    """Give `study` this process's sampler: base seed `seed` (`hpo run --seed`), else the spec's, else the one
    drawn when the study was created. Returns the user attrs each trial of this process records."""
    base = next((s for s in (seed, spec.sampler.seed, study.user_attrs.get(STUDY_SEED_ATTR)) if s is not None), None)
    if base is None:  # a study created before bases were stored: its processes draw apart
        base = draw_seed()
    number = _claim(study)
    study.sampler = registry.sampler(spec, process_seed(base, number))
    return {SEED_ATTR: process_seed(base, number), PROCESS_ATTR: number}


def _claim(study: optuna.Study) -> int:
    """This process's number in the study: claimed atomically on a GuardedStorage; elsewhere (an in-memory
    storage, which one process alone can use) counted in the study's system attrs."""
    storage = internals.backend(internals.storage_of(study))
    if isinstance(storage, GuardedStorage):
        return storage.claim_process(internals.study_id(study))
    number = storage.get_study_system_attrs(internals.study_id(study)).get(PROCESSES_ATTR, 0)
    storage.set_study_system_attr(internals.study_id(study), PROCESSES_ATTR, number + 1)
    return number
