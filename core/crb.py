"""The stochastic (Stoica–Nehorai) Cramér–Rao bound on near-field angles and ranges (DESIGN §5).

Unknowns: θ_k, r_k of every source, the source covariance P (an arbitrary Hermitian matrix, the
classic stochastic model; correlated and coherent sources have a full or a singular P, and the bound
holds for both as long as the FIM below is regular) and the noise power σ². The receiver sees y = H x,
so the noise reaches y as σ²·H Hᴴ; whitening by W = (H Hᴴ)^(−1/2) makes it σ²·I again:

    B   = W H A,     D = W H [∂A/∂θ, ∂A/∂r],     R_y = B P Bᴴ + σ²·I_M,
    Π⊥  = I − B (Bᴴ B)⁻¹ Bᴴ,
    CRB = σ²/(2L) · {Re[(Dᴴ Π⊥ D) ⊙ (1₂ₓ₂ ⊗ P Bᴴ R_y⁻¹ B P)ᵀ]}⁻¹        (2K × 2K; θ first, then r).

Scenes are batched; scenes with the same number of sources share one batched solve, so the only
Python loop runs over the distinct K values, never over scenes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from core.array import ArrayConfig, steering_with_derivatives
from core.measurement import whitener
from core.scenario import SceneBatch


@dataclass(frozen=True)
class CRB:
    """Standard-deviation bounds per source slot; nan in padded slots."""

    angle_deg: torch.Tensor  # (B, K_max) float64, sqrt(CRB_θθ), degrees
    range_m: torch.Tensor  # (B, K_max) float64, sqrt(CRB_rr), metres

    @property
    def angle_rmse_deg(self) -> float:
        """sqrt of the mean bound variance over all real sources: the bound an angle RMSE is compared to."""
        return math.sqrt(torch.nanmean(self.angle_deg.square()).item())

    @property
    def range_rmse_m(self) -> float:
        """sqrt of the mean range bound variance over all real sources, metres."""
        return math.sqrt(torch.nanmean(self.range_m.square()).item())


def _crb_same_k(theta, r, P, noise_var, H, snapshots, array):
    """CRB diagonal for B scenes that all have K sources: theta, r (B, K), P (B, K, K); returns var θ, var r (B, K)."""
    k = theta.shape[-1]
    A, dA_t, dA_r = steering_with_derivatives(theta, r, array, wavefront="exact")  # the model the data follow
    WH = whitener(H) @ H
    Bm, D = WH @ A, WH @ torch.cat([dA_t, dA_r], dim=-1)
    eye = torch.eye(Bm.shape[-2], dtype=Bm.dtype, device=Bm.device)
    P = P.to(Bm.dtype)
    sigma2 = noise_var.to(torch.float64)[:, None, None]
    Ry = Bm @ P @ Bm.mH + sigma2 * eye
    proj = eye - Bm @ torch.linalg.solve(Bm.mH @ Bm, Bm.mH)
    Q = P @ Bm.mH @ torch.linalg.solve(Ry, Bm) @ P
    fim = (D.mH @ proj @ D * Q.repeat(1, 2, 2).mT).real
    crb = sigma2 / (2 * snapshots) * torch.linalg.inv(fim)
    var = torch.diagonal(crb, dim1=-2, dim2=-1)
    return var[..., :k], var[..., k:]


def stochastic_crb(
    theta: torch.Tensor,
    r: torch.Tensor,
    source_cov: torch.Tensor,
    noise_var: torch.Tensor,
    H: torch.Tensor,
    snapshots: int,
    array: ArrayConfig,
    mask: torch.Tensor,
) -> CRB:
    """Batched stochastic CRB, computed in float64.

    theta (B, K_max) radians, r (B, K_max) metres, source_cov (B, K_max, K_max) complex P (diagonal for
    uncorrelated sources), noise_var (B,) σ², H (B, M, N) complex, mask (B, K_max) bool (True for real sources;
    padded slots may hold anything).
    """
    theta, r = (x.detach().to(torch.float64) for x in (theta, r))
    P = source_cov.detach().to(torch.complex128)
    noise_var, H = noise_var.detach().to(torch.float64), H.detach().to(torch.complex128)
    var_t, var_r = torch.full_like(theta, math.nan), torch.full_like(theta, math.nan)
    counts = mask.sum(-1)
    # Real slots first, in their original order, so each group gathers a dense (b, K) block.
    order = torch.sort((~mask).to(torch.int8), dim=-1, stable=True).indices
    for k in counts[counts > 0].unique().tolist():
        rows = (counts == k).nonzero().squeeze(-1)
        idx = (rows[:, None], order[rows, :k])
        cols = order[rows, :k]
        Pk = P[rows[:, None, None], cols[:, :, None], cols[:, None, :]]
        vt, vr = _crb_same_k(theta[idx], r[idx], Pk, noise_var[rows], H[rows], snapshots, array)
        var_t[idx], var_r[idx] = vt, vr
    return CRB(angle_deg=torch.rad2deg(var_t.sqrt()), range_m=var_r.sqrt())


def scene_crb(batch: SceneBatch, array: ArrayConfig) -> CRB:
    """The CRB of every scene in a generated batch, with its own H, source covariance P, σ² and L = Y.shape[-1]."""
    return stochastic_crb(
        batch.theta, batch.r, batch.source_cov, batch.noise_var, batch.H, batch.Y.shape[-1], array, batch.mask
    )
