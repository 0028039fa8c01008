"""Training losses (DESIGN §4): the NMSE on R (N×N, against R_true), the subspace losses where inference works.

The hinge, subspace and peak-shift losses see the whitened measurement-domain C = T R Tᴴ (M×M), T = W H, with
steering b = T a (core.measurement); for H = I, T is None and C is R itself, so they are exactly those of the
N-element array. R is R_blend, or R_pred with target = "raw" (the rank-deficient ablation, `ablation-raw`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from core.array import ArrayConfig, steering, steering_with_derivatives
from core.configs import Config, one_of
from core.covariance import Covariances, blend, trace_to_n
from core.linalg import DEFAULT_REL_GAP_FLOOR, PROJECTORS, SignalSubspace, finite_or_identity
from core.measurement import operator, to_measurement
from core.scenario import SceneBatch

# Which covariance the losses see.
TARGETS: dict[str, str] = {"blend": "R_blend", "raw": "R_pred"}


# The null spectrum's floor in the "log" scale: the null a source leaves at about 1/300 of a beamwidth off, well
# below what 20 dB and L = 16 reach (~1e-5), so the floor never hides an error MUSIC would see.
LOG_NULL_FLOOR = 1e-6

# The peak-shift loss's floor, radians²: (0.002°)², a tenth of the CRB at 20 dB and L = 16, so the log never
# rewards precision no estimator can have.
PEAK_FLOOR = math.radians(0.002) ** 2

# How the per-source null ‖(I − P_s) b‖²/‖b‖² enters the subspace loss; "log" weighs every SNR alike (DESIGN §4).
SUBSPACE_SCALES: dict[str, Callable[[Tensor], Tensor]] = {
    "linear": lambda null: null,
    "log": lambda null: torch.log10(null.clamp_min(0) + LOG_NULL_FLOOR),
}


class LossConfig(Config):
    lam_nmse: float = Field(1.0, ge=0)  # weight of the covariance NMSE
    lam_gap: float = Field(0.1, ge=0)  # weight of the eigengap hinge
    lam_sub: float = Field(1.0, ge=0)  # weight of the subspace (MUSIC null spectrum) loss
    gap_margin: float = Field(0.1, ge=0, le=1)  # hinge margin on (λ_K − λ_{K+1})/λ₁
    # TARGETS key: "blend" | "raw" (losses on rank-deficient R_pred: the `ablation-raw` study)
    target: Annotated[str, one_of(lambda: TARGETS)] = "blend"
    # PROJECTORS key: "stable" cross-term backward | "eigh" plain autograd (ablation)
    projector: Annotated[str, one_of(lambda: PROJECTORS)] = "stable"
    rel_gap_floor: float = Field(DEFAULT_REL_GAP_FLOOR, gt=0, lt=1)  # clamp of the signal/noise gap, × λ_max
    # SUBSPACE_SCALES key: "linear" null spectrum | "log" log10(null + floor)
    subspace_scale: Annotated[str, one_of(lambda: SUBSPACE_SCALES)] = "linear"
    lam_peak: float = Field(0.0, ge=0)  # weight of the peak-shift loss (MUSIC's first-order angle error); 0 skips it
    lam_pred: float = Field(0.0, ge=0)  # weight of R_pred's own NMSE against R_true (the anchor, DESIGN §4); 0 skips it


def nmse(R: Tensor, R_true: Tensor) -> Tensor:
    """Per-scene ‖R − R_true‖_F² / ‖R_true‖_F² after both are scaled to trace N. (B, N, N) complex -> (B,) real."""
    R, R_true = trace_to_n(R), trace_to_n(R_true.to(R.dtype))
    return (R - R_true).abs().square().sum((-2, -1)) / R_true.abs().square().sum((-2, -1))


def normalised_gap(eigvals: Tensor, k: Tensor) -> Tensor:
    """(λ_K − λ_{K+1})/λ₁ at the given K. eigvals (B, N) real descending, k (B,) int -> (B,) real."""
    idx = (k.to(eigvals.device) - 1).clamp_min(0)[:, None]
    gap = eigvals.gather(-1, idx) - eigvals.gather(-1, idx + 1)
    return gap[:, 0] / eigvals[:, 0].clamp_min(1e-12)


def eigengap_hinge(eigvals: Tensor, k: Tensor, margin: float) -> Tensor:
    """Per-scene relu(margin − normalised gap at the true K), (B,) real; eigvals (B, N) descending."""
    return torch.relu(margin - normalised_gap(eigvals, k))


def signal_subspace(
    C: Tensor, batch: SceneBatch, projector: str = "stable", rel_gap_floor: float = DEFAULT_REL_GAP_FLOOR
) -> SignalSubspace:
    """C's (B, M, M) decomposition at the true order: the projector on its top-K eigenvectors and its eigenvalues
    (core.linalg), in float64, one per batch for every loss below."""
    return PROJECTORS[projector](C.to(torch.complex128), batch.K, rel_gap_floor)


def _safe_ranges(batch: SceneBatch) -> Tensor:
    """The true ranges (B, K_max) with padded slots set to 1, so that the steering vectors there stay finite."""
    return torch.where(batch.mask, batch.r, torch.ones_like(batch.r))


def subspace_loss(
    S: SignalSubspace, batch: SceneBatch, array: ArrayConfig, T: Tensor | None = None, *, scale: str = "linear"
) -> Tensor:
    """Per-scene mean over true sources of ‖(I − P_s)·b_k‖² / ‖b_k‖², in [0, 1], or of its log10 (plus
    LOG_NULL_FLOOR) with scale="log". (B,) real, in S's precision.

    S: signal_subspace of the measurement-domain covariance C = T R Tᴴ (B, M, M) (R itself, M = N, when T is
    None); T (B, M, N) from core.measurement.operator. P_s is the projector onto C's top-K eigenvectors (K the
    true order); b_k = T a(θ_k, r_k). ‖(I − P_s)b‖² = ‖b‖² − bᴴP_s b, since P_s is an orthogonal projector.
    """
    P = S.P
    a = steering(batch.theta, _safe_ranges(batch), array).to(P.dtype)  # (B, N, K_max)
    if T is None:
        b, norm = a, P.shape[-1]  # unit-modulus entries: ‖a‖² = N, the formula of the N-element array
    else:
        b = T.to(P.dtype) @ a  # (B, M, K_max)
        norm = b.abs().square().sum(-2).clamp_min(1e-12)  # ‖P_H a‖² ≤ N: T passes only H's row space
    captured = (b.conj() * (P @ b)).sum(-2).real  # bᴴ P b, (B, K_max)
    null = SUBSPACE_SCALES[scale](1.0 - captured / norm) * batch.mask
    return null.sum(-1) / batch.mask.sum(-1).clamp_min(1)


def peak_shift(S: SignalSubspace, batch: SceneBatch, array: ArrayConfig, T: Tensor | None = None) -> Tensor:
    """δθ (B, K_max) float64, radians: MUSIC's first-order angle error at each true source, for the signal
    subspace S of a covariance C (B, M, M) (signal_subspace; give it C in float64: the null is tiny at high SNR).

    δ = (δθ, δu) is the Gauss–Newton step from the truth (θ_k, u_k = 1/r_k) towards the nearest minimum of
    MUSIC's null spectrum f = ‖(I − P_s) b‖², b = T a, P_s the projector on C's top-K eigenvectors (true K).
    Differentiable in C. Padded slots hold finite values; mask them with batch.mask.
    """
    P = S.P.to(torch.complex128)
    r_safe = _safe_ranges(batch).double()
    a, da_t, da_r = steering_with_derivatives(batch.theta.double(), r_safe, array)
    vecs = (a, da_t, da_r * (-r_safe.square())[:, None, :])  # ∂/∂u = −r²·∂/∂r
    if T is not None:
        vecs = tuple(T.to(torch.complex128) @ v for v in vecs)
    e, p_t, p_u = (v - P @ v for v in vecs)  # (I − P_s) applied to b, ∂b/∂θ, ∂b/∂u
    d_t, d_u = vecs[1], vecs[2]

    def re_dot(x, y):  # Re(xᴴ y) per source, (B, K_max)
        return (x.conj() * y).sum(-2).real

    g_t, g_u = re_dot(d_t, e), re_dot(d_u, e)  # half the gradient of f
    j_tt, j_uu, j_tu = re_dot(d_t, p_t), re_dot(d_u, p_u), re_dot(d_t, p_u)  # half its Gauss–Newton Hessian
    det = (j_tt * j_uu - j_tu.square()).clamp_min(1e-12 * (j_tt * j_uu).clamp_min(1e-30))
    return -(j_uu * g_t - j_tu * g_u) / det


def peak_shift_loss(S: SignalSubspace, batch: SceneBatch, array: ArrayConfig, T: Tensor | None = None) -> Tensor:
    """Per-scene mean over true sources of log10(δθ² + PEAK_FLOOR), δθ from `peak_shift` (S, T as there).
    (B,) float64.

    The subspace loss asks that the null be small at the truth; a shallow null can still have its minimum
    elsewhere, and it is the minimum's position that MUSIC reports. In log form this loss is, up to a constant,
    the mean log angle efficiency (err²/CRB in dB) that the localisation objective scores.
    """
    shift = peak_shift(S, batch, array, T)
    per_source = torch.log10(shift.square() + PEAK_FLOOR) * batch.mask
    return per_source.sum(-1) / batch.mask.sum(-1).clamp_min(1)


def total_loss(
    cov: Covariances, batch: SceneBatch, cfg: LossConfig, array: ArrayConfig
) -> tuple[Tensor, dict[str, Tensor]]:
    """λ_nmse·NMSE + λ_gap·hinge + λ_sub·subspace (+ λ_peak·peak + λ_pred·anchor), batch means; R = R_blend (or
    R_pred for target "raw").

    NMSE on R; hinge and subspace loss on C = T R Tᴴ, T = operator(batch.H) once per batch (R for H = I).
    The anchor is R_pred's own NMSE: through R_blend, R_pred gets its gradient scaled by 1 − β, none at all where
    the calibrated table says β = 1, and the NMSE of R_blend pulls it towards (R_true − β R_samp)/(1 − β), an
    overshoot past R_true; the anchor makes R_pred an estimate of R_true in every scene, the partner the table
    blends (DESIGN §4).
    Returns (scalar loss, {"nmse", "gap", "sub", "peak", "pred"} detached batch means).
    """
    R = getattr(cov, TARGETS[cfg.target])
    T = operator(batch.H)
    C, _ = finite_or_identity(to_measurement(R, T))  # a NaN R still makes the NMSE, so the loss, NaN
    R_nmse = R
    if cfg.target == "blend" and cov.beta.requires_grad:
        # The adaptive gate learns only from what inference sees (hinge, subspace): see DESIGN §4 for why.
        R_nmse = blend(cov.R_pred, cov.R_samp.to(cov.R_pred.dtype), cov.beta.detach())
    S = signal_subspace(C, batch, cfg.projector, cfg.rel_gap_floor)  # one eigendecomposition for the three below
    real = R.real.dtype
    peak = peak_shift_loss(S, batch, array, T).mean() if cfg.lam_peak > 0 else torch.zeros((), device=C.device)
    parts = {
        "nmse": nmse(R_nmse, batch.R_true).mean(),
        "gap": eigengap_hinge(S.eigvals, batch.K, cfg.gap_margin).mean().to(real),
        "sub": subspace_loss(S, batch, array, T, scale=cfg.subspace_scale).mean().to(real),
        "peak": peak.to(real),
        "pred": nmse(cov.R_pred, batch.R_true).mean() if cfg.lam_pred > 0 else torch.zeros((), device=C.device),
    }
    total = cfg.lam_nmse * parts["nmse"] + cfg.lam_gap * parts["gap"] + cfg.lam_sub * parts["sub"]
    if cfg.lam_peak > 0:  # an unweighted term adds nothing, not even a zero, to the graph
        total = total + cfg.lam_peak * parts["peak"]
    if cfg.lam_pred > 0:
        total = total + cfg.lam_pred * parts["pred"]
    return total, {name: v.detach() for name, v in parts.items()}
