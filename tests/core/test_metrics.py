"""Validation metrics: dB of the mean NMSE, eigengap health, SNR buckets."""

from __future__ import annotations

import math

import torch

from core.metrics import bucket_index, gap_stats, nmse_db, to_db, validation_metrics
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
