"""Best-so-far checkpoints as Optuna artifacts in a FileSystemArtifactStore (`--artifacts`, $HPO_ARTIFACTS).

A COMPLETE trial uploads its checkpoint only when it beats every trial that completed before it, so the store
grows by one file per improvement, not per trial. Ranking follows hpo.results.report.best: feasible (eigengap-health
constraint met) before infeasible, then the objective value; in a multi-objective study a trial uploads when
no completed trial dominates it. Either way the trial `hpo best` names always has its checkpoint.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import optuna
from optuna.artifacts import FileSystemArtifactStore, download_artifact, get_all_artifact_meta, upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.trial import FrozenTrial, TrialState

from core.errors import CovblendError
from core.train import TrainResult, save_checkpoint
from hpo.study.spec import is_feasible

ENV = "HPO_ARTIFACTS"
DEFAULT_DIR = "artifacts"
CHECKPOINT_ATTR = "checkpoint_artifact"  # user attr of a trial: the artifact id of its checkpoint
CHECKPOINT_SUFFIX = ".pt"


def resolve_dir(path: str | Path | None = None) -> Path:
    """The artifact directory: the option if given, else $HPO_ARTIFACTS, else ./artifacts."""
    return Path(path or os.environ.get(ENV) or DEFAULT_DIR)


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


def _signs(study: optuna.Study) -> list[float]:
    """+1 for minimised, -1 for maximised objectives: sign * value is always 'lower is better'."""
    return [1.0 if d == optuna.study.StudyDirection.MINIMIZE else -1.0 for d in study.directions]


def beats_best(study: optuna.Study, values: Sequence[float], feasible: bool = True) -> bool:
    """Whether a trial with these objective values beats every COMPLETE trial of the study so far."""
    signs = _signs(study)
    mine = [s * v for s, v in zip(signs, values, strict=True)]
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(signs) == 1:
        return all((not feasible, mine[0]) < (not is_feasible(t.constraints), signs[0] * t.values[0]) for t in done)
    for t in done:
        other = [s * v for s, v in zip(signs, t.values, strict=True)]
        if all(o <= m for o, m in zip(other, mine, strict=True)) and other != mine:
            return False
    return True


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


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The trial hpo.results.report.best names; for a multi-objective study, the Pareto trial with the lowest
    first value."""
    from hpo.results.report import best

    summary = best(study)
    chosen = summary.get("best") or min(summary.get("pareto_front", []), key=lambda t: t["values"][0], default=None)
    if chosen is None:
        return None
    return study.get_trials(deepcopy=False)[chosen["number"]]


def checkpoint_id(study: optuna.Study, trial: FrozenTrial) -> str | None:
    """The artifact id of the trial's uploaded checkpoint, or None."""
    metas = get_all_artifact_meta(trial, storage=study._storage)
    found = [m.artifact_id for m in metas if m.filename.endswith(CHECKPOINT_SUFFIX)]
    return found[-1] if found else None


def download_checkpoint(study: optuna.Study, trial: FrozenTrial, store: FileSystemArtifactStore, path: Path) -> Path:
    """Copy the trial's checkpoint to `path` (which must not exist); a CovblendError says why it cannot."""
    artifact_id = checkpoint_id(study, trial)
    if artifact_id is None:
        raise CovblendError(f"trial #{trial.number} of {study.study_name!r} has no checkpoint artifact")
    if path.exists():
        raise CovblendError(f"{path} already exists; choose another --download path")
    if not path.parent.is_dir():
        raise CovblendError(f"cannot write {path}: directory {path.parent} does not exist")
    try:
        download_artifact(artifact_store=store, file_path=str(path), artifact_id=artifact_id)
    except ArtifactNotFound:
        raise CovblendError(
            f"checkpoint {artifact_id} of trial #{trial.number} is not in {store._base_path} (--artifacts / ${ENV})"
        ) from None
    return path
