"""The search objective (DESIGN §6): loc_gain_db, the learned pipeline against the classic method on the same scenes.

The localisation set has n_scenes scenes at each SNR point of the evaluation grid (SNR_GRID_DB), the same
geometry at every point (as `hpo evaluate` draws them), true K, from a seed of its own derived from val_seed.
Per point s and coordinate q ∈ {θ, r}: MSE of the pipeline's estimator (MUSIC, or DML: core.estimators) with the
true K on the learned C (T R_blend Tᴴ; the classic C itself in scenes at β = 1, core.measurement.localised)
and on the classic W (Y Yᴴ/L) W, angle errors capped at the resolution half-width (core.metrics.clipped_angle_errors);
loc_gain_db = mean over s and q of 10·log10(MSE_classic / MSE_learned): 0 dB = classic, higher is better.
Each point weighs the same, so a few gross errors at −10 dB cannot decide it. The classic side depends only
on the scenes, so `reference` computes it once and core.train keeps it in its data cache.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace

import torch
from pydantic import Field

from core.configs import Config, every_and_last
from core.estimators import ESTIMATORS
from core.grid import Grid, build_grid
from core.linalg import finite_or_identity
from core.measurement import classic_covariance, falls_back, operator, to_measurement
from core.metrics import clipped_angle_errors, matched_errors
from core.scenario import ScenarioConfig, SceneBatch, generate

# The evaluation's SNR points, dB, SNR = p_k/σ²: the objective is measured where `hpo evaluate` measures.
SNR_GRID_DB: tuple[float, ...] = (-10.0, -5.0, 0.0, 5.0, 10.0, 15.0, 20.0)
MAX_SCENES_PER_POINT = 10_000  # validation scenes per SNR point, the search's and `hpo retrain`'s alike
MSE_FLOOR = 1e-12  # keeps a ratio finite where a method is exact (the oracle); far below any real error²


class LocalisationConfig(Config):
    # 64 scenes per point × 7 points every few epochs: ~0.9 s of MUSIC on 2 CPU threads per measurement
    # (benchmarks/localisation_metric.py measures its share of a trial).
    n_scenes: int = Field(64, ge=0, le=MAX_SCENES_PER_POINT)  # scenes per SNR point MUSIC runs on; 0: no metric
    every: int = Field(5, ge=1)  # run it after every `every`-th epoch (1 = each epoch); the last epoch always has it

    def due(self, epoch: int, epochs: int) -> bool:
        """Whether epoch (0-based) of a run of `epochs` gets the metric."""
        return self.n_scenes > 0 and every_and_last(epoch, epochs, self.every)


def keys() -> tuple[str, ...]:
    """Every key localisation_metrics returns: loc_gain_db, then per SNR point the two gains and gross rates."""
    per = ("angle_gain_db", "range_gain_db", "gross_rate", "classic_gross_rate")
    return ("loc_gain_db", "gross_rate", "classic_gross_rate", *(f"{k}@{s:g}" for s in SNR_GRID_DB for k in per))


def derived_seed(seed: int, purpose: str) -> int:
    """A seed for `purpose` ("localisation", "calibration", …) from a base seed, apart from it and from the others."""
    return int.from_bytes(hashlib.sha256(f"{purpose}/{seed}".encode()).digest()[:7], "little")


@dataclass(frozen=True)
class Reference:
    """Scenes and a baseline's errors on them, what a learned covariance is compared with: cached."""

    scenes: SceneBatch  # B scenes
    T: torch.Tensor | None  # (B, M, N) measurement operator W H; None for H = I
    grid: Grid  # the scenario's default search grid, as `hpo evaluate` uses
    miss: tuple[float, float]  # (degrees, metres): the error of a source MUSIC missed, the grid's extent
    baseline: tuple[torch.Tensor, ...]  # the baseline's errors(): (clipped angle, range error, gross)
    estimator: str = "music"  # the core.estimators key errors() localises with, the baseline's and the learned's

    def head(self, n: int) -> Reference:
        """The Reference of the first n scenes."""
        T = None if self.T is None else self.T[:n]
        return replace(self, scenes=self.scenes[:n], T=T, baseline=tuple(x[:n] for x in self.baseline))

    def pipeline_errors(self, R_blend: torch.Tensor, beta: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        """errors() of the pipeline on R_blend (B, N, N) with its β (B,) per scene, or None: a scene at β = 1
        localises on the classic C (core.measurement.localised), whose errors are the baseline's already, so the
        estimator runs on the other scenes only (a calibrated table is classic from ~5-10 dB up)."""
        run = ~falls_back(beta, len(self.scenes)).cpu()
        if bool(run.all()):
            return self.errors(to_measurement(R_blend, self.T))
        idx = run.nonzero()[:, 0].to(self.scenes.Y.device)
        out = tuple(x.clone() for x in self.baseline)
        sub = replace(self, scenes=self.scenes[idx], T=None if self.T is None else self.T[idx])
        for x, e in zip(out, sub.errors(to_measurement(R_blend[idx.to(R_blend.device)], sub.T)), strict=True):
            x[idx] = e
        return out

    def errors(self, C: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(|angle error| capped at the half-width, degrees; range error, metres; gross) (B, K_max) of the
        estimator with the true K on a measurement-domain C (B, M, M); nan (False) in padded slots."""
        s = self.scenes
        est = ESTIMATORS[self.estimator](C, self.grid, s.theta.shape[1], k=s.K, T=self.T)
        err_t, err_r = matched_errors(est.theta, est.r, est.mask, s.theta, s.r, s.mask, self.miss)
        clipped, gross = clipped_angle_errors(err_t, s.theta, self.grid.array)
        return clipped, err_r, gross & s.mask


def make_reference(scenario: ScenarioConfig, scenes: SceneBatch, estimator: str = "music") -> Reference:
    """The Reference of `scenes`, the baseline being `estimator` on the classic W (Y Yᴴ/L) W: the pipeline's fallback
    at β = 1 (core.measurement.localised), which Reference.pipeline_errors relies on."""
    grid = build_grid(scenario, device=scenes.Y.device)
    r = 1 / grid.inv_r
    miss = (math.degrees((grid.theta[-1] - grid.theta[0]).item()), (r.max() - r.min()).item())
    T = operator(scenes.H)
    ref = Reference(scenes, T, grid, miss, (), estimator)
    return replace(ref, baseline=ref.errors(classic_covariance(scenes.Y, scenes.H)))


def localisation_set(scenario: ScenarioConfig, n_scenes: int, seed: int, device=None) -> SceneBatch:
    """n_scenes scenes at each point of SNR_GRID_DB, the same draws at every point, concatenated point by point."""
    return SceneBatch.cat([generate(scenario, n_scenes, seed, device=device, snr_db=s) for s in SNR_GRID_DB])


def reference(
    scenario: ScenarioConfig, val_seed: int, cfg: LocalisationConfig, estimator: str = "music", device=None
) -> Reference:
    """The localisation set of a validation seed, with `estimator` on the classic W (Y Yᴴ/L) W as the baseline."""
    scenes = localisation_set(scenario, cfg.n_scenes, derived_seed(val_seed, "localisation"), device)
    return make_reference(scenario, scenes, estimator)


def _gain_db(mse_classic: torch.Tensor, mse_learned: torch.Tensor) -> float:
    return 10 * math.log10(max(mse_classic.item(), MSE_FLOOR) / max(mse_learned.item(), MSE_FLOOR))


def localisation_metrics(R_blend: torch.Tensor, ref: Reference, beta: torch.Tensor | None = None) -> dict[str, float]:
    """keys() for the learned R_blend (B, N, N) of the localisation set ref.scenes, in that order; beta (B,) the
    pipeline's β per scene, whose scenes at β = 1 localise on the classic C (core.measurement.localised)."""
    # A non-finite R_blend (a diverging model) is scored as the identity, i.e. badly, instead of crashing eigh.
    R_blend, _ = finite_or_identity(R_blend)
    learned = ref.pipeline_errors(R_blend, beta)
    n = len(ref.scenes) // len(SNR_GRID_DB)
    mask = ref.scenes.mask
    out, gains = {}, []
    for i, snr in enumerate(SNR_GRID_DB):
        point = slice(i * n, (i + 1) * n)
        real = mask[point]
        (lt, lr, lg), (ct, cr, cg) = ([x[point][real] for x in errs] for errs in (learned, ref.baseline))
        angle = _gain_db(ct.square().mean(), lt.square().mean())
        range_ = _gain_db(cr.square().mean(), lr.square().mean())
        gains += [angle, range_]
        out |= {
            f"angle_gain_db@{snr:g}": angle,
            f"range_gain_db@{snr:g}": range_,
            f"gross_rate@{snr:g}": lg.double().mean().item(),
            f"classic_gross_rate@{snr:g}": cg.double().mean().item(),
        }
    head = {
        "loc_gain_db": sum(gains) / len(gains),
        "gross_rate": learned[2][mask].double().mean().item(),
        "classic_gross_rate": ref.baseline[2][mask].double().mean().item(),
    }
    return head | out
