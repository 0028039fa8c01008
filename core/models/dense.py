"""The generic networks: their read-out is every entry of both factors, 4·N·K_max real numbers per scene."""

from __future__ import annotations

import torch
from torch import nn

from core.models.base import CovarianceModel, ModelSize, matrix_channels, mlp
from core.scenario import ScenarioConfig


def _to_factors(out: torch.Tensor, k_max: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, N, 4·K_max) real -> A_angle, A_range (B, N, K_max) complex64."""
    re_a, im_a, re_r, im_r = out.float().split(k_max, dim=-1)
    return torch.complex(re_a, im_a), torch.complex(re_r, im_r)


class MLPModel(CovarianceModel):
    """MLP over the flattened Re/Im of R_samp (and Hᴴ H); its read-out is every entry of both factors."""

    def __init__(self, cfg: ModelSize, scenario: ScenarioConfig) -> None:
        super().__init__(scenario)
        self.net = mlp(self.n * self.row_width, cfg.width, cfg.depth, 4 * self.n * self.k_max, cfg.dropout)

    def factors(self, R_samp: torch.Tensor, H: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = matrix_channels(R_samp, H, self.sees_h).flatten(1)
        return _to_factors(self.net(x).view(-1, self.n, 4 * self.k_max), self.k_max)


class TransformerModel(CovarianceModel):
    """Antenna rows as tokens, learned position embeddings, pre-norm encoder blocks."""

    def __init__(self, cfg: ModelSize, scenario: ScenarioConfig) -> None:
        super().__init__(scenario)
        self.embed = nn.Linear(self.row_width, cfg.width)
        self.pos = nn.Parameter(0.02 * torch.randn(self.n, cfg.width))
        block = nn.TransformerEncoderLayer(
            cfg.width, cfg.heads, 2 * cfg.width, cfg.dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(block, cfg.depth, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(cfg.width), nn.Linear(cfg.width, 4 * self.k_max))

    def factors(self, R_samp: torch.Tensor, H: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.embed(matrix_channels(R_samp, H, self.sees_h)) + self.pos
        return _to_factors(self.head(self.encoder(tokens)), self.k_max)
