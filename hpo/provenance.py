"""What a result depends on: installed versions of this project and its numeric and storage libraries, and
where the process ran (its device, and under `hpo run --gpus` the GPU it was given)."""

from __future__ import annotations

import os
from importlib import metadata

import torch

from core.train import resolve_device

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


def placement(device: str) -> dict[str, str]:
    """Where this process trains on `device` (a TrainConfig device, "auto" resolved here), as user attrs.

    "device": the torch device ("cpu", "cuda"); "cuda_visible_devices": the GPUs this process was given
    (`hpo run --gpus` sets it per worker), when set; "gpu_name": the GPU's model, when training on CUDA.
    """
    resolved = resolve_device(device)
    found = {"device": resolved.type}
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        found["cuda_visible_devices"] = visible
    if resolved.type == "cuda":
        found["gpu_name"] = torch.cuda.get_device_name(resolved)
    return found
