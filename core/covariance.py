"""The one aligned covariance pipeline (DESIGN §3), shared by training, validation and inference.

`pipeline` (model in hand) and `blended_covariance` (factors in hand) are the only ways any code path obtains
R_blend; both assemble it in `_assemble`, with β from BLEND_WEIGHTS by PipelineConfig.blend. Neither reads R_true.
What they read of the snapshots is `measure`d first (R_samp and C(R_samp)'s eigenvalues); a fixed training set is
measured once and indexed per batch (`pipeline_on`), which gives the same numbers as measuring every batch.
The calibrated rule's table is fitted by core.calibration and travels in the config (so in every checkpoint).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated

import torch
from pydantic import Field, model_validator

from core.configs import Config, one_of
from core.errors import ConfigError
from core.estimators import ESTIMATORS
from core.measurement import EigenSplit, measured_eigvals, split_eigvals
from core.music import ORDER_RULES
from core.snr import Manifold

# g₀ is clamped to ±logit(1 − GATE_START_EPS) ≈ ±6.9, so the gate starts where it can still move (DESIGN §3).
GATE_START_EPS = 1e-3


class PipelineConfig(Config):
    beta: float = Field(0.3, ge=0, le=1)  # β, weight of R_samp in the blend
    tikhonov_alpha: float = Field(1e-2, gt=0)  # α, ridge of the least-squares inversion of H
    range_weight: float = Field(0.3, ge=0)  # ρ, weight of A_range A_rangeᴴ in R_pred
    # R_pred gets the white noise floor the snapshots show (MDL's split of C's eigenvalues): R_pred = (1 − f)·S + f·I
    # with f the noise's share of the trace; the factors' rank (≤ 2·K_max) cannot hold σ²I themselves (DESIGN §3)
    noise_floor: bool = False
    # BLEND_WEIGHTS key: "fixed" β for all scenes | "adaptive" per-scene β from the model's gate | "calibrated"
    # per-scene β = beta_table[bin of the measured SNR estimate] (DESIGN §3)
    blend: Annotated[str, one_of(lambda: BLEND_WEIGHTS)] = "fixed"
    beta_min: float = Field(0.05, ge=0, le=1)  # β_min, the adaptive β's floor; adaptive β starts at beta (clamped)
    # calibrated: the SNR estimate ŝ that picks a scene's bin (SNR_ESTIMATES): "eigen", MDL's split of C(R_samp)'s
    # eigenvalues; "manifold", C's energy outside K_max steering vectors fitted to it (core.snr), where L < M leaves C
    # no noise eigenvalues
    snr_estimate: Annotated[str, one_of(lambda: SNR_ESTIMATES)] = "eigen"
    # calibrated: inner edges of the SNR-estimate bins, dB, one bin per evaluation SNR point and open bins at both ends
    beta_bins_db: tuple[float, ...] = (-7.5, -2.5, 2.5, 7.5, 12.5, 17.5)
    # calibrated: β of each bin (len(beta_bins_db) + 1), fitted by core.calibration; None: beta everywhere
    beta_table: tuple[Annotated[float, Field(ge=0, le=1)], ...] | None = None
    # the localiser inference runs on C(R_blend) (core.estimators): "music", or "dml" where sources may be coherent
    # or snapshots fewer than sources; the objective's and the calibration's classic baseline is the same estimator
    estimator: Annotated[str, one_of(lambda: ESTIMATORS)] = "music"
    # the K̂ rule of inference where K is unknown: "eigengap" on C(R_blend), or "mdl" on the snapshots' eigenvalues
    order: Annotated[str, one_of(lambda: ORDER_RULES)] = "eigengap"

    @property
    def calibrated(self) -> bool:
        """β comes from a table fitted on calibration scenes (core.calibration), which training refreshes."""
        return self.blend == "calibrated"

    @model_validator(mode="after")
    def _a_beta_per_bin(self) -> PipelineConfig:
        edges = self.beta_bins_db
        if any(lo >= hi for lo, hi in zip(edges, edges[1:], strict=False)):
            raise ConfigError.at("beta_bins_db", edges, "must increase strictly")
        if self.beta_table is not None and len(self.beta_table) != len(edges) + 1:
            raise ConfigError.at("beta_table", self.beta_table, f"must have len(beta_bins_db) + 1 = {len(edges) + 1} β")
        return self


@dataclass(frozen=True)
class Covariances:
    """Every matrix is (B, N, N) complex, Hermitian, with real trace N."""

    R_pred: torch.Tensor  # the network's own covariance; carries the graph
    R_samp: torch.Tensor  # Tikhonov least-squares sample covariance; detached
    R_blend: torch.Tensor  # what losses and inference use
    beta: torch.Tensor  # (B,) real, the weight of R_samp in each scene's blend; carries the gate's graph if adaptive


def hermitize(R: torch.Tensor) -> torch.Tensor:
    """(R + Rᴴ)/2 over the last two dims."""
    return 0.5 * (R + R.mH)


def trace_to_n(R: torch.Tensor) -> torch.Tensor:
    """Scale each matrix so that Re tr R = N: R·N / clamp(Re tr R, 1e-9). Never R / tr R."""
    n = R.shape[-1]
    tr = torch.diagonal(R, dim1=-2, dim2=-1).real.sum(-1).clamp_min(1e-9)
    return R * (n / tr)[..., None, None]


def predicted_covariance(
    A_angle: torch.Tensor, A_range: torch.Tensor, range_weight: float, noise_share: torch.Tensor | None = None
) -> torch.Tensor:
    """R_pred from factors (B, N, K_max) complex each; differentiable in both.

    noise_share (B,) real in [0, 1], detached: R_pred = (1 − f)·trace_to_N(S) + f·I, still of trace N."""
    R = trace_to_n(hermitize(A_angle @ A_angle.mH + range_weight * (A_range @ A_range.mH)))
    if noise_share is None:
        return R
    f = noise_share.to(R.real.dtype)[:, None, None]
    return (1 - f) * R + f * torch.eye(R.shape[-1], dtype=R.dtype, device=R.device)


def sample_covariance(Y: torch.Tensor, H: torch.Tensor, tikhonov_alpha: float) -> torch.Tensor:
    """R_samp from snapshots Y (B, M, L) and H (B, M, N); detached, (B, N, N).

    X_ls = (Hᴴ H + α I_N)⁻¹ Hᴴ Y is computed as Hᴴ (H Hᴴ + α I_M)⁻¹ Y, the same matrix: for M < N the N×N Gram
    has N − M eigenvalues equal to α, and its float32 solve put relative errors of 1e-3 to 0.17 into R_samp at
    α = 1e-4 to 1e-6 on `hybrid` (N = 32, M = 16), where the M×M system stays at 1e-6 (H has full row rank) and
    costs about half (docs/design.md §3). For H = I both forms give the same bits."""
    with torch.no_grad():
        gram = H @ H.mH + tikhonov_alpha * torch.eye(H.shape[-2], dtype=H.dtype, device=H.device)
        X = H.mH @ torch.linalg.solve(gram, Y)
        return trace_to_n(hermitize(X @ X.mH / Y.shape[-1]))


def blend(R_pred: torch.Tensor, R_samp: torch.Tensor, beta: float | torch.Tensor) -> torch.Tensor:
    """R_blend = trace_to_N(hermitize((1 - β)·R_pred + β·R_samp)); β a number or a (B,) tensor, one per scene."""
    if isinstance(beta, torch.Tensor):
        beta = beta.to(R_pred.real.dtype)[:, None, None]
    return trace_to_n(hermitize((1.0 - beta) * R_pred + beta * R_samp))


@dataclass(frozen=True)
class Measured:
    """What the snapshots of B scenes give before any model sees them; detached, one row per scene."""

    R_samp: torch.Tensor  # (B, N, N) complex, Tikhonov least-squares sample covariance, trace N
    H: torch.Tensor  # (B, M, N) complex
    eigvals: torch.Tensor  # (B, M) float64 descending, of C(R_samp) = T R_samp Tᴴ: the gate's input and ŝ's
    snapshots: int  # L
    tikhonov_alpha: float  # the α R_samp was computed with
    manifold_snr_db: torch.Tensor | None = None  # (B,) float64, core.snr's ŝ where measured with a Manifold

    def __len__(self) -> int:
        return self.R_samp.shape[0]

    def __getitem__(self, idx) -> Measured:
        s = None if self.manifold_snr_db is None else self.manifold_snr_db[idx]
        return Measured(self.R_samp[idx], self.H[idx], self.eigvals[idx], self.snapshots, self.tikhonov_alpha, s)


def measure(Y: torch.Tensor, H: torch.Tensor, tikhonov_alpha: float, manifold: Manifold | None = None) -> Measured:
    """Snapshots Y (B, M, L) and H (B, M, N) to their Measured: R_samp and the eigenvalues of C(R_samp), and with a
    manifold (core.snr.manifold of the scenario and PipelineConfig.snr_estimate) its SNR estimate."""
    R_samp = sample_covariance(Y, H, tikhonov_alpha)
    s = None if manifold is None else manifold.snr_db(R_samp, H)
    return Measured(R_samp, H, measured_eigvals(R_samp, H), Y.shape[-1], tikhonov_alpha, s)


@dataclass(frozen=True)
class BlendInputs:
    """What a blend rule may read, besides the config: all of it from the snapshots and the model, none from R_true."""

    gate_logit: torch.Tensor | None  # (B,) real, the model's gate logit (adaptive)
    x: Measured
    k_max: int  # K_max, the factors' width

    @property
    def R_samp(self) -> torch.Tensor:
        return self.x.R_samp

    @cached_property
    def split(self) -> EigenSplit:
        """MDL's signal/noise split of R_samp in the measurement domain, computed once per batch when asked for."""
        return split_eigvals(self.x.eigvals, self.k_max, self.x.snapshots)


