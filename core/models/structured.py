"""The "structured" model: a physics head that puts each source slot on the array manifold."""

from __future__ import annotations

import math

import torch
from torch import nn

from core.array import steering
from core.models.base import CovarianceModel, ModelSize, matrix_channels, mlp
from core.scenario import ScenarioConfig


class StructuredModel(CovarianceModel):
    """Physics head: A_angle[:, k] = sqrt(p_k)·a(θ_k, r_k); A_range a learned, initially small, correction.

    θ_k = centre + half-span·tanh(z) inside the scenario's angle range; 1/r_k = 1/r_max + sigmoid(z)·(1/r_min − 1/r_max)
    between its range bounds; p_k = softplus(z). Slots are sorted by their angle logits' initial bias so that
    slot k starts near the k-th angle of a sorted scene, as the generator sorts its ground truth.
    """

    n_grid_angles = 64  # Bartlett grid points in θ
    n_grid_ranges = 3  # Bartlett grid points in 1/r

    def __init__(self, cfg: ModelSize, scenario: ScenarioConfig) -> None:
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
        d_slot = 3 + 2 * self.n  # θ, 1/r, p logits and the A_range column
        d_in = self.n * self.row_width + self.beams.shape[-1]
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
