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
from core.linalg import DEFAULT_REL_GAP_FLOOR, PROJECTORS, finite_or_identity
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


def normalised_gap(R: Tensor, k: Tensor) -> Tensor:
    """(λ_K − λ_{K+1})/λ₁ at the given K, eigenvalues of R descending. R (B, N, N), k (B,) int -> (B,) real."""
    lam = torch.linalg.eigvalsh(R).flip(-1)  # descending
    idx = (k.to(lam.device) - 1).clamp_min(0)[:, None]
    gap = lam.gather(-1, idx) - lam.gather(-1, idx + 1)
    return gap[:, 0] / lam[:, 0].clamp_min(1e-12)


def eigengap_hinge(R: Tensor, k: Tensor, margin: float) -> Tensor:
    """Per-scene relu(margin − normalised gap at the true K), (B,) real."""
    return torch.relu(margin - normalised_gap(R, k))


def _projector_at_truth(
    C: Tensor, batch: SceneBatch, projector: str = "stable", rel_gap_floor: float = DEFAULT_REL_GAP_FLOOR
) -> tuple[Tensor, Tensor]:
    """P_s (B, M, M), the projector onto C's top-K eigenvectors (K the true order, core.linalg), and the true
    ranges (B, K_max) with padded slots set to 1 so that the steering vectors there stay finite."""
    r_safe = torch.where(batch.mask, batch.r, torch.ones_like(batch.r))
    return PROJECTORS[projector](C, batch.K, rel_gap_floor), r_safe


def subspace_loss(
    C: Tensor, batch: SceneBatch, array: ArrayConfig, T: Tensor | None = None, *, scale: str = "linear", **projection
) -> Tensor:
    """Per-scene mean over true sources of ‖(I − P_s)·b_k‖² / ‖b_k‖², in [0, 1], or of its log10 (plus
    LOG_NULL_FLOOR) with scale="log". (B,) real. `projection`: projector, rel_gap_floor (_projector_at_truth).

    C (B, M, M) is the measurement-domain covariance T R Tᴴ (R itself, M = N, when T is None); T (B, M, N)
    from core.measurement.operator. P_s is the projector onto C's top-K eigenvectors (K the true order), from
    core.linalg; b_k = T a(θ_k, r_k). ‖(I − P_s)b‖² = ‖b‖² − bᴴP_s b, since P_s is an orthogonal projector.
    """
    P, r_safe = _projector_at_truth(C, batch, **projection)
    a = steering(batch.theta, r_safe, array).to(C.dtype)  # (B, N, K_max)
    if T is None:
        b, norm = a, C.shape[-1]  # unit-modulus entries: ‖a‖² = N, the formula of the N-element array
    else:
        b = T.to(C.dtype) @ a  # (B, M, K_max)
        norm = b.abs().square().sum(-2).clamp_min(1e-12)  # ‖P_H a‖² ≤ N: T passes only H's row space
    captured = (b.conj() * (P @ b)).sum(-2).real  # bᴴ P b, (B, K_max)
    null = SUBSPACE_SCALES[scale](1.0 - captured / norm) * batch.mask
    return null.sum(-1) / batch.mask.sum(-1).clamp_min(1)


def peak_shift(C: Tensor, batch: SceneBatch, array: ArrayConfig, T: Tensor | None = None, **projection) -> Tensor:
    """δθ (B, K_max) float64, radians: MUSIC's first-order angle error on C (B, M, M) at each true source.

    δ = (δθ, δu) is the Gauss–Newton step from the truth (θ_k, u_k = 1/r_k) towards the nearest minimum of
    MUSIC's null spectrum f = ‖(I − P_s) b‖², b = T a, P_s the projector on C's top-K eigenvectors (true K).
    Differentiable in C. Padded slots hold finite values; mask them with batch.mask. `projection` as in
    subspace_loss.
    """
    P, r_safe = _projector_at_truth(C.to(torch.complex128), batch, **projection)
    r_safe = r_safe.double()
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


def peak_shift_loss(C: Tensor, batch: SceneBatch, array: ArrayConfig, T: Tensor | None = None, **projection) -> Tensor:
    """Per-scene mean over true sources of log10(δθ² + PEAK_FLOOR), δθ from `peak_shift` (`projection` as
    there). (B,) real.

    The subspace loss asks that the null be small at the truth; a shallow null can still have its minimum
    elsewhere, and it is the minimum's position that MUSIC reports. In log form this loss is, up to a constant,
    the mean log angle efficiency (err²/CRB in dB) that the localisation objective scores.
    """
    shift = peak_shift(C, batch, array, T, **projection)
    per_source = torch.log10(shift.square() + PEAK_FLOOR) * batch.mask
    return (per_source.sum(-1) / batch.mask.sum(-1).clamp_min(1)).to(C.real.dtype)


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
    projection = {"projector": cfg.projector, "rel_gap_floor": cfg.rel_gap_floor}
    sub = subspace_loss(C, batch, array, T, scale=cfg.subspace_scale, **projection)
    peak = (
        peak_shift_loss(C, batch, array, T, **projection).mean()
        if cfg.lam_peak > 0
        else torch.zeros((), device=C.device)
    )
    parts = {
        "nmse": nmse(R_nmse, batch.R_true).mean(),
        "gap": eigengap_hinge(C, batch.K, cfg.gap_margin).mean(),
        "sub": sub.mean(),
        "peak": peak,
        "pred": nmse(cov.R_pred, batch.R_true).mean() if cfg.lam_pred > 0 else torch.zeros((), device=C.device),
    }
    total = cfg.lam_nmse * parts["nmse"] + cfg.lam_gap * parts["gap"] + cfg.lam_sub * parts["sub"]
    if cfg.lam_peak > 0:  # skipped otherwise, so runs without it compute exactly what they computed before
        total = total + cfg.lam_peak * parts["peak"]
    if cfg.lam_pred > 0:
        total = total + cfg.lam_pred * parts["pred"]
    return total, {name: v.detach() for name, v in parts.items()}
