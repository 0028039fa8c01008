"""Losses: zero at the truth, positive without a gap, finite gradients on rank-deficient R_pred."""

from __future__ import annotations

import pytest
import torch

from core.covariance import PipelineConfig, blended_covariance
from core.errors import ConfigError
from core.losses import LossConfig, eigengap_hinge, nmse, subspace_loss, total_loss
from core.scenario import ScenarioConfig, generate

SCEN = ScenarioConfig()


@pytest.fixture(scope="module")
def batch():
    return generate(SCEN, 64, seed=5, snr_db=20.0)


def test_nmse_is_zero_for_the_true_covariance(batch):
    assert nmse(batch.R_true, batch.R_true).abs().max() < 1e-6


def test_nmse_ignores_scale(batch):
    assert nmse(3.0 * batch.R_true, batch.R_true).abs().max() < 1e-6


def test_subspace_loss_is_zero_for_the_true_covariance(batch):
    assert subspace_loss(batch.R_true, batch, SCEN.array).abs().max() < 1e-4


def test_subspace_loss_is_large_for_a_wrong_subspace(batch):
    other = generate(SCEN, 64, seed=6, snr_db=20.0, num_sources=3)
    assert subspace_loss(other.R_true, batch, SCEN.array).mean() > 0.3


def test_hinge_is_zero_for_a_large_gap(batch):
    assert eigengap_hinge(batch.R_true, batch.K, margin=0.1).max() == 0


def test_hinge_is_the_margin_when_the_gap_is_absent(batch):
    eye = torch.eye(SCEN.n, dtype=torch.complex64).expand(len(batch), -1, -1)
    torch.testing.assert_close(eigengap_hinge(eye, batch.K, margin=0.1), torch.full((len(batch),), 0.1))


@pytest.mark.parametrize("target", ["blend", "raw"])
def test_all_losses_have_finite_gradients_on_rank_deficient_r_pred(batch, target):
    gen = torch.Generator().manual_seed(0)
    # One column per factor: R_pred has rank 2 of 16, fourteen zero eigenvalues.
    A = torch.randn(len(batch), SCEN.n, 3, dtype=torch.complex64, generator=gen)
    A[..., 1:] = 0
    A_range = torch.zeros_like(A)
    A_range[..., 0] = torch.randn(len(batch), SCEN.n, dtype=torch.complex64, generator=gen)
    A.requires_grad_(True)
    A_range.requires_grad_(True)
    cov = blended_covariance((A, A_range), batch.Y, batch.H, PipelineConfig())
    loss, parts = total_loss(cov, batch, LossConfig(target=target), SCEN.array)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(v) for v in parts.values())
    assert torch.isfinite(A.grad).all() and torch.isfinite(A_range.grad).all()
    assert A.grad.abs().sum() > 0


def test_bad_loss_config_names_the_value():
    with pytest.raises(ConfigError, match="target"):
        LossConfig(target="rwa")
