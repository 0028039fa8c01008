"""The manifold SNR estimate of the calibrated blend (DESIGN §3), for scenes whose C has no noise eigenvalues.

The blend's default estimate ŝ is MDL's split of C(R_samp)'s eigenvalues (core.measurement.split_eigvals). With
fewer snapshots than array outputs (L < M) C has at most L non-zero eigenvalues, the split finds its noise floor
at float rounding, and ŝ reads ~70 dB at every SNR (`starved`: docs/results.md). The manifold estimate asks the
array instead: K_max steering vectors of a coarse grid are fitted to C greedily (each the grid point that holds the
most of what the ones before left), and the energy outside their span is noise,

    σ̂² = tr(P⊥ C P⊥) / (M − K_max),   ŝ = 10·log10((tr C / M − σ̂²) / σ̂²)   (dB; the total SNR of the scene),

which needs no rank from the snapshots, only that the sources lie on the array manifold. The grid is coarse, so from
~15 dB up a grid mismatch leaves signal in the residual and ŝ reads low; at low SNR the fit absorbs noise and ŝ
reads high. The calibrated table fits β per bin whatever the bias.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from core.grid import Grid, GridConfig, build_grid
from core.linalg import hermitian_coefficients
from core.measurement import operator, to_measurement
from core.scenario import ScenarioConfig

# 61 × 16 points: its medians of ŝ on `starved` are within 0.1–0.2 dB of a 121 × 32 grid's up to 5 dB and 0.9–1.4 dB
# from 10 dB up, at a quarter of the grid points (~0.25 ms per scene on one thread)
GRID = GridConfig(n_angles=61, n_ranges=16, refine_steps=0, repair=False)


@dataclass(frozen=True)
class Manifold:
    """A scenario's coarse steering grid and the number of vectors fitted per scene."""

    grid: Grid
    k_max: int

    def snr_db(self, R: torch.Tensor, H: torch.Tensor) -> torch.Tensor:
        """(B,) float64 ŝ of R (B, N, N) measured through H (B, M, N); module docstring."""
        with torch.no_grad():
            T = operator(H)
            C = to_measurement(R, T).to(torch.complex64)
            grid = self.grid.to(C.device)
            feats, steering = grid.hermitian_features, grid.steering
            b, m = C.shape[0], C.shape[-1]
            Tc = None if T is None else T.to(C.dtype)

            def held(X: torch.Tensor) -> torch.Tensor:  # bᴴ X b at every grid point, b = T a (B, G)
                return hermitian_coefficients(X if Tc is None else Tc.mH @ X @ Tc) @ feats

            eye = torch.eye(m, dtype=C.dtype, device=C.device).expand(b, m, m)
            P, picked, full = eye, [], held(eye)
            for _ in range(min(self.k_max, m - 1)):
                left = held(P)
                share = torch.where(left > 1e-3 * full, held(P @ C @ P) / left.clamp_min(1e-12), -torch.inf)
                a = steering[:, share.argmax(-1)].T  # (B, N): the grid point that holds the most of what is left
                picked.append(a if Tc is None else (Tc @ a[..., None])[..., 0])
                Q = torch.linalg.qr(torch.stack(picked, -1)).Q
                P = eye - Q @ Q.mH
            total = torch.diagonal(C, dim1=-2, dim2=-1).real.sum(-1).double()
            noise = torch.diagonal(P @ C @ P, dim1=-2, dim2=-1).real.sum(-1).double() / (m - len(picked))
            return 10 * torch.log10((total / m - noise).clamp_min(1e-12) / noise.clamp_min(1e-12))


@lru_cache(maxsize=8)  # training asks every epoch and refit, evaluation every SNR point: one grid per scenario
def manifold(scenario: ScenarioConfig, snr_estimate: str) -> Manifold | None:
    """The Manifold a pipeline with PipelineConfig.snr_estimate measures its scenes with; None unless "manifold"."""
    return Manifold(build_grid(scenario, GRID), scenario.scene.k_max) if snr_estimate == "manifold" else None
