"""Best-so-far checkpoints as Optuna artifacts in a FileSystemArtifactStore (`--artifacts`, $HPO_ARTIFACTS).

A COMPLETE trial uploads its checkpoint only when it beats every trial that completed before it
(hpo.study.ranking.beats_best), so the store grows by one file per improvement, not per trial, and the trial
`hpo best` names always has its checkpoint.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import optuna
from optuna.artifacts import FileSystemArtifactStore, download_artifact, get_all_artifact_meta, upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.trial import FrozenTrial

from core.errors import CovblendError
from core.train import TrainResult, save_checkpoint
from hpo.paths import prepare_output
from hpo.storage import internals

ENV = "HPO_ARTIFACTS"
DEFAULT_DIR = "artifacts"
CHECKPOINT_ATTR = "checkpoint_artifact"  # user attr of a trial: the artifact id of its checkpoint
CHECKPOINT_SUFFIX = ".pt"


def resolve_dir(path: str | Path | None = None) -> Path:
    """The artifact directory: the option if given, else $HPO_ARTIFACTS, else ./artifacts."""
    return Path(path or os.environ.get(ENV) or DEFAULT_DIR)


def check_store(path: str | Path | None = None) -> None:
    """Raise CovblendError unless open_store(path) can make or use its folder (it or its nearest existing parent is
    a directory this process may write in); creates nothing, so `hpo run` checks it before the study exists."""
    folder = resolve_dir(path)
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise CovblendError(f"artifact directory {folder}: {existing} is a file (--artifacts / ${ENV})")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise CovblendError(f"artifact directory {folder}: {existing} is not writable (--artifacts / ${ENV})")


def open_store(path: str | Path | None = None, *, create: bool = True) -> FileSystemArtifactStore:
    """The store in resolve_dir(path); created when missing (create=True) or a CovblendError naming it."""
    folder = resolve_dir(path)
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CovblendError(f"cannot create artifact directory {folder}: {e.strerror}") from None
    if not folder.is_dir():
        raise CovblendError(f"artifact directory {folder} does not exist (--artifacts / ${ENV})")
    return FileSystemArtifactStore(folder)


def read_store(path: str | Path | None = None) -> FileSystemArtifactStore:
    """The store in resolve_dir(path), for reading only: never created, and a missing folder holds no artifacts (its
    reads raise ArtifactNotFound); a CovblendError when the path is a file."""
    check_store(path)
    return FileSystemArtifactStore(resolve_dir(path))


class CheckpointNotInStore(CovblendError):
    """The study records a trial's checkpoint, but the artifact store it was opened on does not hold the file."""


def upload_checkpoint(trial: optuna.Trial, result: TrainResult, store: FileSystemArtifactStore) -> str:
    """Save the trained model with core.train.save_checkpoint and attach it to the trial; returns the artifact id."""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"checkpoint-trial-{trial.number}{CHECKPOINT_SUFFIX}"
            save_checkpoint(path, result, result.cfg)
            artifact_id = upload_artifact(
                study_or_trial=trial, file_path=str(path), artifact_store=store, mimetype="application/octet-stream"
            )
    except OSError as e:  # a full or read-only artifact disk fails the trial with a readable fail_reason
        raise CovblendError(f"cannot store the checkpoint of trial #{trial.number}: {e}") from None
    trial.set_user_attr(CHECKPOINT_ATTR, artifact_id)
    return artifact_id


def checkpoint_id(study: optuna.Study, trial: FrozenTrial) -> str | None:
    """The artifact id of the trial's uploaded checkpoint, or None."""
    metas = get_all_artifact_meta(trial, storage=internals.storage_of(study))
    found = [m.artifact_id for m in metas if m.filename.endswith(CHECKPOINT_SUFFIX)]
    return found[-1] if found else None


def download_checkpoint(study: optuna.Study, trial: FrozenTrial, store: FileSystemArtifactStore, path: Path) -> Path:
    """Copy the trial's checkpoint to `path` (which must not exist); a CovblendError says why it cannot."""
    artifact_id = checkpoint_id(study, trial)
    if artifact_id is None:
        raise CovblendError(f"trial #{trial.number} of {study.study_name!r} has no checkpoint artifact")
    if path.exists():
        raise CovblendError(f"{path} already exists; choose another --download path")
    try:
        store.open_reader(artifact_id).close()  # before out/ is made: a checkpoint not in the store leaves none behind
        prepare_output(path)
        download_artifact(artifact_store=store, file_path=str(path), artifact_id=artifact_id)
    except ArtifactNotFound:
        folder = internals.artifact_dir(store)
        raise CheckpointNotInStore(
            f"checkpoint {artifact_id} of trial #{trial.number} is not in {folder} (--artifacts / ${ENV})"
        ) from None
    return path
