"""The (θ, 1/r) search grid every estimator on a covariance uses (DESIGN §5): its extent, its steering matrix and
the array's resolution that sizes MUSIC's peak search.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property

import torch
from pydantic import Field

from core.array import ArrayConfig, steering
from core.configs import Config
from core.linalg import hermitian_features
from core.scenario import ScenarioConfig


class GridConfig(Config):
    n_angles: int = Field(241, ge=3)  # grid points in θ, uniform in angle
    n_ranges: int = Field(64, ge=1)  # grid points in r, uniform in 1/r
    angle_margin_deg: float = Field(5.0, ge=0, le=30)  # the θ grid extends this far beyond the scenario's θ range
    range_widen: float = Field(0.05, ge=0, le=1)  # the 1/r interval grows by this fraction of its width on each side
    nms_resolution: float = Field(1.0, gt=0, le=10)  # NMS radius, in resolution half-widths (θ: beamwidth, 1/r: DoF)
    refine_steps: int = Field(4, ge=0)  # Levenberg–Marquardt steps below the grid step; 0 keeps the grid points
    repair: bool = True  # re-search scenes whose peaks leave the signal subspace unexplained (core.peak_repair)


def resolution(array: ArrayConfig, theta: float = 0.0) -> tuple[float, float]:
    """Half-widths (radians, 1/metres) at which the single-source null spectrum 1 − |a₀ᴴa|²/N² reaches 1/2.

    Second-order expansion over a uniform aperture D: the linear phase k·x·cosθ·δθ gives
    δθ = √6·λ/(2π·D·cosθ) (half the beamwidth); the Fresnel phase k·x²·cos²θ·δu/2 gives
    δu = √360·λ/(2π·D²·cos²θ) (half the depth of field in 1/r).
    """
    k, d, c = 2 * math.pi / array.wavelength, array.aperture, max(math.cos(theta), 1e-3)
    return math.sqrt(6) / (k * d * c), math.sqrt(360) / (k * d**2 * c**2)


@dataclass(frozen=True)
class Grid:
    """A (θ, 1/r) search grid with its steering matrix, built once and reused for every batch."""

    array: ArrayConfig
    theta: torch.Tensor  # (Gθ,) radians, uniform
    inv_r: torch.Tensor  # (Gu,) 1/metres, uniform
    steering: torch.Tensor  # (N, Gθ·Gu) complex64, column j = a(θ[j // Gu], 1/inv_r[j % Gu])
    block: tuple[int, int]  # NMS block edge in grid cells (θ, u)
    reach: tuple[int, int]  # NMS neighbourhood radius in blocks (θ, u)
    refine_steps: int
    repair: bool  # core.peak_repair after refinement

    @property
    def shape(self) -> tuple[int, int]:
        return self.theta.shape[0], self.inv_r.shape[0]

    @cached_property
    def hermitian_features(self) -> torch.Tensor:
        """(N², Gθ·Gu) float32: core.linalg.hermitian_features of the grid's steering vectors, so that
        aᴴ G a = hermitian_coefficients(G) @ hermitian_features at every grid point. Built on first use and kept:
        the grid is reused for every batch."""
        return hermitian_features(self.steering)

    def to(self, device) -> Grid:
        """The grid on `device`; itself when already there, so that its hermitian_features are kept."""
        if self.steering.device == torch.device(device):
            return self
        return replace(self, **{f: getattr(self, f).to(device) for f in ("theta", "inv_r", "steering")})


def build_grid(scenario: ScenarioConfig, cfg: GridConfig | None = None, device=None) -> Grid:
    """The default search grid of a scenario: its angle range plus a margin × its 1/r range, widened."""
    cfg = cfg or GridConfig()
    lo, hi = scenario.scene.angle_deg
    lo, hi = max(lo - cfg.angle_margin_deg, -89.0), min(hi + cfg.angle_margin_deg, 89.0)
    theta = torch.linspace(math.radians(lo), math.radians(hi), cfg.n_angles, dtype=torch.float64)
    r_min, r_max = scenario.range_m
    u_lo, u_hi = 1 / r_max, 1 / r_min
    pad = cfg.range_widen * (u_hi - u_lo)
    u_lo, u_hi = max(u_lo - pad, u_lo / 2), u_hi + pad  # 1/r stays > 0: the grid never reaches r = ∞
    inv_r = torch.linspace(u_lo, u_hi, cfg.n_ranges, dtype=torch.float64)  # [u_lo] for one range
    tt, uu = torch.meshgrid(theta, inv_r, indexing="ij")
    A = steering(tt.reshape(-1), 1 / uu.reshape(-1), scenario.array).to(torch.complex64)
    # Blocks are sized at broadside, where the resolution cell is smallest, so close sources survive there.
    d_theta, d_u = resolution(scenario.array)
    step_t = (theta[1] - theta[0]).item()
    step_u = (inv_r[1] - inv_r[0]).item() if cfg.n_ranges > 1 else 1.0
    radius = (cfg.nms_resolution * d_theta / step_t, cfg.nms_resolution * d_u / step_u)  # grid cells
    block = tuple(max(1, round(x / 2)) for x in radius)
    reach = tuple(max(1, math.ceil(x / b)) for x, b in zip(radius, block, strict=True))
    grid = Grid(scenario.array, theta, inv_r, A, block, reach, cfg.refine_steps, cfg.repair)
    return grid.to(device) if device is not None else grid
