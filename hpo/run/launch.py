"""`hpo run` from start to end: prepare() validates everything before it writes (the study is the first thing it
creates), run_trials() uses the study's budget here or in worker processes, save_figures() stores what the
dashboard shows."""

from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import dataclass

import optuna
from optuna.artifacts import FileSystemArtifactStore
from optuna.trial import TrialState
from rich.console import Console

from core.errors import CovblendError
from core.train import resolve_device
from hpo import batch, console
from hpo.results.plots import figure_eval, save_study_plots
from hpo.run.display import run_view, step
from hpo.run.gpus import requested_gpus
from hpo.run.runner import run_worker
from hpo.run.workers import run_parallel
from hpo.storage import open_storage
from hpo.storage.urls import resolve_url
from hpo.study.create import check_study_name, create_or_join
from hpo.study.objective import Objective
from hpo.study.spec import StudySpec, load_spec


@dataclass(frozen=True)
class Launch:
    """A study ready to run: its spec, the study in storage and where, its budget and GPUs."""

    spec: StudySpec
    study: optuna.Study
    url: str  # the storage URL, password included; print it through hpo.storage.urls.mask
    budget: int  # the study's total trials across runs and workers
    gpus: tuple[int, ...]  # checked GPU indices of --gpus; () for none
    notes: list[str]  # warnings from joining the study


def prepare(
    spec_name: str,
    storage: str | None,
    n_trials: int | None = None,
    seed: int | None = None,
    study_name: str | None = None,
    gpus: str | None = None,
) -> Launch:
    """Load and check the spec, the GPUs and the device, open the storage and create or join the study."""
    spec = load_spec(spec_name)  # validated before anything touches storage
    allocated = batch.cpus()  # a Slurm task's CPUs are its threads, as cores // W are a --workers child's
    if allocated is not None:
        spec = spec.replace(train=spec.train.replace(threads=allocated))  # recorded as each trial's `threads`
    gpu_ids = requested_gpus(gpus, spec.train.device)  # so are the GPUs: a bad --gpus writes nothing
    resolve_device(spec.train.device)  # device = "cuda" without one is an error here, not a FAIL per trial
    check_study_name(spec.name if study_name is None else study_name)  # --study-name '' is no default
    url = resolve_url(storage)
    opened = open_storage(url)
    optuna.logging.set_verbosity(logging.ERROR)  # the live table and fail_reason attrs say it better
    study, notes = create_or_join(spec, opened, study_name, seed)
    return Launch(spec, study, url, n_trials or spec.study.n_trials, gpu_ids, notes)


def run_trials(
    launch: Launch,
    store: FileSystemArtifactStore,
    *,
    workers: int = 1,
    timeout: float | None = None,
    seed: int | None = None,
    view: Console | None = None,
) -> None:
    """Run trials until the budget is used: in `workers` processes (or one per GPU placement), else here.

    store receives best-so-far checkpoints; view (None: none) shows the live display. Raises RunInterrupted
    when a signal stopped the run, and CovblendError when every trial that finished during the run failed (a spec
    the machine cannot run fails each trial alike: such a run must not exit 0).
    """
    spec, study = launch.spec, launch.study
    finished_before = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}
    objective = Objective(spec, artifacts=store)
    if workers > 1 or launch.gpus:  # a GPU is given through CUDA_VISIBLE_DEVICES, so in a worker process
        run_parallel(
            spec, study, launch.url, launch.budget, workers, timeout=timeout, seed=seed, view=view,
            objective_kwargs={"artifacts": store}, gpus=launch.gpus,
        )  # fmt: skip
    else:
        with run_view(view, launch.budget, spec.train.epochs) if view is not None else nullcontext() as live:
            run_worker(spec, study, launch.budget, timeout=timeout, seed=seed, watcher=live, objective=objective)
    ran = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished() and t.number not in finished_before]
    if ran and all(t.state == TrialState.FAIL for t in ran):
        reason = " ".join(str(ran[0].user_attrs.get("fail_reason", "no fail_reason recorded")).split())
        raise CovblendError(f"all {len(ran)} trials of this run failed; trial #{ran[0].number}: {reason[:300]}")


def save_figures(study: optuna.Study, store: FileSystemArtifactStore, view: Console) -> None:
    """The dashboard's study figures (RMSE vs SNR of the best trial, prune reasons), announced on `view`; a
    figure that cannot be made (e.g. the best checkpoint is not in this store) is a warning: the trials stand."""
    cfg = figure_eval(study)
    points = f"{cfg.n_scenes} scenes at each of {len(cfg.snr_grid_db)} SNRs"
    with step(view, f"building the study figures: RMSE vs SNR on {points}, prune reasons"):
        try:
            save_study_plots(study, store, cfg)
        except CovblendError as e:
            console.warn(f"RMSE-vs-SNR figure skipped: {e}")
