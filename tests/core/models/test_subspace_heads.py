"""The heads started at R_samp's subspace (music_residual, eigshrink): contract shapes, gradients, and MUSIC on
R_blend at high SNR."""

from __future__ import annotations

import math

import pytest
import torch

from core.covariance import PipelineConfig, measure, pipeline
from core.errors import ConfigError
from core.evaluation import score
from core.grid import build_grid, resolution
from core.losses import LossConfig, total_loss
from core.models import ModelConfig, build_model
from core.music import music
from core.scenario import ScenarioConfig, generate

SCEN = ScenarioConfig()
HEADS = ("music_residual", "eigshrink")


def _model(arch):
    torch.manual_seed(0)
    return build_model(ModelConfig(arch=arch, width=32, depth=2), SCEN)


@pytest.mark.parametrize("arch", HEADS)
def test_head_returns_the_contract_factors(arch):
    batch = generate(SCEN, 6, seed=0)
    A_angle, A_range, _ = _model(arch)(measure(batch.Y, batch.H, 1e-2))
    for A in (A_angle, A_range):
        assert A.shape == (6, SCEN.n, SCEN.scene.k_max) and A.dtype == torch.complex64
        assert torch.isfinite(torch.view_as_real(A)).all()


@pytest.mark.parametrize("blend", ["fixed", "adaptive"])
@pytest.mark.parametrize("arch", HEADS)
def test_loss_gradients_reach_every_parameter(arch, blend):
    # The blend gate is a parameter of the loss only with the adaptive blend; the fixed one ignores it.
    model = _model(arch)
    batch = generate(SCEN, 16, seed=1)
    cov = pipeline(model, batch.Y, batch.H, PipelineConfig(blend=blend))
    loss, _ = total_loss(cov, batch, LossConfig(), SCEN.array)
    loss.backward()
    for name, p in model.named_parameters():
        if blend == "fixed" and name.startswith("gate."):
            assert p.grad is None, name
        else:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.net[-1].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("arch", HEADS)
def test_untrained_head_localises_as_well_as_r_samp_at_high_snr(arch):
    batch = generate(SCEN, 64, seed=2, snr_db=20.0)
    with torch.no_grad():
        cov = pipeline(_model(arch), batch.Y, batch.H, PipelineConfig())
    grid = build_grid(SCEN)
    rmse = {}
    for name, R in (("blend", cov.R_blend), ("samp", cov.R_samp)):
        est = music(R, grid, SCEN.scene.k_max, k=batch.K)
        rmse[name] = score(est.theta, est.r, est.mask, batch.theta, batch.r, batch.mask).angle_rmse_deg
    # An untrained generic network gives degrees here; R_samp gives hundredths of a degree.
    assert rmse["blend"] <= 1.1 * rmse["samp"] + 0.01, rmse


def test_saturated_angle_correction_stays_on_the_music_ridge():
    # Even a head whose Δθ read-out is driven to its limit moves a source by at most half a beam half-width
    # (core.grid.resolution) from MUSIC's peak on R_samp, so it cannot hop onto a neighbouring source's ridge.
    model = _model("music_residual")
    with torch.no_grad():
        model.net[-1].bias.view(SCEN.scene.k_max, model.d_slot)[:, 0] = 50.0  # tanh(Δθ logit) = 1
    batch = generate(SCEN, 32, seed=3, snr_db=20.0, num_sources=1)
    with torch.no_grad():
        cov = pipeline(model, batch.Y, batch.H, PipelineConfig(beta=0.0))  # R_blend = R_pred
    grid = build_grid(SCEN)
    theta_samp = music(cov.R_samp, grid, 1, k=batch.K).theta[:, 0]
    theta_blend = music(cov.R_blend, grid, 1, k=batch.K).theta[:, 0]
    half_width = torch.tensor([resolution(SCEN.array, t)[0] for t in theta_samp.tolist()], dtype=theta_samp.dtype)
    shift = (theta_blend - theta_samp).abs()
    assert (shift <= 0.5 * half_width + math.radians(0.05)).all(), (shift / half_width).max()


def test_eigshrink_refuses_a_scenario_with_fewer_than_two_k_max_eigenvectors():
    scenario = ScenarioConfig.from_dict({"array": {"n_elements": 8}, "scene": {"k_max": 5}})
    with pytest.raises(ConfigError, match="2·k_max <= N"):
        build_model(ModelConfig(arch="eigshrink"), scenario)
