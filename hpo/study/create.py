"""A study from a spec: created in storage on first use, joined afterwards if it still fits the spec."""

from __future__ import annotations

import unicodedata
import warnings

import optuna

from core.errors import ConfigError, CovblendError
from hpo.study import registry, seeds
from hpo.study.spec import OBJECTIVE_ALIASES, StudySpec
from hpo.study.stored_spec import store_spec

METRIC_NAMES_ATTR = "study:metric_names"  # where Study.set_metric_names keeps the names (a study system attr)
MAX_NAME = 512  # characters of Optuna's studies.study_name column (VARCHAR(512) on PostgreSQL)
# Unicode categories a name must not hold: controls (newline, escape), format characters (right-to-left overrides,
# zero-width spaces) and line or paragraph separators, which would let a name rewrite the terminal it is shown on.
HIDDEN = ("Cc", "Cf", "Zl", "Zp")


class StudyNameError(ConfigError):
    """A study name that storage cannot hold or a terminal would not show as it is."""


def check_study_name(name: str) -> None:
    """Raise StudyNameError unless `name` has 1 to MAX_NAME characters, none of them HIDDEN, and neither begins
    nor ends with whitespace (a blank name, or "quick " beside "quick", cannot be told apart in a table); run it
    before anything is written (a name the database refuses would otherwise fail after the tables exist)."""
    if not 1 <= len(name) <= MAX_NAME:
        raise StudyNameError(f"study name must have 1 to {MAX_NAME} characters, got {len(name)}: {ascii(name[:40])}…")
    hidden = [c for c in name if unicodedata.category(c) in HIDDEN]
    if hidden:
        raise StudyNameError(f"study name must not hold control or invisible characters, got {ascii(name)}")
    if name != name.strip():
        raise StudyNameError(f"study name must not begin or end with whitespace, got {ascii(name)}")


class StudyMismatchError(CovblendError):
    """An existing study cannot be joined with this spec (other metrics or objective directions)."""


def create_or_join(
    spec: StudySpec, storage: optuna.storages.BaseStorage, study_name: str | None = None, seed: int | None = None
) -> tuple[optuna.Study, list[str]]:
    """The study `study_name` (default: the spec's name), created if missing; returns it and any warnings."""
    name = spec.name if study_name is None else study_name
    seed = spec.sampler.seed if seed is None else seed
    existing = name in optuna.get_all_study_names(storage)
    if existing:
        study_id = storage.get_study_id_from_name(name)
        measured = storage.get_study_system_attrs(study_id).get(METRIC_NAMES_ATTR)
        if measured is not None and measured != spec.study.metric_names:
            raise StudyMismatchError(
                f"study {name!r} measured {measured}, but spec {spec.path} asks for {spec.study.metric_names}: "
                "their values do not compare; give the new study another name (--study-name)"
            )
        have = [d.name.lower() for d in storage.get_study_directions(study_id)]
        if have != spec.study.directions:
            raise StudyMismatchError(
                f"study {name!r} optimises {have}, but spec {spec.path} asks for {spec.study.directions}"
            )
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        sampler=registry.sampler(spec, seed),
        pruner=registry.pruner(spec),
        directions=spec.study.directions,
        load_if_exists=True,
    )
    stored = study.user_attrs.get("objective")
    if existing and stored is not None and OBJECTIVE_ALIASES.get(stored, stored) != spec.study.objective:
        raise StudyMismatchError(
            f"study {name!r} optimises {stored!r}, but spec {spec.path} asks for {spec.study.objective!r}"
        )
    notes = []
    if not existing:
        store_spec(study, spec)  # retrain and others need only the study from now on
        study.set_user_attr("spec", spec.name)
        study.set_user_attr("spec_hash", spec.digest)
        study.set_user_attr("objective", spec.study.objective)
        study.set_user_attr("description", spec.study.description)
        if spec.sampler.seed is None:  # the base its processes' seeds derive from (hpo.study.seeds)
            study.set_user_attr(seeds.STUDY_SEED_ATTR, seeds.draw_seed())
    if not existing or study.metric_names is None:  # studies created before names were set get them on joining
        with warnings.catch_warnings():  # experimental since Optuna 3.2, and what the dashboard reads
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(spec.study.metric_names)
    if existing and study.user_attrs.get("spec_hash") != spec.digest:
        notes.append(f"study {name!r} was created from a different version of {spec.path}; joining anyway")
    return study, notes
