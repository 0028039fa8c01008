"""Scoring of localisation estimates (DESIGN §5, §6): optimal assignment, then RMSE.

The SNR-sweep evaluation of trained checkpoints is built on top of `score`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment


@dataclass(frozen=True)
class Scores:
    angle_rmse_deg: float  # over matched pairs, degrees; nan when nothing matched
    range_rmse_m: float  # over matched pairs, metres; nan when nothing matched
    angle_err_deg: np.ndarray  # (P,) estimate − truth of every matched pair, degrees
    range_err_m: np.ndarray  # (P,) estimate − truth of every matched pair, metres


def _rmse(d: np.ndarray) -> float:
    return float(np.sqrt(np.mean(d**2))) if d.size else math.nan


def score(
    est_theta: torch.Tensor,
    est_r: torch.Tensor,
    est_mask: torch.Tensor,
    true_theta: torch.Tensor,
    true_r: torch.Tensor,
    true_mask: torch.Tensor,
) -> Scores:
    """Match estimates to truths per scene by optimal assignment on angle, then take RMSEs.

    All inputs (B, K) tensors: radians, metres, bool (K may differ between estimates and truths).
    Angles identify sources: they are at least the minimum separation apart, whereas range resolution
    is coarse. When K̂ ≠ K only min(K̂, K) pairs count; the order error is reported as K accuracy.
    """
    et, er, em = (x.detach().cpu().double().numpy() for x in (est_theta, est_r, est_mask))
    tt, tr, tm = (x.detach().cpu().double().numpy() for x in (true_theta, true_r, true_mask))
    d_t, d_r = [], []
    for b in range(et.shape[0]):
        ei, ti = np.flatnonzero(em[b]), np.flatnonzero(tm[b])
        if len(ei) == 0 or len(ti) == 0:
            continue
        rows, cols = linear_sum_assignment(np.abs(et[b, ei][:, None] - tt[b, ti][None, :]))
        d_t.append(et[b, ei[rows]] - tt[b, ti[cols]])
        d_r.append(er[b, ei[rows]] - tr[b, ti[cols]])
    d_t = np.degrees(np.concatenate(d_t)) if d_t else np.zeros(0)
    d_r = np.concatenate(d_r) if d_r else np.zeros(0)
    return Scores(_rmse(d_t), _rmse(d_r), d_t, d_r)
