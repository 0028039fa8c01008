"""Signal-subspace projectors whose gradients stay finite when eigenvalues repeat (DESIGN §4).

P_s = U_s U_sᴴ over the K largest eigenvalues of a Hermitian R = U Λ Uᴴ. Its exact derivative involves only the
signal/noise cross pairs, so ties inside either cluster never appear:

    Uᴴ dP_s U = C ⊙ (Uᴴ dR U),   C_ij = C_ji = 1/(λ_i − λ_j)  for i signal, j noise; 0 otherwise,

with the one gap that can close (K / K+1) clamped at `rel_gap_floor`·λ_max. The eigenvalues come out of the same
decomposition with their own exact derivative, dλ_i = u_iᴴ dR u_i, so the losses share one eigendecomposition
per batch. PROJECTORS["eigh"], plain eigh autograd, is kept only to reproduce the inf/NaN failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

DEFAULT_REL_GAP_FLOOR = 1e-3  # the signal/noise gap is clamped at this fraction of λ_max in the backward


def _signal_mask(eigvals: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """(B, N) bool, True on the K largest of ascending eigvals (B, N)."""
    n = eigvals.shape[-1]
    idx = torch.arange(n, device=eigvals.device)
    return idx[None, :] >= (n - k.to(idx.device))[:, None]


@dataclass(frozen=True)
class SignalSubspace:
    """One eigendecomposition of a Hermitian R (B, N, N), as the losses read it; both fields differentiable in R."""

    P: torch.Tensor  # (B, N, N) in R's dtype, the projector on the eigenvectors of the k[b] largest eigenvalues
    eigvals: torch.Tensor  # (B, N) real, R's eigenvalues, descending


class _StableProjector(torch.autograd.Function):
    """(P_s, ascending eigenvalues) with the cross-term backward; eigh runs in float64, results in R's precision."""

    @staticmethod
    def forward(ctx, R: torch.Tensor, k: torch.Tensor, rel_gap_floor: float) -> tuple[torch.Tensor, torch.Tensor]:
        lam, U = torch.linalg.eigh(R.detach().to(torch.complex128))  # ascending
        sig = _signal_mask(lam, k)
        Us = U * sig[:, None, :].to(U.dtype)
        ctx.save_for_backward(lam, U, sig)
        ctx.rel_gap_floor = rel_gap_floor
        ctx.out_dtype = R.dtype
        return (Us @ U.mH).to(R.dtype), lam.to(R.real.dtype)

    @staticmethod
    def backward(ctx, grad_P: torch.Tensor, grad_lam: torch.Tensor):
        lam, U, sig = ctx.saved_tensors
        floor = ctx.rel_gap_floor * lam.abs().amax(-1).clamp_min(1e-30)  # (B,)
        cross = sig[:, :, None] ^ sig[:, None, :]  # (B, N, N): exactly one index in the signal set
        gap = (lam[:, :, None] - lam[:, None, :]).abs().clamp_min(floor[:, None, None])
        C = torch.where(cross, 1.0 / gap, torch.zeros_like(gap))
        inner = C.to(U.dtype) * (U.mH @ grad_P.to(U.dtype) @ U)
        inner = inner + torch.diag_embed(grad_lam.to(U.dtype))  # dλ_i = u_iᴴ dR u_i
        grad_R = U @ inner @ U.mH
        return grad_R.to(ctx.out_dtype), None, None


def stable_signal_projector(
    R: torch.Tensor, k: torch.Tensor, rel_gap_floor: float = DEFAULT_REL_GAP_FLOOR
) -> SignalSubspace:
    """P_s = U_s U_sᴴ over the k[b] largest eigenvalues of each R[b], and R's eigenvalues.

    R: (B, N, N) complex Hermitian; k: (B,) int64 in [0, N]. P (B, N, N) in R's dtype. The backward is the
    module docstring's, finite for repeated and zero eigenvalues.
    """
    P, lam = _StableProjector.apply(R, k, rel_gap_floor)
    return SignalSubspace(P, lam.flip(-1))


def eigh_signal_projector(
    R: torch.Tensor, k: torch.Tensor, rel_gap_floor: float = DEFAULT_REL_GAP_FLOOR
) -> SignalSubspace:
    """The same through plain torch.linalg.eigh autograd: NaN/inf gradients on repeated eigenvalues.

    The `projector = "eigh"` setting, for showing that failure next to the stable projector; rel_gap_floor is
    ignored (same signature as the stable one).
    """
    lam, U = torch.linalg.eigh(R)
    Us = U * _signal_mask(lam, k)[:, None, :].to(U.dtype)
    return SignalSubspace(Us @ U.mH, lam.flip(-1))


def hermitian_coefficients(G: torch.Tensor) -> torch.Tensor:
    """h(G) (B, N²) float32 for Hermitian G (B, N, N): diag, then Re and Im of the strict upper triangle."""
    m, n = torch.triu_indices(G.shape[-1], G.shape[-1], 1, device=G.device)
    upper = G[..., m, n]
    return torch.cat([torch.diagonal(G, dim1=-2, dim2=-1).real, upper.real, upper.imag], -1).to(torch.float32)


def hermitian_features(a: torch.Tensor) -> torch.Tensor:
    """(N², J) float32 features f_j of vectors a (N, J) with a_jᴴ G a_j = hermitian_coefficients(G) · f_j for any
    Hermitian G (N, N): a batch of Hermitian forms over many fixed vectors becomes one real GEMM, whose (B, J)
    output stays small where a complex product with the vectors themselves would not.

    Rows: |a_n|², then 2·Re(ā_m a_n) and −2·Im(ā_m a_n) for m < n."""
    m, n = torch.triu_indices(a.shape[0], a.shape[0], 1, device=a.device)
    cross = a[m].conj() * a[n]
    return torch.cat([a.abs().square(), 2 * cross.real, -2 * cross.imag]).to(torch.float32)


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


Projector = Callable[[torch.Tensor, torch.Tensor, float], SignalSubspace]
PROJECTORS: dict[str, Projector] = {"stable": stable_signal_projector, "eigh": eigh_signal_projector}
