"""Snapshots of a fixed scene, for tests that need a known geometry rather than core.scenario's random draws."""

import torch

from core.array import steering
from core.scenario import ScenarioConfig


def snapshots(theta_deg, r, snr_db, n_snapshots, seed=0, cfg: ScenarioConfig | None = None) -> torch.Tensor:
    """Y (1, N, L) complex128 of uncorrelated unit-power sources at the given angles (degrees) and ranges
    (metres), white noise at SNR = p_k/σ² = snr_db per element and source; H = I."""
    cfg = cfg or ScenarioConfig()
    g = torch.Generator().manual_seed(seed)
    A = steering(
        torch.deg2rad(torch.tensor(theta_deg, dtype=torch.float64)), torch.tensor(r, dtype=torch.float64), cfg.array
    )
    S = torch.randn(len(r), n_snapshots, dtype=torch.complex128, generator=g)
    noise = torch.randn(cfg.n, n_snapshots, dtype=torch.complex128, generator=g) * 10 ** (-snr_db / 20)
    return (A @ S + noise)[None]
