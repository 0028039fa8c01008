"""The base every model shares: factors of the wrong shape are refused, naming the model and both shapes."""

from __future__ import annotations

import pytest
import torch

from core.covariance import measure
from core.models.base import CovarianceModel
from core.scenario import ScenarioConfig, generate

SCEN = ScenarioConfig()


class OneSlotShort(CovarianceModel):
    """A new model whose read-out misses one source slot: K_max − 1 columns instead of K_max."""

    def factors(self, R_samp: torch.Tensor, H: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        A = R_samp[..., : self.k_max - 1]
        return A, A


def test_factors_of_the_wrong_shape_are_refused_with_the_model_and_both_shapes():
    batch = generate(SCEN, 4, seed=0)
    n, k_max = SCEN.n, SCEN.scene.k_max
    expected = rf"OneSlotShort.factors returned A_angle of shape \(4, {n}, {k_max - 1}\), "
    expected += rf"expected \(B, N, K_max\) = \(4, {n}, {k_max}\)"
    with pytest.raises(RuntimeError, match=expected):
        OneSlotShort(SCEN)(measure(batch.Y, batch.H, 1e-2))
