"""Validation metrics (DESIGN §6), per scene and aggregated, with per-SNR-bucket helpers (SNR = p_k/σ², dB).

matched_errors gives per-truth errors after optimal assignment; clipped_angle_errors caps them at the array's
resolution half-width (DESIGN §6), so a gross error counts as one full miss; core.localisation and
core.evaluation build their figures from them.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor

from core.array import ArrayConfig
from core.grid import resolution
from core.linalg import finite_or_identity
from core.losses import nmse

DEFAULT_SNR_EDGES_DB: tuple[float, ...] = (-10.0, 0.0, 10.0, 20.0)  # bucket edges, dB, SNR = p_k/σ²


def to_db(mean_nmse: float) -> float:
    """10·log10 of a mean NMSE: -inf for 0, nan for a negative or non-finite input (e.g. an empty bucket)."""
    if not (math.isfinite(mean_nmse) and mean_nmse >= 0):
        return math.nan
    return 10.0 * math.log10(mean_nmse) if mean_nmse > 0 else -math.inf


def nmse_db(R: Tensor, R_true: Tensor) -> float:
    """10·log10(mean NMSE) of R (B, N, N) against R_true (B, N, N), both scaled to trace N."""
    return to_db(nmse(R, R_true).mean().item())


def gap_stats(R: Tensor, k: Tensor, k_max: int, margin: float) -> tuple[Tensor, Tensor]:
    """Per scene: (healthy (B,) bool, normalised gap at the true K (B,) real) of R (B, N, N), k (B,) int.

    A non-finite R is unhealthy with a nan gap."""
    R, bad = finite_or_identity(R.detach())
    lam = torch.linalg.eigvalsh(R).flip(-1)  # descending
    gaps = lam[:, :k_max] - lam[:, 1 : k_max + 1]  # (B, K_max): gap k is λ_k − λ_{k+1}
    at_k = gaps.gather(-1, (k.to(gaps.device) - 1)[:, None])[:, 0]
    norm_gap = at_k / lam[:, 0].clamp_min(1e-12)
    healthy = (gaps.argmax(-1) + 1 == k.to(gaps.device)) & (norm_gap > margin) & ~bad
    return healthy, torch.where(bad, torch.full_like(norm_gap, torch.nan), norm_gap)


def bucket_index(snr_db: Tensor, edges: tuple[float, ...] = DEFAULT_SNR_EDGES_DB) -> Tensor:
    """Bucket of each scene, (B,) int64: 0 for [e0, e1), 1 for [e1, e2), …; the last bucket includes its top edge."""
    inner = torch.tensor(edges[1:-1], dtype=snr_db.dtype, device=snr_db.device)
    return torch.bucketize(snr_db, inner, right=True)


def bucket_labels(edges: tuple[float, ...] = DEFAULT_SNR_EDGES_DB) -> list[str]:
    """Labels like "[-10,0)", dB, one per bucket."""
    return [f"[{lo:g},{hi:g})" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]


def bucket_mean(values: Tensor, snr_db: Tensor, edges: tuple[float, ...] = DEFAULT_SNR_EDGES_DB) -> list[float]:
    """Mean of per-scene values (B,) in each SNR bucket; nan for an empty bucket."""
    idx = bucket_index(snr_db, edges)
    parts = [values[idx == b] for b in range(len(edges) - 1)]
    return [sel.double().mean().item() if sel.numel() else math.nan for sel in parts]


def validation_metrics(
    R: Tensor, R_samp: Tensor, R_true: Tensor, k: Tensor, snr_db: Tensor, k_max: int, margin: float
) -> dict[str, float]:
    """The validation dict of R (B, N, N) against R_true, beside R_samp; k (B,) true orders, snr_db (B,) dB.

    Keys: nmse_db (R), nmse_samp_db (R_samp), eigengap_health, mean_gap, and per SNR bucket
    "nmse_db@[lo,hi)", "nmse_samp_db@[lo,hi)", "eigengap_health@[lo,hi)".
    """
    err, err_samp = nmse(R, R_true), nmse(R_samp, R_true)
    healthy, gap = gap_stats(R, k, k_max, margin)
    out = {
        "nmse_db": to_db(err.mean().item()),
        "nmse_samp_db": to_db(err_samp.mean().item()),
        "eigengap_health": healthy.double().mean().item(),
        "mean_gap": gap.double().mean().item(),
    }
    per = {
        "nmse_db": [to_db(v) for v in bucket_mean(err, snr_db)],
        "nmse_samp_db": [to_db(v) for v in bucket_mean(err_samp, snr_db)],
        "eigengap_health": bucket_mean(healthy.double(), snr_db),
    }
    for name, values in per.items():
        out.update({f"{name}@{lab}": v for lab, v in zip(bucket_labels(), values, strict=True)})
    return out


# ---------------------------------------------------------------- localisation efficiency (true K)


def matched_errors(
    est_theta: Tensor,
    est_r: Tensor,
    est_mask: Tensor,
    true_theta: Tensor,
    true_r: Tensor,
    true_mask: Tensor,
    miss: tuple[float, float],
) -> tuple[Tensor, Tensor]:
    """Per-truth errors (B, K_max) after optimal assignment: angle (degrees), range (metres); nan in padded slots.

    est_* (B, K_est) and true_* (B, K_max): radians, metres, bool. The assignment minimises the sum of |Δθ| over
    the matched pairs (angles identify sources; range resolution is coarse), for all scenes at once: it tries
    every permutation of the K_max truth slots, K_max! of them (6 for K_max = 3), so keep K_max small (<= 7). A
    truth left without an estimate (MUSIC found fewer peaks) gets the error miss = (angle_deg, range_m), e.g. the
    search grid's extent, so a method cannot win by missing sources; core.evaluation's miss, (inf, inf), marks
    those truths and still counts them as gross errors in clipped_angle_errors.
    """
    b, k_max = true_theta.shape
    pad = k_max - est_theta.shape[1]
    if pad < 0:
        raise ValueError(f"more estimate slots than truth slots: {est_theta.shape[1]=} > {k_max=}")
    if pad:  # padded estimate slots are simply not found
        est_theta, est_r = (torch.nn.functional.pad(x, (0, pad)) for x in (est_theta, est_r))
        est_mask = torch.nn.functional.pad(est_mask, (0, pad), value=False)
    dev, dt = true_theta.device, torch.float64
    perms = torch.tensor(list(itertools.permutations(range(k_max))), device=dev)  # (P, K_max): truth j <- est perm[j]
    et, er, em = est_theta.to(dev, dt)[:, perms], est_r.to(dev, dt)[:, perms], est_mask.to(dev)[:, perms]
    tt, tm = true_theta.to(dt)[:, None], true_mask[:, None]  # (B, 1, K_max)
    d_theta = (et - tt).abs()
    # A real truth matched to a missing estimate costs more than any real pair (|Δθ| <= π), padded truths nothing.
    cost = torch.where(tm, torch.where(em, d_theta, torch.full_like(d_theta, 4 * math.pi)), torch.zeros_like(d_theta))
    best = cost.sum(-1).argmin(-1)  # (B,)
    pick = best[:, None, None].expand(-1, 1, k_max)
    matched = em.gather(1, pick)[:, 0]
    err_t = torch.rad2deg(et.gather(1, pick)[:, 0] - true_theta.to(dt))
    err_r = er.gather(1, pick)[:, 0] - true_r.to(dt)
    err_t = torch.where(matched, err_t, torch.full_like(err_t, miss[0]))
    err_r = torch.where(matched, err_r, torch.full_like(err_r, miss[1]))
    nan = torch.full_like(err_t, math.nan)
    return torch.where(true_mask, err_t, nan), torch.where(true_mask, err_r, nan)


def angle_half_width_deg(theta: Tensor, array: ArrayConfig) -> Tensor:
    """The resolution half-width (core.grid.resolution) at each angle theta (radians), in degrees; same shape."""
    return math.degrees(resolution(array)[0]) / torch.cos(theta.double()).clamp_min(1e-3)


def clipped_angle_errors(err_deg: Tensor, theta: Tensor, array: ArrayConfig) -> tuple[Tensor, Tensor]:
    """(|err| capped at the half-width at the true angle, gross: |err| above it), each (B, K_max).

    err_deg: matched angle errors (B, K_max), degrees, nan in padded slots (kept nan); theta: true angles, radians.
    A gross error counts as one full half-width: it cannot dominate a mean square (DESIGN §6)."""
    width = angle_half_width_deg(theta, array).to(err_deg.device)
    size = err_deg.double().abs()
    return torch.minimum(size, width).where(~size.isnan(), size), size > width
