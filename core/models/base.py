"""CovarianceModel, the base of every model in core.models.MODELS (its forward contract is in core.models), and
what the models share: the adaptive blend's BlendGate and the building blocks.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from core.covariance import Measured
from core.scenario import ScenarioConfig


class ModelSize(Protocol):
    """What a model reads from core.models.ModelConfig; a Protocol, so no model module imports the registry."""

    @property
    def width(self) -> int: ...
    @property
    def depth(self) -> int: ...
    @property
    def dropout(self) -> float: ...
    @property
    def heads(self) -> int: ...


def matrix_channels(R_samp: torch.Tensor, H: torch.Tensor, with_h: bool) -> torch.Tensor:
    """(B, N, C·N) real: Re/Im of R_samp (B, N, N), and of Hᴴ H when with_h, row by row (C = 2 or 4)."""
    mats = [R_samp, H.mH @ H] if with_h else [R_samp]
    return torch.cat([p for m in mats for p in (m.real, m.imag)], dim=-1)


def mlp(d_in: int, width: int, depth: int, d_out: int, dropout: float) -> nn.Sequential:
    """depth × (Linear, LayerNorm, GELU, Dropout) then Linear(width, d_out)."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(d_in if i == 0 else width, width), nn.LayerNorm(width), nn.GELU(), nn.Dropout(dropout)]
    layers.append(nn.Linear(width, d_out))
    return nn.Sequential(*layers)


def log_eigenvalues(lam: torch.Tensor) -> torch.Tensor:
    """(B, N) float32: log of eigenvalues or powers (B, N) of a trace-N matrix, floored at 1e-6."""
    return lam.clamp_min(1e-6).log().float()


def measured_log_spectrum(x: Measured) -> torch.Tensor:
    """(B, M) float32: log of the eigenvalues, descending, of C = T R_samp Tᴴ (B, M, M) scaled to trace M.

    In the whitened measurement domain the noise is white, so the spread of these eigenvalues shows how far
    the signal stands above the noise (SNR) and how much the noise eigenvalues scatter (few snapshots): what
    says how good R_samp is. For H = I, C is R_samp itself. No gradient: R_samp is detached anyway.
    """
    lam = x.eigvals
    return log_eigenvalues(lam * (lam.shape[-1] / lam.sum(-1, keepdim=True).clamp_min(1e-12)))


class BlendGate(nn.Module):
    """The adaptive blend's gate: a small MLP over measured_log_spectrum, one logit g per scene, (B,) float32.

    Its read-out starts near zero, so g ≈ 0 and the adaptive β starts at the configured β (core.covariance
    adds that offset). Its parameters are drawn from a forked RNG: building a gate leaves the global RNG where
    it was, so every other parameter of a model, and with it a fixed-blend run, is what it was without a gate.
    """

    width = 32  # hidden width; the input is only M numbers
    depth = 2
    # The logit is the read-out times GAIN. AdamW moves each weight by about lr per step, so without it a short
    # trial (a few hundred steps) cannot reach the logits of ±4 that β ≈ 0.02 or 0.98 take.
    gain = 8.0

    def __init__(self, scenario: ScenarioConfig) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            self.net = mlp(scenario.m, self.width, self.depth, 1, 0.0)
            with torch.no_grad():
                self.net[-1].weight.mul_(1e-2)
                self.net[-1].bias.zero_()

    def forward(self, x: Measured) -> torch.Tensor:
        return self.gain * self.net(measured_log_spectrum(x))[:, 0]


class CovarianceModel(nn.Module):
    """Holds what every model reads from the scenario and the blend gate, and refuses factors of the wrong shape.

    A subclass calls super().__init__(scenario) first (the gate draws no global random numbers, so the
    subclass's own layers start from the seed), then builds its layers and implements `factors`.
    """

    def __init__(self, scenario: ScenarioConfig) -> None:
        super().__init__()
        self.n, self.k_max = scenario.n, scenario.scene.k_max
        # A random per-scene combiner is an input (as Hᴴ H); the identity combiner carries no information.
        self.sees_h = scenario.measurement.combiner != "identity"
        self.row_width = (4 if self.sees_h else 2) * self.n  # per-antenna width of matrix_channels(R, H, sees_h)
        self.gate = BlendGate(scenario)

    def factors(self, R_samp: torch.Tensor, H: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(A_angle, A_range), each (B, N, K_max) complex64."""
        raise NotImplementedError

    def forward(self, x: Measured) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        A_angle, A_range = self.factors(x.R_samp, x.H)
        expected = (len(x), self.n, self.k_max)
        for name, A in (("A_angle", A_angle), ("A_range", A_range)):
            if tuple(A.shape) != expected:
                raise RuntimeError(
                    f"{type(self).__name__}.factors returned {name} of shape {tuple(A.shape)}, "
                    f"expected (B, N, K_max) = {expected}"
                )
        return A_angle, A_range, self.gate(x)
