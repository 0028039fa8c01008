"""Networks that map R_samp (and H) to the pipeline's factors (A_angle, A_range), chosen by name.

Every model is a core.models.base.CovarianceModel: forward(x), x a core.covariance.Measured (R_samp (B, N, N)
complex64, H (B, M, N) complex64, C(R_samp)'s eigenvalues) -> (A_angle, A_range, gate_logit), factors
(B, N, K_max) complex64 and the adaptive blend's gate logit (B,) float32 from the shared BlendGate. With a random
per-scene combiner the model also sees the N×N Gram Hᴴ H. MODELS maps each name to its class; each module's
docstring says what its networks do.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from core.configs import Config, one_of
from core.errors import ConfigError
from core.models.base import CovarianceModel
from core.models.dense import MLPModel, TransformerModel
from core.models.structured import StructuredModel
from core.models.subspace_heads import EigenShrinkModel, MusicResidualModel
from core.scenario import ScenarioConfig

MODELS: dict[str, type[CovarianceModel]] = {
    "mlp": MLPModel,
    "transformer": TransformerModel,
    "structured": StructuredModel,
    "music_residual": MusicResidualModel,
    "eigshrink": EigenShrinkModel,
}


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


def build_model(cfg: ModelConfig, scenario: ScenarioConfig) -> CovarianceModel:
    """The registry's model for cfg.arch, sized for the scenario (N, K_max, combiner, angle and range box)."""
    return MODELS[cfg.arch](cfg, scenario)
