"""Centre-referenced uniform linear array and its near-field steering vectors (DESIGN §2).

x_n = (n − (N−1)/2)·d; θ from broadside (radians here, degrees at the interfaces), r from the centre (metres).
Exact spherical wavefront:  a_n(θ, r) = exp(−j·2π·(r_n − r)/λ),  r_n = √(r² + x_n² − 2·r·x_n·sin θ).
Fresnel (explicit option):  r_n − r ≈ −x_n·sin θ + x_n²·cos²θ/(2r).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field

from core.configs import Config

Wavefront = Literal["exact", "fresnel"]


class ArrayConfig(Config):
    n_elements: int = Field(16, ge=2)  # N, number of antenna elements
    wavelength: float = Field(1.0, gt=0)  # λ, metres
    spacing: float = Field(0.5, gt=0)  # d, metres (λ/2 at the default wavelength)
    wavefront: Wavefront = "exact"  # steering model; "fresnel" only when asked for explicitly

    @property
    def aperture(self) -> float:
        """D = (N - 1)·d, metres."""
        return (self.n_elements - 1) * self.spacing

    @property
    def fresnel_distance(self) -> float:
        """Inner near-field bound 0.62·sqrt(D³/λ), metres."""
        return 0.62 * math.sqrt(self.aperture**3 / self.wavelength)

    @property
    def fraunhofer_distance(self) -> float:
        """Far-field onset 2·D²/λ, metres."""
        return 2.0 * self.aperture**2 / self.wavelength


def element_positions(cfg: ArrayConfig, dtype=torch.float64, device=None) -> torch.Tensor:
    """Element coordinates x_n, (N,) real, metres, centred on the array midpoint."""
    n = torch.arange(cfg.n_elements, dtype=dtype, device=device)
    return (n - (cfg.n_elements - 1) / 2) * cfg.spacing


def _path_difference(theta, r, x, wavefront):
    """r_n - r and its partials ∂/∂θ, ∂/∂r. Inputs broadcast as (..., 1, K) against x (N, 1)."""
    s, c = torch.sin(theta), torch.cos(theta)
    if wavefront == "fresnel":
        delta = -x * s + x**2 * c**2 / (2 * r)
        d_theta = -x * c - x**2 * s * c / r
        d_r = -(x**2) * c**2 / (2 * r**2)
        return delta, d_theta, d_r
    rn = torch.sqrt(r**2 + x**2 - 2 * r * x * s)
    # (r_n - r) written without cancellation, so float32 stays accurate at large r.
    delta = (x**2 - 2 * r * x * s) / (rn + r)
    d_theta = -r * x * c / rn
    d_r = (r - x * s) / rn - 1.0
    return delta, d_theta, d_r


def _prepare(theta, r, cfg):
    theta = torch.as_tensor(theta)
    if not theta.is_floating_point():
        theta = theta.to(torch.get_default_dtype())
    r = torch.as_tensor(r, dtype=theta.dtype, device=theta.device)
    theta, r = torch.broadcast_tensors(theta, r)
    x = element_positions(cfg, dtype=theta.dtype, device=theta.device)[:, None]
    return theta[..., None, :], r[..., None, :], x


def steering(theta, r, cfg: ArrayConfig, wavefront: Wavefront | None = None) -> torch.Tensor:
    """Steering matrix A with columns a(θ_k, r_k).

    theta: (..., K) radians; r: (..., K) metres (broadcast against theta).
    Returns (..., N, K) complex, complex64 for float32 inputs and complex128 for float64.
    """
    theta, r, x = _prepare(theta, r, cfg)
    delta, _, _ = _path_difference(theta, r, x, wavefront or cfg.wavefront)
    return torch.polar(torch.ones_like(delta), -2 * math.pi / cfg.wavelength * delta)


def steering_with_derivatives(
    theta, r, cfg: ArrayConfig, wavefront: Wavefront | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(A, ∂A/∂θ, ∂A/∂r), each (..., N, K) complex; ∂/∂θ per radian, ∂/∂r per metre."""
    theta, r, x = _prepare(theta, r, cfg)
    delta, d_theta, d_r = _path_difference(theta, r, x, wavefront or cfg.wavefront)
    k = 2 * math.pi / cfg.wavelength
    a = torch.polar(torch.ones_like(delta), -k * delta)
    return a, a * (-1j * k * d_theta), a * (-1j * k * d_r)
