"""What a batch scheduler tells the job it runs, read from its environment: Slurm's job and array ids (a trial's
provenance) and the CPUs it gave each task (the torch threads). Nothing else in hpo knows of Slurm: an array task
runs the same `hpo run` as a compose replica or a second host (deploy/slurm/README.md)."""

from __future__ import annotations

import os

from core.errors import CovblendError

CPUS_ENV = "SLURM_CPUS_PER_TASK"  # set by sbatch/srun --cpus-per-task only
# user attr -> the variable Slurm sets in every job (the first) and in each array task (the other two)
JOB_ENV = {
    "slurm_job_id": "SLURM_JOB_ID",
    "slurm_array_job_id": "SLURM_ARRAY_JOB_ID",
    "slurm_array_task_id": "SLURM_ARRAY_TASK_ID",
}


def job() -> dict[str, int | str]:
    """The Slurm job this process runs in, as user attrs (integers where Slurm wrote digits); {} outside Slurm."""
    found = {attr: os.environ.get(name, "").strip() for attr, name in JOB_ENV.items()}
    return {attr: int(v) if v.isdigit() else v for attr, v in found.items() if v}


def cpus() -> int | None:
    """The CPUs Slurm gave each task of this job (--cpus-per-task); None when it says nothing. The allocation is
    what this process may use, so it sets the torch threads as `--workers` does on a host of its own."""
    value = os.environ.get(CPUS_ENV)
    if value is None or value.strip() == "":
        return None
    if not (value.strip().isascii() and value.strip().isdigit()) or int(value) < 1:
        raise CovblendError(f"{CPUS_ENV} must be a number of CPUs >= 1, got {CPUS_ENV}={value!r}")
    return int(value)
