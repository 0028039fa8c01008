"""Models: registry, output shapes and dtypes, H as an input, the structured head's physics."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from core.covariance import measure
from core.errors import ConfigError
from core.models import MODELS, ModelConfig, build_model
from core.scenario import MeasurementConfig, ScenarioConfig, generate

SCEN = ScenarioConfig()
HYBRID = ScenarioConfig(measurement=MeasurementConfig(combiner="random_phase", n_rf=8))


def _inputs(scen, b=4, seed=0):
    batch = generate(scen, b, seed=seed)
    return measure(batch.Y, batch.H, 1e-2)


@pytest.mark.parametrize("arch", sorted(MODELS))
def test_every_model_returns_two_complex64_factors_and_a_gate_logit(arch):
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch=arch, width=32, depth=2), SCEN)
    A_angle, A_range, gate_logit = model(_inputs(SCEN))
    for A in (A_angle, A_range):
        assert A.shape == (4, SCEN.n, SCEN.scene.k_max) and A.dtype == torch.complex64
    assert gate_logit.shape == (4,) and gate_logit.dtype == torch.float32 and torch.isfinite(gate_logit).all()


@pytest.mark.parametrize("arch", sorted(MODELS))
def test_models_see_h_under_a_random_combiner(arch):
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch=arch, width=32, depth=2), HYBRID)
    x = _inputs(HYBRID)
    other = dataclasses.replace(x, H=_inputs(HYBRID, seed=1).H)
    assert not torch.allclose(model(x)[0], model(other)[0])


def test_structured_columns_are_scaled_steering_vectors():
    torch.manual_seed(0)
    A_angle, *_ = build_model(ModelConfig(arch="structured", width=32, depth=2), SCEN)(_inputs(SCEN))
    mag = A_angle.abs()  # |sqrt(p)·a_n| = sqrt(p) for every element n
    torch.testing.assert_close(mag, mag[:, :1, :].expand_as(mag))


def test_bad_model_config_names_the_value():
    with pytest.raises(ConfigError, match="heads"):
        ModelConfig(arch="transformer", width=30, heads=4)
