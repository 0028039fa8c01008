"""The whitened measurement domain (DESIGN §5), where every subspace step of inference and of the losses runs.

    W = (H Hᴴ)^(−1/2) (B, M, M),   T = W H (B, M, N) with T Tᴴ = I_M,   C = T R Tᴴ (B, M, M)
    b = T a,   ‖b‖² = ‖P_H a‖² ≤ N,   C_classic = W (Y Yᴴ/L) W: the whitened sample covariance

For H = I `operator` returns None and every caller skips the transform: MUSIC on R is then plain MUSIC on the
N×N covariance, with no whitening step to round differently.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.music import mdl_order


def whitener(H: torch.Tensor) -> torch.Tensor:
    """W = (H Hᴴ)^(−1/2), (B, M, M) for H (B, M, N); H has full row rank M, so H Hᴴ is positive definite."""
    lam, V = torch.linalg.eigh(H @ H.mH)
    return (V * lam.rsqrt()[..., None, :].to(V.dtype)) @ V.mH


def is_identity(H: torch.Tensor) -> bool:
    """True when every H (B, M, N) is exactly the identity (M = N): a fully digital array."""
    m, n = H.shape[-2:]
    return m == n and torch.equal(H, torch.eye(n, dtype=H.dtype, device=H.device).expand_as(H))


def operator(H: torch.Tensor) -> torch.Tensor | None:
    """T = W H (B, M, N), with orthonormal rows; None when H is the identity (T would be I)."""
    return None if is_identity(H) else whitener(H) @ H


def to_measurement(R: torch.Tensor, T: torch.Tensor | None) -> torch.Tensor:
    """C = T R Tᴴ (B, M, M) for an array covariance R (B, N, N); R itself when T is None. Keeps R's graph."""
    if T is None:
        return R
    T = T.to(R.dtype)
    return T @ R @ T.mH


def classic_covariance(Y: torch.Tensor, H: torch.Tensor) -> torch.Tensor:
    """W·(Y Yᴴ/L)·W (B, M, M): the whitened sample covariance of the snapshots Y (B, M, L), noise σ²·I there.

    For H = I it is Y Yᴴ/L itself."""
    S = Y @ Y.mH / Y.shape[-1]
    if is_identity(H):
        return S
    W = whitener(H)
    return W @ S @ W


def falls_back(beta: torch.Tensor | None, n: int) -> torch.Tensor:
    """(n,) bool: the scenes whose β (n,) is 1, which localise on the classic C; none when beta is None."""
    return torch.zeros(n, dtype=torch.bool) if beta is None else beta == 1


def localised(
    R_blend: torch.Tensor, beta: torch.Tensor | None, Y: torch.Tensor, H: torch.Tensor, T: torch.Tensor | None
) -> torch.Tensor:
    """The C (B, M, M) the pipeline's estimator localises on: T R_blend Tᴴ, and in the scenes at β = 1 the classic
    W (Y Yᴴ/L) W itself. R_blend (B, N, N), beta (B,) or None (no scene falls back), Y (B, M, L), H (B, M, N),
    T = operator(H), which the callers hold already.

    At β = 1 R_blend is R_samp, and T R_samp Tᴴ is the classic C only as the ridge α → 0: on a hybrid array α
    bends it by α over HHᴴ's eigenvalues, and even at α = 0 its longer float path decides near-tied peaks
    differently (8-11 of ~1,000 sources at -5 dB on `hybrid`, 1-2 more gross errors than classic per seed). The
    fallback is the classic method, not an approximation of it."""
    C = to_measurement(R_blend, T)
    classic = falls_back(beta, C.shape[0])
    if not bool(classic.any()):
        return C
    return torch.where(classic[:, None, None].to(C.device), classic_covariance(Y, H).to(C.dtype), C)


@dataclass(frozen=True)
class EigenSplit:
    """MDL's signal/noise split of C = T R Tᴴ's eigenvalues, per scene; every field (B,) and detached."""

    k: torch.Tensor  # K̂ int64, MDL (C's noise is white)
    snr_db: torch.Tensor  # ŝ float64, dB: the per-source SNR the split implies
    noise_share: torch.Tensor  # float64 in [0, 1]: σ̂² over the mean eigenvalue, the noise's share of the trace


def measured_eigvals(R: torch.Tensor, H: torch.Tensor) -> torch.Tensor:
    """(B, M) float64, descending and clamped at 0: the eigenvalues of C = T R Tᴴ, R (B, N, N), H (B, M, N)."""
    with torch.no_grad():
        return torch.linalg.eigvalsh(to_measurement(R, operator(H)).to(torch.complex128)).flip(-1).clamp_min(0)


def split_eigvals(lam: torch.Tensor, k_max: int, snapshots: int) -> EigenSplit:
    """MDL's split of the eigenvalues of C = T R Tᴴ (B, M; measured_eigvals) into K̂ signal eigenvalues and a white
    noise floor.

    K̂ from MDL, σ̂² the mean of the M − K̂ smallest eigenvalues, and ŝ = 10·log10(mean over the K̂ largest of
    (λ_k − σ̂²) / (M·σ̂²)): a source of power p adds about p·‖T a‖² ≈ p·M to its eigenvalue, so ŝ ≈ p/σ² for
    separated sources. Scale-free (trace normalisation moves neither ŝ nor the noise share). Features for the
    pipeline (core.covariance), not estimators: the calibrated blend calibrates ŝ's bias away.
    """
    m = lam.shape[-1]
    k = mdl_order(lam, min(k_max, m - 1), snapshots)
    signal = torch.arange(m, device=lam.device)[None, :] < k[:, None]
    noise = (lam * ~signal).sum(-1) / (m - k)
    power = ((lam - noise[:, None]) * signal).sum(-1) / k
    snr_db = 10 * torch.log10(power.clamp_min(1e-12) / (m * noise).clamp_min(1e-12))
    share = (noise / lam.mean(-1).clamp_min(1e-30)).clamp(0, 1)
    return EigenSplit(k=k, snr_db=snr_db, noise_share=share)
