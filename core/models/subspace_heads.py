"""Heads that start from R_samp's own subspace, so the learned R_blend begins where classic MUSIC is.

MUSIC on the coarse grid below costs tens of milliseconds per 256 scenes on a CPU, little beside a training step,
so music_residual runs it per batch rather than caching it with the data.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from core.array import steering
from core.errors import ConfigError
from core.grid import GridConfig, build_grid, resolution
from core.models.base import CovarianceModel, ModelSize, log_eigenvalues, matrix_channels, mlp
from core.music import eigengap_order, music
from core.scenario import ScenarioConfig

# ~1.1° θ steps, fine enough that sources at the scene's minimum separation (6°) get peaks of their own, and 16
# ranges; 6 refinement steps bring peaks below the grid step. No peak repair: the head always asks for K_max
# peaks, so every scene with K < K_max would carry noise eigenvectors no source explains and be re-searched.
COARSE_GRID = GridConfig(n_angles=121, n_ranges=16, refine_steps=6, repair=False)
# Bound of the learned angle correction, in beam half-widths (core.grid.resolution, ~3° at broadside for N = 16):
# half a half-width keeps a corrected peak on its own MUSIC ridge. A bound near the minimum source separation
# lets a correction reach a neighbour's ridge, and MUSIC on R_blend then localises worse than on R_samp.
DTHETA_HALF_WIDTHS = 0.5


def _small_readout(linear: nn.Linear, rows: slice, d_slot: int, k_max: int, scale: float) -> None:
    """Scale the read-out rows `rows` of every slot (a small scale makes those outputs start near 0)."""
    with torch.no_grad():
        linear.weight.view(k_max, d_slot, -1)[:, rows].mul_(scale)
        linear.bias.view(k_max, d_slot)[:, rows].mul_(scale)


class MusicResidualModel(CovarianceModel):
    """Residual physics head around MUSIC on R_samp.

    MUSIC (no gradient) gives K_max peaks (θ̂_k, r̂_k), strongest first, and the eigengap order K̂. The network
    predicts bounded corrections Δθ_k, Δ(1/r)_k, a log-power offset and a slot gate: A_angle[:, k] =
    sqrt(p_k·g_k)·a(θ̂_k + Δθ_k, 1/(û_k + Δu_k)), p_k starting at R_samp's k-th eigenvalue above its noise floor,
    g_k at 1/2; |Δθ_k| stays within half a beam half-width at θ̂_k, so MUSIC on R_blend keeps R_samp's peak.
    A_range is a learned, initially small, correction. The corrections start at zero, so before training R_pred's
    signal subspace is spanned by MUSIC's own estimates.
    """

    def __init__(self, cfg: ModelSize, scenario: ScenarioConfig) -> None:
        super().__init__(scenario)
        self.array = scenario.array
        self.grid = build_grid(scenario, COARSE_GRID)
        r_min, r_max = scenario.range_m
        self.u_lo, self.u_span = 1.0 / r_max, 1.0 / r_min - 1.0 / r_max  # 1/r box, 1/metres
        self.half_width = resolution(self.array)[0]  # broadside beam half-width, radians
        self.theta_half = math.radians(0.5 * (scenario.scene.angle_deg[1] - scenario.scene.angle_deg[0]))
        d_slot_in = 4  # θ̂ (scaled), û (scaled), peak found, slot < K̂
        d_in = self.n * self.row_width + self.n + self.k_max * (d_slot_in + 1)
        self.d_slot = 4 + 2 * self.n  # Δθ, Δu, log-power offset, gate logit, then the A_range column
        self.net = mlp(d_in, cfg.width, cfg.depth, self.k_max * self.d_slot, cfg.dropout)
        # Corrections start at ~0 (1e-4, not 0, so the output still depends on the input). Every slot gate starts at
        # 1/2, not at MUSIC's order K̂: K̂ is often wrong at low SNR, and a confident start from it would drop true
        # sources from R_pred; the network sees slot < K̂ and learns the gate.
        _small_readout(self.net[-1], slice(0, 4), self.d_slot, self.k_max, 1e-4)
        _small_readout(self.net[-1], slice(4, None), self.d_slot, self.k_max, 0.1)  # A_range starts small

    @torch.no_grad()
    def angle_bound(self, theta: torch.Tensor) -> torch.Tensor:
        """(B, K_max) radians: the largest |Δθ_k| around MUSIC's θ̂_k (B, K_max) radians, DTHETA_HALF_WIDTHS
        beam half-widths there (the beam widens as 1/cos θ̂), so a correction stays on its own ridge."""
        return DTHETA_HALF_WIDTHS * self.half_width / theta.cos().clamp_min(0.1)

    @torch.no_grad()
    def initial_estimates(self, R_samp: torch.Tensor) -> dict[str, torch.Tensor]:
        """MUSIC on R_samp with K_max peaks: theta (B, K_max) rad, inv_r (B, K_max) 1/m, found (B, K_max) bool,
        k_hat (B,) eigengap order, lam (B, N) descending eigenvalues, power (B, K_max) eigenvalue-based p̂."""
        if self.grid.steering.device != R_samp.device:
            self.grid = self.grid.to(R_samp.device)  # moved once, not copied on every forward
        full = torch.full((R_samp.shape[0],), self.k_max, dtype=torch.int64, device=R_samp.device)
        est = music(R_samp, self.grid, self.k_max, k=full)
        lam = est.eigvals  # (B, N) float64, descending
        u_mid = self.u_lo + 0.5 * self.u_span
        theta = torch.where(est.mask, est.theta, torch.zeros_like(est.theta))
        inv_r = torch.where(est.mask, 1.0 / est.r.clamp_min(1e-9), torch.full_like(est.r, u_mid))
        # p̂_k: the k-th eigenvalue above the noise floor (mean of the N − K_max smallest), per element.
        floor = lam[:, self.k_max :].mean(-1, keepdim=True)
        power = (lam[:, : self.k_max] - floor).clamp_min(1e-3 * lam[:, :1]) / self.n
        k_hat = eigengap_order(lam, self.k_max)
        return {"theta": theta, "inv_r": inv_r, "found": est.mask, "k_hat": k_hat, "lam": lam, "power": power}

    def factors(self, R_samp: torch.Tensor, H: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = R_samp.shape[0]
        e = self.initial_estimates(R_samp)
        slot = torch.arange(self.k_max, device=R_samp.device)
        active = slot[None, :] < e["k_hat"][:, None]  # (B, K_max): slots MUSIC's order rule keeps
        slot_feats = torch.stack(
            [
                e["theta"] / self.theta_half,
                (e["inv_r"] - self.u_lo) / self.u_span - 0.5,
                e["found"].to(e["theta"].dtype),
                active.to(e["theta"].dtype),
            ],
            dim=-1,
        ).float()
        feats = [
            matrix_channels(R_samp, H, self.sees_h).flatten(1),
            log_eigenvalues(e["lam"]),
            slot_feats.flatten(1),
            log_eigenvalues(e["power"]),
        ]
        out = self.net(torch.cat(feats, dim=-1)).float().view(b, self.k_max, self.d_slot)  # float32 under autocast
        theta = e["theta"].float() + self.angle_bound(e["theta"]).float() * torch.tanh(out[..., 0])
        inv_r = e["inv_r"].float() + self.u_span * torch.tanh(out[..., 1])
        inv_r = inv_r.clamp_min(0.5 * self.u_lo)  # 1/r stays positive: r stays finite
        amp = (e["power"].float() * out[..., 2].clamp(-10, 10).exp() * torch.sigmoid(out[..., 3])).sqrt()
        A_angle = steering(theta, 1.0 / inv_r, self.array) * amp[:, None, :]
        re, im = out[..., 4:].split(self.n, dim=-1)
        A_range = torch.complex(re, im).transpose(-2, -1)
        return A_angle.to(torch.complex64), A_range.contiguous()


class EigenShrinkModel(CovarianceModel):
    """Learned shrinkage of R_samp's top 2·K_max eigenvalues on R_samp's own eigenvectors.

    R_samp = U Λ Uᴴ: A_angle = U_{1..K_max}·sqrt(λ·e^z), A_range = U_{K_max+1..2K_max}·sqrt(λ·e^z). The eigenvectors
    are R_samp's, so with the true K MUSIC sees R_samp's signal subspace as long as z keeps the eigenvalue order.
    """

    max_log_scale = 4.0  # |z| bound of the eigenvalue rescaling e^z

    def __init__(self, cfg: ModelSize, scenario: ScenarioConfig) -> None:
        super().__init__(scenario)
        if 2 * self.k_max > self.n:
            raise ConfigError(f"eigshrink needs 2·k_max <= N eigenvectors, got k_max={self.k_max} with N={self.n}")
        d_in = self.n + self.k_max + (2 * self.n * self.n if self.sees_h else 0)
        self.net = mlp(d_in, cfg.width, cfg.depth, 2 * self.k_max, cfg.dropout)
        with torch.no_grad():  # start at R_samp's own top eigen-part: e^z ≈ 1
            self.net[-1].weight.mul_(1e-2)
            self.net[-1].bias.zero_()

    def factors(self, R_samp: torch.Tensor, H: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            lam, U = torch.linalg.eigh(R_samp.to(torch.complex128))
            lam, U = lam.flip(-1).clamp_min(0.0), U.flip(-1)  # descending
            k_hat = eigengap_order(lam, self.k_max)
        feats = [log_eigenvalues(lam), nn.functional.one_hot(k_hat - 1, self.k_max).float()]
        if self.sees_h:
            feats.append(matrix_channels(H.mH @ H, H, False).flatten(1))
        z = self.max_log_scale * torch.tanh(self.net(torch.cat(feats, dim=-1)) / self.max_log_scale)
        top = 2 * self.k_max
        scale = (lam[:, :top].float() * z.exp()).sqrt().to(torch.complex64)  # (B, 2·K_max)
        A = U[..., :top].to(torch.complex64) * scale[:, None, :]
        return A[..., : self.k_max].contiguous(), A[..., self.k_max :].contiguous()
