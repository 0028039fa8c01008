"""Building blocks shared by the models in core/model.py and core/subspace_heads.py.

sees_h(scenario)                     whether the combiner H is a model input (random per scene)
matrix_channels(R_samp, H, sees_h)   (B, N, C·N) real: Re/Im rows of R_samp (and of Hᴴ H)
mlp(d_in, width, depth, d_out, p)    Linear–LayerNorm–GELU–Dropout blocks and a linear read-out
"""

from __future__ import annotations

import torch
from torch import nn

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
