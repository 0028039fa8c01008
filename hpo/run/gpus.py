"""GPU placement of `hpo run --workers W --gpus 0,1,…`: the CUDA_VISIBLE_DEVICES of each worker process (DESIGN §7).

Round-robin: `--workers 8 --gpus 0,1` puts workers 0, 2, 4, 6 on GPU 0 and the others on GPU 1. Under the parent's
own CUDA_VISIBLE_DEVICES=2,3, `--gpus 1` is physical GPU 3, as torch would number it. hpo.run.launch.prepare checks
--gpus (requested_gpus) before anything touches the database.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from core.errors import CovblendError

GPUS_ENV = "HPO_GPUS"  # the environment's default for --gpus


def parse_gpus(text: str) -> tuple[int, ...]:
    """Device indices from "0,1,…": integers >= 0, no duplicates, at least one. A CovblendError names the value."""
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isascii() and p.isdigit() for p in parts):
        raise CovblendError(f"--gpus must be comma-separated device indices >= 0 (e.g. 0,1), got --gpus={text!r}")
    gpus = tuple(int(p) for p in parts)
    repeated = sorted({g for g in gpus if gpus.count(g) > 1})
    if repeated:
        raise CovblendError(f"--gpus lists device {repeated[0]} twice, got --gpus={text!r}")
    return gpus


def check_gpus(gpus: tuple[int, ...], device_count: int) -> None:
    """A CovblendError unless every index in gpus is below device_count (torch.cuda.device_count())."""
    listed = ",".join(map(str, gpus))
    if device_count == 0:
        raise CovblendError(f"--gpus={listed} asks for GPUs, but torch sees no CUDA device")
    missing = [g for g in gpus if g >= device_count]
    if missing:
        raise CovblendError(
            f"--gpus={listed} names device {missing[0]}, but torch sees {device_count} (indices 0..{device_count - 1})"
        )


def requested_gpus(text: str | None, device: str, device_count: Callable[[], int] | None = None) -> tuple[int, ...]:
    """The checked indices of --gpus (or $HPO_GPUS); () when it is not given or empty.

    device: the spec's train.device, which must let a worker use its GPU ("auto" or "cuda").
    device_count: how many GPUs torch sees; default torch.cuda.device_count, only called when GPUs are asked for.
    """
    if not text:
        return ()
    gpus = parse_gpus(text)
    if device == "cpu":
        raise CovblendError(f"--gpus={text} needs the spec's train.device to be auto or cuda, got device='cpu'")
    check_gpus(gpus, (device_count or torch.cuda.device_count)())
    return gpus


def assign(workers: int, gpus: tuple[int, ...], parent_visible: str | None = None) -> tuple[str, ...]:
    """CUDA_VISIBLE_DEVICES of each of `workers` processes: gpus round-robin, one device per worker.

    parent_visible: the parent's own CUDA_VISIBLE_DEVICES (None: unset), which index i refers into.
    """
    if workers < 1 or not gpus:
        raise ValueError(f"assign needs workers >= 1 and at least one GPU, got {workers=} {gpus=}")
    physical = [p.strip() for p in parent_visible.split(",")] if parent_visible else None
    names = [physical[g] if physical else str(g) for g in gpus]
    return tuple(names[i % len(names)] for i in range(workers))


def summary(devices: tuple[str, ...]) -> str:
    """Workers per GPU, for a one-line display: "gpu0×4 gpu1×4"; "" without GPUs."""
    counts = {d: devices.count(d) for d in dict.fromkeys(devices)}
    return " ".join(f"gpu{d}×{n}" for d, n in counts.items())
