"""Losses: zero at the truth, positive without a gap, finite gradients on rank-deficient R_pred."""

from __future__ import annotations

import math

import pytest
import torch

from core.array import steering
from core.covariance import PipelineConfig, blended_covariance
from core.errors import ConfigError
from core.losses import LossConfig, eigengap_hinge, nmse, signal_subspace, subspace_loss, total_loss
from core.measurement import operator, to_measurement
from core.scenario import MeasurementConfig, ScenarioConfig, generate

SCEN = ScenarioConfig()
HYBRID = ScenarioConfig(measurement=MeasurementConfig(combiner="random_phase", n_rf=10))  # M = 10 < N = 16


@pytest.fixture(scope="module")
def batch():
    return generate(SCEN, 64, seed=5, snr_db=20.0)


@pytest.fixture(scope="module")
def hybrid():
    return generate(HYBRID, 64, seed=5, snr_db=20.0)


def descending(R):
    """R's eigenvalues (B, N), descending, in float64 as the losses' decomposition has them."""
    return torch.linalg.eigvalsh(R.to(torch.complex128)).flip(-1)


def _random_factors(b, seed=0):
    gen = torch.Generator().manual_seed(seed)
    A = torch.randn(b, SCEN.n, 3, dtype=torch.complex64, generator=gen)
    return A.requires_grad_(), (0.3 * torch.randn(b, SCEN.n, 3, dtype=torch.complex64, generator=gen)).requires_grad_()


def test_nmse_is_zero_for_the_true_covariance(batch):
    assert nmse(batch.R_true, batch.R_true).abs().max() < 1e-6


def test_nmse_ignores_scale(batch):
    assert nmse(3.0 * batch.R_true, batch.R_true).abs().max() < 1e-6


def test_subspace_loss_is_zero_for_the_true_covariance(batch):
    assert subspace_loss(signal_subspace(batch.R_true, batch), batch, SCEN.array).abs().max() < 1e-4


def test_subspace_loss_is_large_for_a_wrong_subspace(batch):
    other = generate(SCEN, 64, seed=6, snr_db=20.0, num_sources=3)
    assert subspace_loss(signal_subspace(other.R_true, batch), batch, SCEN.array).mean() > 0.3


def test_hinge_is_zero_for_a_large_gap(batch):
    assert eigengap_hinge(descending(batch.R_true), batch.K, margin=0.1).max() == 0


def test_hinge_is_the_margin_when_the_gap_is_absent(batch):
    eye = torch.eye(SCEN.n, dtype=torch.complex64).expand(len(batch), -1, -1)
    torch.testing.assert_close(
        eigengap_hinge(descending(eye), batch.K, margin=0.1), torch.full((len(batch),), 0.1, dtype=torch.float64)
    )


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


def test_measurement_subspace_loss_is_zero_for_the_true_covariance(hybrid):
    T = operator(hybrid.H)
    S = signal_subspace(to_measurement(hybrid.R_true, T), hybrid)
    assert subspace_loss(S, hybrid, HYBRID.array, T).abs().max() < 1e-4


def test_measurement_subspace_loss_is_positive_for_a_wrong_subspace(hybrid):
    other = generate(HYBRID, 64, seed=6, snr_db=20.0, num_sources=3)
    T = operator(hybrid.H)  # the right H, the wrong scenes' covariance
    S = signal_subspace(to_measurement(other.R_true, T), hybrid)
    assert subspace_loss(S, hybrid, HYBRID.array, T).mean() > 0.3


def test_identity_subspace_loss_is_the_null_spectrum_over_n(batch):
    R = batch.R_true + 0.5 * generate(SCEN, 64, seed=7).R_true  # some subspace that is not the truth's
    a = steering(batch.theta, torch.where(batch.mask, batch.r, torch.ones_like(batch.r)), SCEN.array).to(R.dtype)
    P = signal_subspace(R, batch).P
    null = 1.0 - (a.to(P.dtype).conj() * (P @ a.to(P.dtype))).sum(-2).real / SCEN.n
    expected = (null * batch.mask).sum(-1) / batch.mask.sum(-1)
    assert torch.equal(subspace_loss(signal_subspace(R, batch), batch, SCEN.array), expected)


