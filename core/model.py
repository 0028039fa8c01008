"""Networks that map R_samp (and H) to the pipeline's factors (A_angle, A_range), chosen by name.

Every model is a core.layers.CovarianceModel: forward(R_samp (B, N, N) complex64, H (B, M, N) complex64) ->
(A_angle, A_range, gate_logit), factors (B, N, K_max) complex64 and the adaptive blend's gate logit (B,) float32
from the shared BlendGate. Each model implements only factors(R_samp, H) -> (A_angle, A_range).
With a random per-scene combiner the model also sees the N×N Gram Hᴴ H.

    "mlp"          MLP over Re/Im of R_samp (and of Hᴴ H)
    "transformer"  each antenna's row of R_samp (and of Hᴴ H) is a token; per-token outputs are that
                   antenna's rows of A_angle and A_range
    "structured"   physics head: per slot k it predicts (θ_k, r_k, p_k) and builds
                   A_angle[:, k] = sqrt(p_k)·a(θ_k, r_k) from core.array; A_range is a learned correction.
                   It also reads a Bartlett spectrum aᴴ R_samp a / N on a fixed (θ, 1/r) grid.
    "music_residual"  structured head started at classic MUSIC on R_samp; learns bounded corrections
    "eigshrink"       learned shrinkage of R_samp's top eigenvalues on its own eigenvectors
                   (both in core/subspace_heads.py)
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
from pydantic import Field, model_validator
from torch import nn

from core.array import steering
from core.configs import Config, one_of
from core.errors import ConfigError
from core.layers import CovarianceModel, matrix_channels, mlp
from core.scenario import ScenarioConfig
from core.subspace_heads import EigenShrinkModel, MusicResidualModel


class ModelConfig(Config):
    # registry key in MODELS; music_residual keeps R_samp-level MUSIC at high SNR
    arch: Annotated[str, one_of(lambda: MODELS)] = "music_residual"
    width: int = Field(256, ge=1)  # hidden width / d_model
    depth: int = Field(3, ge=1)  # hidden layers / transformer blocks
    dropout: float = Field(0.0, ge=0, lt=1)  # dropout probability
    heads: int = Field(4, ge=1)  # transformer attention heads; must divide width

    @model_validator(mode="after")
    def _heads_divide_width(self) -> ModelConfig:
        if self.width % self.heads:
            raise ConfigError.at("heads", self.heads, f"must be a divisor of width={self.width}")
        return self


def _to_factors(out: torch.Tensor, n: int, k_max: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, N, 4·K_max) real -> A_angle, A_range (B, N, K_max) complex64."""
    re_a, im_a, re_r, im_r = out.float().split(k_max, dim=-1)
    return torch.complex(re_a, im_a), torch.complex(re_r, im_r)


