"""Signal-subspace projectors whose gradients stay finite when eigenvalues repeat (DESIGN §4).

P_s = U_s U_sᴴ over the K largest eigenvalues of a Hermitian R = U Λ Uᴴ. Its exact derivative involves only the
signal/noise cross pairs, so ties inside either cluster never appear:

    Uᴴ dP_s U = C ⊙ (Uᴴ dR U),   C_ij = C_ji = 1/(λ_i − λ_j)  for i signal, j noise; 0 otherwise,

with the one gap that can close (K / K+1) clamped at `rel_gap_floor`·λ_max. PROJECTORS["eigh"], plain eigh
autograd, is kept only to reproduce the inf/NaN failure.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

DEFAULT_REL_GAP_FLOOR = 1e-3  # the signal/noise gap is clamped at this fraction of λ_max in the backward


def _signal_mask(eigvals: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """(B, N) bool, True on the K largest of ascending eigvals (B, N)."""
    n = eigvals.shape[-1]
    idx = torch.arange(n, device=eigvals.device)
    return idx[None, :] >= (n - k.to(idx.device))[:, None]


class _StableProjector(torch.autograd.Function):
    """P_s with the cross-term backward; eigh runs in float64 and the result returns in R's dtype."""

    @staticmethod
    def forward(ctx, R: torch.Tensor, k: torch.Tensor, rel_gap_floor: float) -> torch.Tensor:
        lam, U = torch.linalg.eigh(R.detach().to(torch.complex128))  # ascending
        sig = _signal_mask(lam, k)
        Us = U * sig[:, None, :].to(U.dtype)
        ctx.save_for_backward(lam, U, sig)
        ctx.rel_gap_floor = rel_gap_floor
        ctx.out_dtype = R.dtype
        return (Us @ U.mH).to(R.dtype)

    @staticmethod
    def backward(ctx, grad_P: torch.Tensor):
        lam, U, sig = ctx.saved_tensors
        floor = ctx.rel_gap_floor * lam.abs().amax(-1).clamp_min(1e-30)  # (B,)
        cross = sig[:, :, None] ^ sig[:, None, :]  # (B, N, N): exactly one index in the signal set
        gap = (lam[:, :, None] - lam[:, None, :]).abs().clamp_min(floor[:, None, None])
        C = torch.where(cross, 1.0 / gap, torch.zeros_like(gap))
        G = U.mH @ grad_P.to(U.dtype) @ U
        grad_R = U @ (C.to(U.dtype) * G) @ U.mH
        return grad_R.to(ctx.out_dtype), None, None


def stable_signal_projector(
    R: torch.Tensor, k: torch.Tensor, rel_gap_floor: float = DEFAULT_REL_GAP_FLOOR
) -> torch.Tensor:
    """P_s = U_s U_sᴴ over the k[b] largest eigenvalues of each R[b].

    R: (B, N, N) complex Hermitian; k: (B,) int64 in [0, N]. Returns (B, N, N) in R's dtype. The backward is the
    module docstring's, finite for repeated and zero eigenvalues.
    """
    return _StableProjector.apply(R, k, rel_gap_floor)


def eigh_signal_projector(
    R: torch.Tensor, k: torch.Tensor, rel_gap_floor: float = DEFAULT_REL_GAP_FLOOR
) -> torch.Tensor:
    """The same P_s through plain torch.linalg.eigh autograd: NaN/inf gradients on repeated eigenvalues.

    The `projector = "eigh"` setting, for showing that failure next to the stable projector; rel_gap_floor is
    ignored (same signature as the stable one).
    """
    _, U = torch.linalg.eigh(R)
    Us = U * _signal_mask(torch.zeros(R.shape[:-1], device=R.device), k)[:, None, :].to(U.dtype)
    return Us @ U.mH


def finite_or_identity(R: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(R with every non-finite matrix replaced by I, (B,) bool of the replaced ones). R: (B, N, N).

    LAPACK raises on NaN input; callers decompose the safe copy and carry the NaN on by other terms,
    so a bad batch gives a non-finite loss that the training guard can report, not a LinAlgError.
    """
    bad = ~torch.isfinite(torch.view_as_real(R) if R.is_complex() else R).flatten(1).all(-1)
    if not bad.any():
        return R, bad
    eye = torch.eye(R.shape[-1], dtype=R.dtype, device=R.device)
    return torch.where(bad[:, None, None], eye, R), bad


Projector = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]
PROJECTORS: dict[str, Projector] = {"stable": stable_signal_projector, "eigh": eigh_signal_projector}
