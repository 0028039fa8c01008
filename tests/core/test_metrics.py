"""Validation metrics: dB of the mean NMSE, eigengap health, SNR buckets, matched and clipped angle errors."""

from __future__ import annotations

import math

import pytest
import torch

from core.grid import resolution
from core.metrics import (
    angle_half_width_deg,
    bucket_index,
    clipped_angle_errors,
    gap_stats,
    matched_errors,
    nmse_db,
    to_db,
    validation_metrics,
)
from core.scenario import ScenarioConfig, generate

SCEN = ScenarioConfig()


def test_nmse_db_is_ten_log10_of_the_mean_not_the_mean_of_db():
    n = SCEN.n
    R_true = torch.eye(n, dtype=torch.complex64).expand(2, n, n)
    d = torch.ones(n)
    d[0], d[1] = 2.0, 0.0  # trace still N; error ‖diag(1, -1, 0, …)‖² = 2 against ‖I‖² = N
    R = torch.stack([torch.eye(n), torch.diag(d)]).to(torch.complex64)
    assert math.isclose(nmse_db(R, R_true), 10 * math.log10((0 + 2 / n) / 2), rel_tol=1e-5)


def test_to_db_of_zero_is_minus_infinity():
    assert to_db(0.0) == -math.inf


def test_true_covariance_is_healthy_at_high_snr_and_identity_is_not():
    batch = generate(SCEN, 200, seed=1, snr_db=20.0, num_sources=1)
    healthy, gap = gap_stats(batch.R_true, batch.K, SCEN.scene.k_max, 0.1)
    assert healthy.all() and (gap > 0.1).all()
    eye = torch.eye(SCEN.n, dtype=batch.R_true.dtype).expand(200, -1, -1)
    assert not gap_stats(eye, batch.K, SCEN.scene.k_max, 0.1)[0].any()


def test_snr_buckets_are_half_open_with_a_closed_top():
    idx = bucket_index(torch.tensor([-10.0, -0.1, 0.0, 9.9, 10.0, 20.0]))
    assert idx.tolist() == [0, 0, 1, 1, 2, 2]


def test_validation_metrics_report_each_bucket():
    batch = generate(SCEN, 300, seed=2)
    m = validation_metrics(batch.R_true, batch.R_true, batch.R_true, batch.K, batch.snr_db, 3, 0.1)
    assert m["nmse_db"] == -math.inf
    assert {"nmse_db@[-10,0)", "nmse_samp_db@[0,10)", "eigengap_health@[10,20)"} <= set(m)


def _deg(*values):
    return torch.deg2rad(torch.tensor([values], dtype=torch.float64))


def test_matched_errors_follow_the_optimal_assignment_not_the_slot_order():
    true_t, true_r, true_m = _deg(-20.0, 10.0, 0.0), torch.tensor([[50.0, 80.0, 0.0]]), torch.tensor([[1, 1, 0]]).bool()
    est_t, est_r, est_m = _deg(10.5, -19.0, 0.0), torch.tensor([[82.0, 49.0, 0.0]]), torch.tensor([[1, 1, 0]]).bool()
    err_t, err_r = matched_errors(est_t, est_r, est_m, true_t, true_r, true_m, miss=(99.0, 999.0))
    assert torch.allclose(err_t[0, :2], torch.tensor([1.0, 0.5], dtype=torch.float64))
    assert torch.allclose(err_r[0, :2], torch.tensor([-1.0, 2.0], dtype=torch.float64))
    assert err_t[0, 2].isnan() and err_r[0, 2].isnan()  # padded truth slot


def test_a_missed_source_counts_with_the_miss_error():
    true_t, true_r, true_m = _deg(-20.0, 10.0), torch.tensor([[50.0, 80.0]]), torch.tensor([[1, 1]]).bool()
    est_t, est_r, est_m = _deg(10.0, 0.0), torch.tensor([[80.0, 0.0]]), torch.tensor([[1, 0]]).bool()
    err_t, err_r = matched_errors(est_t, est_r, est_m, true_t, true_r, true_m, miss=(99.0, 999.0))
    assert err_t.tolist() == [[99.0, 0.0]] and err_r.tolist() == [[999.0, 0.0]]


def test_an_angle_error_is_capped_at_the_half_width_at_its_source_and_counted_gross_above_it():
    theta = torch.tensor([[0.0, math.radians(60.0), 0.0]])
    width = math.degrees(resolution(SCEN.array)[0])  # ~3.3° at broadside, twice that at 60°
    err = torch.tensor([[10.0, -0.5 * width, math.nan]])
    clipped, gross = clipped_angle_errors(err, theta, SCEN.array)
    assert clipped[0, 0].item() == pytest.approx(width) and clipped[0, 1].item() == pytest.approx(0.5 * width)
    assert math.isnan(clipped[0, 2].item())
    assert gross.tolist() == [[True, False, False]]
    assert angle_half_width_deg(theta, SCEN.array)[0, 1].item() == pytest.approx(2 * width)