def test_the_normalised_steering_path_agrees_with_the_identity_path(batch):
    R = batch.R_true + 0.5 * generate(SCEN, 64, seed=7).R_true
    eye = torch.eye(SCEN.n, dtype=R.dtype).expand(len(batch), -1, -1)
    S = signal_subspace(R, batch)
    torch.testing.assert_close(subspace_loss(S, batch, SCEN.array, eye), subspace_loss(S, batch, SCEN.array))


@pytest.mark.parametrize("target", ["blend", "raw"])
def test_identity_total_loss_uses_the_array_covariance_itself(batch, target):
    A, A_range = _random_factors(len(batch))
    cov = blended_covariance((A, A_range), batch.Y, batch.H, PipelineConfig())
    R = cov.R_blend if target == "blend" else cov.R_pred
    _, parts = total_loss(cov, batch, LossConfig(target=target), SCEN.array)
    S = signal_subspace(R, batch)
    assert torch.equal(parts["gap"], eigengap_hinge(S.eigvals, batch.K, 0.1).mean().float())
    assert torch.equal(parts["sub"], subspace_loss(S, batch, SCEN.array).mean().float())


@pytest.mark.parametrize("target", ["blend", "raw"])
def test_hybrid_total_loss_sees_the_measurement_domain(hybrid, target):
    A, A_range = _random_factors(len(hybrid))
    cov = blended_covariance((A, A_range), hybrid.Y, hybrid.H, PipelineConfig())
    R = cov.R_blend if target == "blend" else cov.R_pred
    C, T = to_measurement(R, operator(hybrid.H)), operator(hybrid.H)
    _, parts = total_loss(cov, hybrid, LossConfig(target=target), HYBRID.array)
    S = signal_subspace(C, hybrid)
    torch.testing.assert_close(parts["gap"], eigengap_hinge(S.eigvals, hybrid.K, 0.1).mean().float())
    torch.testing.assert_close(parts["sub"], subspace_loss(S, hybrid, HYBRID.array, T).mean().float())
    torch.testing.assert_close(parts["nmse"], nmse(R, hybrid.R_true).mean().detach())  # NMSE stays on R


@pytest.mark.parametrize("target", ["blend", "raw"])
def test_hybrid_losses_are_finite_with_gradients(hybrid, target):
    A, A_range = _random_factors(len(hybrid))
    cov = blended_covariance((A, A_range), hybrid.Y, hybrid.H, PipelineConfig())
    loss, parts = total_loss(cov, hybrid, LossConfig(target=target), HYBRID.array)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(v) for v in parts.values())
    assert torch.isfinite(A.grad).all() and A.grad.abs().sum() > 0 and torch.isfinite(A_range.grad).all()


def test_hybrid_losses_reach_the_adaptive_gate(hybrid):
    A, A_range = _random_factors(len(hybrid))
    gate = torch.zeros(len(hybrid), requires_grad=True)
    cov = blended_covariance((A, A_range, gate), hybrid.Y, hybrid.H, PipelineConfig(blend="adaptive"))
    total_loss(cov, hybrid, LossConfig(), HYBRID.array)[0].backward()
    assert torch.isfinite(gate.grad).all() and gate.grad.abs().min() > 0


def test_the_nmse_does_not_train_the_adaptive_gate(batch):
    A, A_range = _random_factors(len(batch))
    gate = torch.zeros(len(batch), requires_grad=True)
    cov = blended_covariance((A, A_range, gate), batch.Y, batch.H, PipelineConfig(blend="adaptive"))
    only_nmse = LossConfig(lam_nmse=1.0, lam_gap=0.0, lam_sub=0.0)
    total_loss(cov, batch, only_nmse, SCEN.array)[0].backward()
    assert gate.grad is None or gate.grad.abs().max() == 0
    assert A.grad.abs().max() > 0  # the factors still learn from it


