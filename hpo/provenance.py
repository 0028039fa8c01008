"""What a result depends on: installed versions of this project and its numeric and storage libraries, and
where the process ran (its device, under `hpo run --gpus` the GPU it was given, and the Slurm job it ran in)."""

from __future__ import annotations

import os
from importlib import metadata

import torch

from core.train import resolve_device
from hpo import batch

PACKAGES = ("covblend-hpo", "torch", "optuna", "optuna-dashboard", "sqlalchemy", "psycopg", "numpy")


def versions() -> dict[str, str]:
    """Installed versions of this project and the libraries its results depend on."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def placement(device: str) -> dict[str, str | int]:
    """Where this process trains on `device` (a TrainConfig device, "auto" resolved here), as user attrs.

    "device": the torch device ("cpu", "cuda"); "cuda_visible_devices": the GPUs this process was given
    (`hpo run --gpus` sets it per worker, Slurm's --gres for its job), when set; "gpu_name": the GPU's model, when
    training on CUDA; "slurm_job_id", "slurm_array_job_id", "slurm_array_task_id": the batch job, when in one.
    """
    resolved = resolve_device(device)
    found: dict[str, str | int] = {"device": resolved.type, **batch.job()}
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        found["cuda_visible_devices"] = visible
    if resolved.type == "cuda":
        found["gpu_name"] = torch.cuda.get_device_name(resolved)
    return found
