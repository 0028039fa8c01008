"""What makes a training run repeatable: the deterministic torch settings, and the code's git commit.

A run's result depends on its ExperimentConfig (params, seeds, data sizes), the package versions, the
thread count and the device. With those equal, `deterministic()` makes a CPU run repeat bit for bit: torch's
CPU kernels are deterministic for a fixed thread count, and the settings below only forbid the few that are
not, at no measurable cost on CPU.

Not deterministic, and why:
- A different thread count or CPU model: parallel reductions split the sum by thread, and oneDNN/BLAS pick
  kernels (AVX2, AVX-512) by CPU, so the last bits differ and grow over epochs. Threads are recorded.
- CUDA: `warn_only=True` lets ops without a deterministic CUDA kernel (atomic-add scatter/index backward)
  run with a warning instead of failing; cuBLAS needs CUBLAS_WORKSPACE_CONFIG set before CUDA starts.
  Strict mode would refuse whole architectures, so GPU runs repeat closely, not bit for bit.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import torch

CUBLAS_WORKSPACE = ":4096:8"  # the cuBLAS workspace size that makes its GEMMs deterministic


def deterministic() -> dict[str, object]:
    """Switch torch to deterministic algorithms (warn where none exists); returns the settings, for provenance.

    Idempotent and cheap; call it before building the model. CUBLAS_WORKSPACE_CONFIG is only set when the
    user has not set it, and only takes effect if CUDA has not been initialised yet.
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    # torch.use_deterministic_algorithms also sets TorchInductor's flag, importing torch._inductor for it: 1.3 s of
    # CPU in every `hpo run` and worker process. Only torch.compile reads that flag, and nothing here compiles.
    torch._C._set_deterministic_algorithms(True, warn_only=True)
    # cuDNN autotuning picks kernels by timing, which differs run to run.
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    return settings()


def settings() -> dict[str, object]:
    """The current determinism-relevant torch settings: a JSON-ready dict."""
    return {
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        "threads": torch.get_num_threads(),
    }


def git_commit(path: Path | None = None) -> str | None:
    """The commit of the git checkout holding `path` (default: this package), "+dirty" when it has local
    edits; None when it is not a checkout or git is missing (an installed wheel)."""
    where = str(path or Path(__file__).resolve().parent)

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", where, *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return f"{commit}+dirty" if dirty else commit