class MLPModel(CovarianceModel):
    """MLP over the flattened Re/Im of R_samp (and Hᴴ H)."""

    def __init__(self, cfg: ModelConfig, scenario: ScenarioConfig) -> None:
        super().__init__(scenario)
        d_in = (4 if self.sees_h else 2) * self.n * self.n
        self.net = mlp(d_in, cfg.width, cfg.depth, 4 * self.n * self.k_max, cfg.dropout)

    def factors(self, R_samp: torch.Tensor, H: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = matrix_channels(R_samp, H, self.sees_h).flatten(1)
        return _to_factors(self.net(x).view(-1, self.n, 4 * self.k_max), self.n, self.k_max)


class TransformerModel(CovarianceModel):
    """Antenna rows as tokens, learned position embeddings, pre-norm encoder blocks."""

    def __init__(self, cfg: ModelConfig, scenario: ScenarioConfig) -> None:
        super().__init__(scenario)
        d_token = (4 if self.sees_h else 2) * self.n
        self.embed = nn.Linear(d_token, cfg.width)
        self.pos = nn.Parameter(0.02 * torch.randn(self.n, cfg.width))
        block = nn.TransformerEncoderLayer(
            cfg.width, cfg.heads, 2 * cfg.width, cfg.dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(block, cfg.depth, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(cfg.width), nn.Linear(cfg.width, 4 * self.k_max))

    def factors(self, R_samp: torch.Tensor, H: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.embed(matrix_channels(R_samp, H, self.sees_h)) + self.pos
        return _to_factors(self.head(self.encoder(tokens)), self.n, self.k_max)


class StructuredModel(CovarianceModel):
    """Physics head: A_angle[:, k] = sqrt(p_k)·a(θ_k, r_k); A_range a learned, initially small, correction.

    θ_k = centre + half-span·tanh(z) inside the scenario's angle range; 1/r_k = 1/r_max + sigmoid(z)·(1/r_min − 1/r_max)
    between its range bounds; p_k = softplus(z). Slots are sorted by their angle logits' initial bias so that
    slot k starts near the k-th angle of a sorted scene, as the generator sorts its ground truth.
    """

    n_grid_angles = 64  # Bartlett grid points in θ
    n_grid_ranges = 3  # Bartlett grid points in 1/r

    def __init__(self, cfg: ModelConfig, scenario: ScenarioConfig) -> None:
        super().__init__(scenario)
        self.array = scenario.array
        lo, hi = (math.radians(a) for a in scenario.scene.angle_deg)
        self.theta_mid, self.theta_half = 0.5 * (hi + lo), 0.5 * (hi - lo)
        r_min, r_max = scenario.range_m
        self.inv_r_lo, self.inv_r_span = 1.0 / r_max, 1.0 / r_min - 1.0 / r_max
        # Fixed Bartlett beams over the scenario's (θ, 1/r) box: a strong, cheap, linear feature of R_samp.
        g_theta = torch.linspace(lo, hi, self.n_grid_angles, dtype=torch.float64)
        g_inv_r = self.inv_r_lo + torch.linspace(0.1, 0.9, self.n_grid_ranges, dtype=torch.float64) * self.inv_r_span
        tt, ii = torch.meshgrid(g_theta, g_inv_r, indexing="ij")
        self.register_buffer("beams", steering(tt.flatten(), 1.0 / ii.flatten(), self.array).to(torch.complex64))
        d_in = (4 if self.sees_h else 2) * self.n * self.n + self.beams.shape[-1]
        d_slot = 3 + 2 * self.n  # θ, 1/r, p logits and the A_range column
        self.net = mlp(d_in, cfg.width, cfg.depth, self.k_max * d_slot, cfg.dropout)
        last = self.net[-1]
        with torch.no_grad():
            last.weight.view(self.k_max, d_slot, -1)[:, 3:].mul_(0.1)  # A_range starts as a small correction
            bias = last.bias.view(self.k_max, d_slot)
            bias[:, 0] = torch.atanh(torch.linspace(-0.6, 0.6, self.k_max))  # spread slots over the angle range
            bias[:, 1] = 0.0
            bias[:, 2] = 0.5

    def factors(self, R_samp: torch.Tensor, H: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = R_samp.shape[0]
        spectrum = (self.beams.conj() * (R_samp @ self.beams)).sum(-2).real / self.n  # (B, G)
        x = torch.cat([matrix_channels(R_samp, H, self.sees_h).flatten(1), spectrum], dim=-1)
        out = self.net(x).float().view(b, self.k_max, 3 + 2 * self.n)  # float32 physics under bf16 autocast
        theta = self.theta_mid + self.theta_half * torch.tanh(out[..., 0])
        r = 1.0 / (self.inv_r_lo + torch.sigmoid(out[..., 1]) * self.inv_r_span)
        power = nn.functional.softplus(out[..., 2])
        A_angle = steering(theta, r, self.array) * power.sqrt()[:, None, :]
        re, im = out[..., 3:].split(self.n, dim=-1)
        A_range = torch.complex(re, im).transpose(-2, -1)
        return A_angle.to(torch.complex64), A_range.contiguous()


MODELS: dict[str, type[CovarianceModel]] = {
    "mlp": MLPModel,
    "transformer": TransformerModel,
    "structured": StructuredModel,
    "music_residual": MusicResidualModel,
    "eigshrink": EigenShrinkModel,
}


def build_model(cfg: ModelConfig, scenario: ScenarioConfig) -> CovarianceModel:
    """The registry's model for cfg.arch, sized for the scenario (N, K_max, combiner, angle and range box)."""
    return MODELS[cfg.arch](cfg, scenario)