def _fixed_beta(x: BlendInputs, cfg: PipelineConfig) -> float:
    # The Python number, not a tensor: blend() then computes exactly what it computed before β could vary.
    return cfg.beta


def _adaptive_beta(x: BlendInputs, cfg: PipelineConfig) -> torch.Tensor:
    """β = β_min + (1 − β_min)·sigmoid(gate_logit + g₀), g₀ = logit((β − β_min)/(1 − β_min)) (DESIGN §3)."""
    if x.gate_logit is None:
        raise ConfigError("blend='adaptive' needs the model's gate logit: pass factors (A_angle, A_range, gate_logit)")
    start = (cfg.beta - cfg.beta_min) / max(1.0 - cfg.beta_min, 1e-12)
    start = min(max(start, GATE_START_EPS), 1.0 - GATE_START_EPS)
    g = x.gate_logit + math.log(start / (1.0 - start))
    # The clamp only guards rounding of β_min + (1 − β_min)·1 in float32; sigmoid already lies in [0, 1].
    return (cfg.beta_min + (1.0 - cfg.beta_min) * torch.sigmoid(g)).clamp(cfg.beta_min, 1.0)


def _manifold_snr(x: BlendInputs) -> torch.Tensor:
    if x.x.manifold_snr_db is None:
        raise ConfigError(
            "snr_estimate='manifold' needs scenes measured with the scenario's manifold: "
            "measure(..., manifold=core.snr.manifold(scenario, 'manifold'))"
        )
    return x.x.manifold_snr_db