def test_log_subspace_loss_orders_subspaces_like_the_linear_one(batch):
    theta = batch.theta + 0.002 * batch.mask  # a slightly wrong subspace, and a worse one
    worse = batch.theta + 0.02 * batch.mask
    R = [steering(t, batch.r, SCEN.array) for t in (theta, worse)]
    R = [(a * batch.power[:, None, :]) @ a.mH + batch.noise_var[:, None, None] * torch.eye(SCEN.n) for a in R]
    S = [signal_subspace(r.to(torch.complex64), batch) for r in R]
    lin = [subspace_loss(s, batch, SCEN.array).mean() for s in S]
    log = [subspace_loss(s, batch, SCEN.array, scale="log").mean() for s in S]
    assert lin[0] < lin[1] and log[0] < log[1]
    assert log[0] >= -6.0  # log10 of the floor bounds it below


def test_bad_subspace_scale_names_the_value():
    with pytest.raises(ConfigError, match="subspace_scale='lg'"):
        LossConfig(subspace_scale="lg")


def test_peak_shift_predicts_musics_angle_error():
    # Physics acceptance: on sample covariances at 20 dB, one Gauss–Newton step from the truth lands where MUSIC
    # (grid search + Levenberg–Marquardt on the same null spectrum) lands, to first order.
    from core.grid import build_grid
    from core.losses import peak_shift
    from core.music import music

    scenes = generate(SCEN, 64, seed=11, snr_db=20.0, num_sources=1)
    R = scenes.Y @ scenes.Y.mH / scenes.Y.shape[-1]
    predicted = peak_shift(signal_subspace(R, scenes), scenes, SCEN.array)[:, 0]
    est = music(R, build_grid(SCEN), SCEN.scene.k_max, k=scenes.K)
    actual = est.theta[:, 0] - scenes.theta[:, 0].double()
    assert actual.abs().max() < math.radians(0.5)  # MUSIC found every source; the comparison is local
    assert torch.corrcoef(torch.stack([predicted, actual]))[0, 1] > 0.95
    assert (predicted - actual).abs().mean() < 0.2 * actual.abs().mean()


def test_peak_shift_loss_is_at_its_floor_for_the_truth_and_reaches_the_gate(hybrid):
    from core.losses import PEAK_FLOOR, peak_shift_loss

    T = operator(hybrid.H)
    S = signal_subspace(to_measurement(hybrid.R_true, T), hybrid)
    floor = peak_shift_loss(S, hybrid, HYBRID.array, T)
    assert torch.allclose(floor, torch.full_like(floor, math.log10(PEAK_FLOOR)), atol=1e-3)
    A, A_range = _random_factors(len(hybrid))
    gate = torch.zeros(len(hybrid), requires_grad=True)
    cov = blended_covariance((A, A_range, gate), hybrid.Y, hybrid.H, PipelineConfig(blend="adaptive"))
    only_peak = LossConfig(lam_nmse=0.0, lam_gap=0.0, lam_sub=0.0, lam_peak=1.0)
    loss, parts = total_loss(cov, hybrid, only_peak, HYBRID.array)
    loss.backward()
    assert parts["peak"] > math.log10(PEAK_FLOOR) + 1  # random factors localise far worse than the truth
    assert torch.isfinite(gate.grad).all() and gate.grad.abs().max() > 0


def test_the_anchor_trains_r_pred_where_the_blend_is_classic(batch):
    classic = PipelineConfig(beta=1.0)  # R_blend = R_samp: the blended losses give R_pred no gradient
    for lam_pred, learns in ((0.0, False), (1.0, True)):
        A, A_range = _random_factors(len(batch))
        cov = blended_covariance((A, A_range), batch.Y, batch.H, classic)
        loss, parts = total_loss(cov, batch, LossConfig(lam_pred=lam_pred), SCEN.array)
        loss.backward()
        assert (A.grad is not None and A.grad.abs().max() > 0) == learns
        if learns:
            assert parts["pred"] == pytest.approx(nmse(cov.R_pred, batch.R_true).mean().item())


def test_the_anchor_adds_its_weighted_nmse_of_r_pred(batch):
    cov = blended_covariance(_random_factors(len(batch)), batch.Y, batch.H, PipelineConfig())
    without, _ = total_loss(cov, batch, LossConfig(), SCEN.array)
    with_anchor, parts = total_loss(cov, batch, LossConfig(lam_pred=2.0), SCEN.array)
    assert with_anchor.item() == pytest.approx(without.item() + 2.0 * parts["pred"].item(), rel=1e-5)
