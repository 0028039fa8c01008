"""Every name hpo takes from Optuna's private API, in one place, and `check`, which hpo.storage.open_storage runs so
that a missing one is a one-line error instead of a silent loss of cover (why each is needed: DESIGN §7).
"""

from __future__ import annotations

import optuna
from optuna.artifacts import FileSystemArtifactStore
from optuna.storages import RDBStorage
from optuna.storages._cached_storage import _CachedStorage
from optuna.storages._rdb import models
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.trial import FrozenTrial, Trial

from core.errors import CovblendError

# Private RDBStorage methods hpo overrides or calls; check() adds those hpo.storage.guard retries.
RDB_METHODS = ("_get_prepared_new_trial", "_get_stale_trial_ids")
# The table layout hpo reads and writes: model -> columns.
TABLES = {
    "StudyModel": ("study_id", "study_name"),
    "StudySystemAttributeModel": ("study_id", "key", "value_json"),
    "TrialModel": ("trial_id", "study_id", "number", "state"),
    "TrialUserAttributeModel": ("trial_id", "key", "value_json"),
    "TrialSystemAttributeModel": ("trial_id", "key", "value_json"),
    "TrialIntermediateValueModel": ("trial_id", "step", "intermediate_value", "intermediate_value_type"),
    "TrialHeartbeatModel": ("trial_id",),
}
# Attributes set in __init__ that hpo reads: class -> names.
INSTANCE_ATTRS = {
    optuna.Study: ("_storage", "_study_id"),
    Trial: ("_trial_id", "_cached_frozen_trial"),
    FrozenTrial: ("_trial_id",),
    _CachedStorage: ("_backend",),
    FileSystemArtifactStore: ("_base_path",),
}


class OptunaChanged(CovblendError):
    """The installed Optuna lacks a private name hpo relies on; one line naming it."""


def missing(extra_methods: tuple[str, ...] = ()) -> list[str]:
    """The private names (as "Class.name") this Optuna lacks; [] when everything hpo uses is there."""
    gone = [f"RDBStorage.{m}" for m in (*RDB_METHODS, *extra_methods) if not hasattr(RDBStorage, m)]
    gone += [f"_rdb.models.{m}" for m in ("NOT_FOUND_MSG", *TABLES) if not hasattr(models, m)]
    for model, columns in TABLES.items():
        gone += [f"{model}.{c}" for c in columns if hasattr(models, model) and not hasattr(getattr(models, model), c)]
    if not hasattr(getattr(models, "TrialIntermediateValueModel", None), "intermediate_value_to_stored_repr"):
        gone.append("TrialIntermediateValueModel.intermediate_value_to_stored_repr")
    if not hasattr(Trial, "_get_latest_trial"):
        gone.append("Trial._get_latest_trial")
    for cls, names in INSTANCE_ATTRS.items():
        gone += [f"{cls.__name__}.{n}" for n in names if n not in cls.__init__.__code__.co_names]
    return gone


def check(extra_methods: tuple[str, ...] = ()) -> None:
    """Raise OptunaChanged naming the first missing private name (extra_methods: more RDBStorage methods)."""
    gone = missing(extra_methods)
    if gone:
        raise OptunaChanged(
            f"optuna {optuna.__version__} lacks {gone[0]}, which hpo.storage relies on"
            f"{f' (and {len(gone) - 1} more)' if len(gone) > 1 else ''}; install the version pyproject.toml pins"
        )


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage a study reads and writes through (Optuna's per-study cache over an RDB storage)."""
    return study._storage


def backend(storage: optuna.storages.BaseStorage) -> optuna.storages.BaseStorage:
    """The storage under Optuna's per-study cache (create_study wraps an RDBStorage in a _CachedStorage)."""
    return storage._backend if isinstance(storage, _CachedStorage) else storage


def study_id(study: optuna.Study) -> int:
    return study._study_id


def trial_id(trial: Trial | FrozenTrial) -> int:
    """The trial's id in storage (trial.number counts within its study only)."""
    return trial._trial_id


def latest(trial: Trial) -> FrozenTrial:
    """The trial as stored now (what a pruner reads); Trial has no public twin."""
    return trial._get_latest_trial()


def cached(trial: Trial) -> FrozenTrial:
    """The trial's cached copy, which trial.user_attrs and the pruner read until the trial ends."""
    return trial._cached_frozen_trial


def artifact_dir(store: FileSystemArtifactStore):
    """The folder a FileSystemArtifactStore keeps its files in, for messages."""
    return store._base_path


def transaction(storage: RDBStorage):
    """A session on `storage` that commits when the block ends and rolls back on an error (Optuna's own helper;
    an IntegrityError from a concurrent insert of the same key is ignored, as Optuna does)."""
    return _create_scoped_session(storage.scoped_session, True)