# ŝ (B,) float64 dB, by PipelineConfig.snr_estimate: what places each scene in a bin of the calibrated table
SNR_ESTIMATES: dict[str, Callable[[BlendInputs], torch.Tensor]] = {
    "eigen": lambda x: x.split.snr_db,
    "manifold": _manifold_snr,
}


def snr_bin(x: BlendInputs, cfg: PipelineConfig) -> torch.Tensor:
    """(B,) int64: each scene's bin of cfg.beta_bins_db by its measured SNR estimate ŝ (cfg.snr_estimate)."""
    s = SNR_ESTIMATES[cfg.snr_estimate](x)
    return torch.bucketize(s, torch.tensor(cfg.beta_bins_db, dtype=s.dtype, device=s.device), right=True)


def _calibrated_beta(x: BlendInputs, cfg: PipelineConfig) -> float | torch.Tensor:
    """β = beta_table[bin(ŝ)] per scene; cfg.beta everywhere until a table has been fitted (core.calibration)."""
    if cfg.beta_table is None:
        return cfg.beta
    table = torch.tensor(cfg.beta_table, dtype=x.R_samp.real.dtype, device=x.R_samp.device)
    return table[snr_bin(x, cfg)]


# β of the blend, by PipelineConfig.blend: a number for every scene, or a (B,) tensor, one β per scene.
BLEND_WEIGHTS: dict[str, Callable[[BlendInputs, PipelineConfig], float | torch.Tensor]] = {
    "fixed": _fixed_beta,
    "adaptive": _adaptive_beta,
    "calibrated": _calibrated_beta,
}


