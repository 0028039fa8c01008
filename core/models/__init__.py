"""Networks that map R_samp (and H) to the pipeline's factors (A_angle, A_range), chosen by name.

Every model is a core.models.base.CovarianceModel: forward(R_samp (B, N, N) complex64, H (B, M, N) complex64) ->
(A_angle, A_range, gate_logit), factors (B, N, K_max) complex64 and the adaptive blend's gate logit (B,) float32
from the shared BlendGate. With a random per-scene combiner the model also sees the N×N Gram Hᴴ H. By module:

    base            CovarianceModel, the BlendGate and the shared building blocks
    dense           "mlp", "transformer": generic networks over Re/Im of R_samp (and of Hᴴ H)
    structured      "structured": physics head, per slot (θ_k, r_k, p_k) on the array manifold
    subspace_heads  "music_residual" (bounded corrections to classic MUSIC on R_samp), "eigshrink" (learned
                    shrinkage of R_samp's top eigenvalues on its own eigenvectors)
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "music_residual"  # registry key in MODELS; music_residual keeps R_samp-level MUSIC at high SNR
    width: int = 256  # hidden width / d_model
    depth: int = 3  # hidden layers / transformer blocks
    dropout: float = 0.0  # dropout probability in [0, 1)
    heads: int = 4  # transformer attention heads (width % heads == 0)

    def __post_init__(self) -> None:
        arch, width, depth, dropout, heads = self.arch, self.width, self.depth, self.dropout, self.heads
        if arch not in MODELS:
            raise ConfigError(f"arch must be one of {sorted(MODELS)}, got {arch=}")
        if not isinstance(width, int) or width < 1:
            raise ConfigError(f"width must be a positive integer, got {width=}")
        if not isinstance(depth, int) or depth < 1:
            raise ConfigError(f"depth must be a positive integer, got {depth=}")
        if not (isinstance(dropout, (int, float)) and 0.0 <= dropout < 1.0):
            raise ConfigError(f"dropout must be in [0, 1), got {dropout=}")
        if not isinstance(heads, int) or heads < 1 or width % heads:
            raise ConfigError(f"heads must be a positive divisor of width={width}, got {heads=}")


def build_model(cfg: ModelConfig, scenario: ScenarioConfig) -> CovarianceModel:
    """The registry's model for cfg.arch, sized for the scenario (N, K_max, combiner, angle and range box)."""
    return MODELS[cfg.arch](cfg, scenario)
