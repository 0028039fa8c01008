"""The spec a study was created from, kept in the study itself.

`hpo run` stores the resolved spec (its TOML table with `extends` merged in, and the path it came from) as the
study's system attr "spec" when it creates the study, so commands that start from a study (`hpo retrain`) need
only its name and storage: the spec may live anywhere, or be gone or edited since. Studies created before this
have no such attr; for them the "spec" user attr names studies/NAME.toml, as before.
"""

from __future__ import annotations

import optuna

from hpo.storage import internals
from hpo.study.spec import StudySpec, load_spec

SPEC_ATTR = "spec"  # study system attr: {"path": str, "table": the resolved TOML table}


def store_spec(study: optuna.Study, spec: StudySpec) -> None:
    """Keep `spec` in `study` (JSON, as Optuna stores attrs); the dashboard does not show system attrs."""
    storage, study_id = internals.storage_of(study), internals.study_id(study)
    storage.set_study_system_attr(study_id, SPEC_ATTR, {"path": str(spec.path), "table": spec.table})


def spec_of(study: optuna.Study) -> StudySpec:
    """The spec `study` was created from, validated again; raises SpecError (one line) when it cannot be had."""
    stored = internals.storage_of(study).get_study_system_attrs(internals.study_id(study)).get(SPEC_ATTR)
    if stored is None:  # a study from before specs were stored: its spec file by name
        return load_spec(study.user_attrs.get("spec", study.study_name))
    return load_spec(stored["path"], table=stored["table"])