def _assemble(factors: tuple[torch.Tensor, ...], x: Measured, cfg: PipelineConfig) -> Covariances:
    if x.tikhonov_alpha != cfg.tikhonov_alpha:
        raise ConfigError(
            f"the scenes were measured with tikhonov_alpha={x.tikhonov_alpha}, the pipeline has {cfg.tikhonov_alpha=}"
        )
    A_angle, A_range, *gate = factors
    inputs = BlendInputs(gate[0] if gate else None, x, A_angle.shape[-1])
    floor = inputs.split.noise_share if cfg.noise_floor else None
    R_pred = predicted_covariance(A_angle, A_range, cfg.range_weight, floor)
    beta = BLEND_WEIGHTS[cfg.blend](inputs, cfg)
    R_blend = blend(R_pred, x.R_samp.to(R_pred.dtype), beta)
    if not isinstance(beta, torch.Tensor):
        beta = torch.full(R_pred.shape[:1], beta, dtype=R_pred.real.dtype, device=R_pred.device)
    return Covariances(R_pred=R_pred, R_samp=x.R_samp, R_blend=R_blend, beta=beta)


def blended_covariance(
    factors: tuple[torch.Tensor, ...],
    Y: torch.Tensor,
    H: torch.Tensor,
    cfg: PipelineConfig,
    manifold: Manifold | None = None,
) -> Covariances:
    """The pipeline for given factors = (A_angle, A_range[, gate_logit]): (B, N, K_max) complex each, and the
    gate logit (B,) real, which blend="adaptive" needs and blend="fixed" ignores; manifold as in `pipeline`."""
    return _assemble(factors, measure(Y, H, cfg.tikhonov_alpha, manifold), cfg)


def pipeline_on(model: Callable, x: Measured, cfg: PipelineConfig) -> Covariances:
    """The pipeline on scenes already measured (measure(Y, H, cfg.tikhonov_alpha), or a slice of it).

    The model reads the Measured (R_samp, H and C's eigenvalues) and returns (A_angle, A_range, gate_logit);
    R_samp is also the blend's partner."""
    return _assemble(model(x), x, cfg)


def pipeline(
    model: Callable, Y: torch.Tensor, H: torch.Tensor, cfg: PipelineConfig, manifold: Manifold | None = None
) -> Covariances:
    """Snapshots to R_blend through a model: Y (B, M, L) and H (B, M, N) in, Covariances out. manifold:
    core.snr.manifold(scenario, cfg.snr_estimate), which a calibrated table over the manifold ŝ needs.

    R_samp is computed once and serves as both the model's input and the blend's partner.
    Training, validation and inference all call this function (training on a fixed set through pipeline_on).
    """
    return pipeline_on(model, measure(Y, H, cfg.tikhonov_alpha, manifold), cfg)
