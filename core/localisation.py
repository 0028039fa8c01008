"""The localisation metric of validation (DESIGN §6): MUSIC with the true K, scored against the per-source CRB.

On the validation set's first n_scenes scenes (the set is drawn at random, so a random subset), every `every`
epochs and always after the last one, KEYS are computed for MUSIC with the true K on the learned C = T R_blend Tᴴ
and on the classic W (Y Yᴴ/L) W (core.measurement), against core.crb.scene_crb; win_rate counts ties as one half.

Errors come from optimal assignment (core.metrics.matched_errors); a source MUSIC misses counts with the
search grid's extent as its error. The classic figures and the CRB depend only on the subset, so
`reference` computes them once and train() keeps them in its data cache.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from pydantic import Field

from core.configs import Config
from core.crb import scene_crb
from core.linalg import finite_or_identity
from core.measurement import classic_covariance, operator, to_measurement
from core.metrics import efficiency_db, matched_errors, win_rate
from core.music import Grid, build_grid, music
from core.scenario import ScenarioConfig, SceneBatch

KEYS: tuple[str, ...] = ("angle_eff_db", "range_eff_db", "classic_angle_eff_db", "classic_range_eff_db", "win_rate")


class LocalisationConfig(Config):
    # 256 scenes (~500 sources) every 3rd epoch and after the last: 4 MUSIC runs in a 10-epoch `quick` trial,
    # ~0.35 s each on 2 quiet CPU threads, about 12% of the trial (benchmarks/localisation_metric.py measures it).
    n_scenes: int = Field(256, ge=0, le=100_000)  # validation scenes MUSIC runs on (capped at n_val); 0: off
    every: int = Field(3, ge=1)  # run it after every `every`-th epoch (1 = each epoch); the last epoch always has it

    def due(self, epoch: int, epochs: int) -> bool:
        """Whether epoch (0-based) of a run of `epochs` gets the metric."""
        return self.n_scenes > 0 and ((epoch + 1) % self.every == 0 or epoch == epochs - 1)


@dataclass(frozen=True)
class Reference:
    """What the metric compares against, fixed for a validation subset: computed once, cached."""

    subset: SceneBatch  # the scenes MUSIC runs on, B = min(n_scenes, n_val)
    T: torch.Tensor | None  # (B, M, N) measurement operator W H; None for H = I
    grid: Grid  # the scenario's default search grid, as `hpo evaluate` uses
    crb_angle_deg: torch.Tensor  # (B, K_max) CRB standard deviation, degrees; nan in padded slots
    crb_range_m: torch.Tensor  # (B, K_max) metres
    classic_err_deg: torch.Tensor  # (B, K_max) classic MUSIC's matched angle error, degrees
    classic_err_m: torch.Tensor  # (B, K_max) metres
    miss: tuple[float, float]  # (degrees, metres): the error of a source MUSIC missed, the grid's extent
    classic: dict[str, float]  # classic_angle_eff_db, classic_range_eff_db


def _errors(C: torch.Tensor, ref_like: SceneBatch, grid: Grid, T, miss) -> tuple[torch.Tensor, torch.Tensor]:
    """Matched per-truth errors of MUSIC with the true K on a measurement-domain covariance C (B, M, M)."""
    k_max = ref_like.theta.shape[1]
    est = music(C, grid, k_max, k=ref_like.K, T=T)
    return matched_errors(est.theta, est.r, est.mask, ref_like.theta, ref_like.r, ref_like.mask, miss)


def reference(scenario: ScenarioConfig, val: SceneBatch, cfg: LocalisationConfig) -> Reference:
    """The subset, its CRB and the classic baseline's errors; val is the validation set, on its device."""
    subset = val[: min(cfg.n_scenes, len(val))]
    grid = build_grid(scenario, device=subset.Y.device)
    r = 1 / grid.inv_r
    miss = (math.degrees((grid.theta[-1] - grid.theta[0]).item()), (r.max() - r.min()).item())
    T = operator(subset.H)
    bound = scene_crb(subset, scenario.array)
    err_t, err_r = _errors(classic_covariance(subset.Y, subset.H), subset, grid, T, miss)
    classic = {
        "classic_angle_eff_db": efficiency_db(err_t, bound.angle_deg),
        "classic_range_eff_db": efficiency_db(err_r, bound.range_m),
    }
    return Reference(subset, T, grid, bound.angle_deg, bound.range_m, err_t, err_r, miss, classic)


def localisation_metrics(R_blend: torch.Tensor, ref: Reference) -> dict[str, float]:
    """KEYS for the learned R_blend (B, N, N) of ref.subset's scenes, in that order."""
    # A non-finite R_blend (a diverging model) is scored as the identity, i.e. badly, instead of crashing eigh.
    R_blend, _ = finite_or_identity(R_blend)
    err_t, err_r = _errors(to_measurement(R_blend, ref.T), ref.subset, ref.grid, ref.T, ref.miss)
    return {
        "angle_eff_db": efficiency_db(err_t, ref.crb_angle_deg),
        "range_eff_db": efficiency_db(err_r, ref.crb_range_m),
        **ref.classic,
        "win_rate": win_rate(err_t, ref.classic_err_deg),
    }
