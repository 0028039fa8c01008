"""Building blocks shared by the models in core/model.py and core/subspace_heads.py.

sees_h(scenario)                     whether the combiner H is a model input (random per scene)
matrix_channels(R_samp, H, sees_h)   (B, N, C·N) real: Re/Im rows of R_samp (and of Hᴴ H)
mlp(d_in, width, depth, d_out, p)    Linear–LayerNorm–GELU–Dropout blocks and a linear read-out
BlendGate(scenario)                  R_samp, H -> (B,) gate logit g of the adaptive blend (core.covariance)
CovarianceModel                      base of every model: forward -> (A_angle, A_range, gate_logit)
"""

from __future__ import annotations

import torch
from torch import nn

from core.measurement import operator, to_measurement
from core.scenario import ScenarioConfig


def sees_h(scenario: ScenarioConfig) -> bool:
    """True for a random per-scene combiner; the identity combiner carries no information."""
    return scenario.measurement.combiner != "identity"


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


def measured_log_spectrum(R_samp: torch.Tensor, H: torch.Tensor) -> torch.Tensor:
    """(B, M) float32: log of the eigenvalues, descending, of C = T R_samp Tᴴ (B, M, M) scaled to trace M.

    In the whitened measurement domain the noise is white, so the spread of these eigenvalues shows how far
    the signal stands above the noise (SNR) and how much the noise eigenvalues scatter (few snapshots): what
    says how good R_samp is. For H = I, C is R_samp itself. No gradient: R_samp is detached anyway.
    """
    with torch.no_grad():
        lam = torch.linalg.eigvalsh(to_measurement(R_samp, operator(H))).flip(-1)
        lam = lam * (lam.shape[-1] / lam.sum(-1, keepdim=True).clamp_min(1e-12))
        return lam.clamp_min(1e-6).log().float()


class BlendGate(nn.Module):
    """The adaptive blend's gate: a small MLP over measured_log_spectrum, one logit g per scene, (B,) float32.

    Its read-out starts near zero, so g ≈ 0 and the adaptive β starts at the configured β (core.covariance
    adds that offset). Its parameters are drawn from a forked RNG: building a gate leaves the global RNG where
    it was, so every other parameter of a model, and with it a fixed-blend run, is what it was without a gate.
    """

    width = 32  # hidden width; the input is only M numbers
    depth = 2
    # The logit is the read-out times GAIN. AdamW moves each weight by about lr per step, so without it a short
    # trial (a few hundred steps) cannot reach the logits of ±4 that β ≈ 0.02 or 0.98 take; measured at 384
    # steps, β rose only to 0.79 at 20 dB with a gain of 1 and classic MUSIC stayed 1.4× better there.
    gain = 8.0

    def __init__(self, scenario: ScenarioConfig) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            self.net = mlp(scenario.m, self.width, self.depth, 1, 0.0)
            with torch.no_grad():
                self.net[-1].weight.mul_(1e-2)
                self.net[-1].bias.zero_()

    def forward(self, R_samp: torch.Tensor, H: torch.Tensor) -> torch.Tensor:
        return self.gain * self.net(measured_log_spectrum(R_samp, H))[:, 0]


class CovarianceModel(nn.Module):
    """Base of every model in core.model.MODELS: forward(R_samp (B, N, N), H (B, M, N)) returns
    (A_angle, A_range, gate_logit): factors (B, N, K_max) complex64 from the subclass's `factors`, and the
    shared BlendGate's logit (B,) float32, which the pipeline uses with blend="adaptive" and ignores otherwise.
    """

    def __init__(self, scenario: ScenarioConfig) -> None:
        super().__init__()
        self.n, self.k_max, self.sees_h = scenario.n, scenario.scene.k_max, sees_h(scenario)
        self.gate = BlendGate(scenario)

    def factors(self, R_samp: torch.Tensor, H: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def forward(self, R_samp: torch.Tensor, H: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        A_angle, A_range = self.factors(R_samp, H)
        return A_angle, A_range, self.gate(R_samp, H)
