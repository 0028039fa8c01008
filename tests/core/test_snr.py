"""core.snr: the manifold SNR estimate, which places scenes in the calibrated table's bins where L < M leaves C(R_samp)
no noise eigenvalues and MDL's split of them cannot."""

from __future__ import annotations

import pytest
import torch

from core.array import steering
from core.calibration import CalibrationConfig, calibration_set, fit_table
from core.covariance import BlendInputs, PipelineConfig, measure, pipeline, snr_bin
from core.errors import ConfigError
from core.measurement import split_eigvals
from core.scenario import ScenarioConfig, generate
from core.snr import manifold

STARVED = ScenarioConfig.from_dict({"measurement": {"snapshots": 2}, "scene": {"k_max": 3}})
SNRS = (-5.0, 5.0, 15.0)


@pytest.fixture(scope="module")
def medians():
    """{snr: (manifold ŝ median, eigen ŝ median)} on 64 two-snapshot scenes per SNR."""
    mf, out = manifold(STARVED, "manifold"), {}
    for snr in SNRS:
        scenes = generate(STARVED, 64, seed=3, snr_db=snr)
        x = measure(scenes.Y, scenes.H, 1e-2, mf)
        eigen = split_eigvals(x.eigvals, 3, x.snapshots).snr_db
        out[snr] = (x.manifold_snr_db.median().item(), eigen.median().item())
    return out


def test_the_manifold_estimate_follows_the_snr_with_two_snapshots(medians):
    steps = [medians[b][0] - medians[a][0] for a, b in zip(SNRS, SNRS[1:], strict=False)]
    assert all(5 < step < 15 for step in steps), medians  # ~10 dB per 10 dB


def test_the_eigenvalue_split_cannot_with_two_snapshots(medians):
    # two non-zero eigenvalues: the split's noise floor is float rounding, ŝ far above any SNR and flat
    assert all(eigen > 40 for _, eigen in medians.values()), medians
    assert abs(medians[15.0][1] - medians[-5.0][1]) < 3, medians


def test_noise_alone_reads_far_below_a_strong_source():
    scenes = generate(STARVED, 32, seed=4, snr_db=20.0)
    mf = manifold(STARVED, "manifold")
    noise = torch.randn_like(scenes.Y)  # the same shapes, no source
    quiet = measure(noise, scenes.H, 1e-2, mf).manifold_snr_db
    loud = measure(scenes.Y, scenes.H, 1e-2, mf).manifold_snr_db
    assert loud.median() > quiet.median() + 15


def test_the_eigen_rule_measures_no_manifold_and_its_bins_are_unchanged():
    assert manifold(STARVED, "eigen") is None
    scenes = generate(STARVED, 16, seed=5)
    x = measure(scenes.Y, scenes.H, 1e-2)
    assert x.manifold_snr_db is None
    pipe = PipelineConfig(blend="calibrated")
    edges = torch.tensor(pipe.beta_bins_db, dtype=torch.float64)
    expected = torch.bucketize(split_eigvals(x.eigvals, 3, 2).snr_db, edges, right=True)
    assert torch.equal(snr_bin(BlendInputs(None, x, 3), pipe), expected)


def test_a_slice_of_a_measured_set_keeps_its_estimate():
    scenes = generate(STARVED, 16, seed=6)
    x = measure(scenes.Y, scenes.H, 1e-2, manifold(STARVED, "manifold"))
    assert torch.equal(x[3:9].manifold_snr_db, x.manifold_snr_db[3:9])


def test_a_manifold_table_without_a_manifold_is_a_one_line_error():
    scenes = generate(STARVED, 4, seed=7)
    pipe = PipelineConfig(blend="calibrated", snr_estimate="manifold", beta_table=(0.5,) * 7)
    factors = lambda x: (torch.zeros(4, 16, 3, dtype=torch.complex64),) * 2  # noqa: E731
    with pytest.raises(ConfigError, match="snr_estimate='manifold' needs scenes measured with the scenario's manifold"):
        pipeline(factors, scenes.Y, scenes.H, pipe)
    cov = pipeline(factors, scenes.Y, scenes.H, pipe, manifold(STARVED, "manifold"))
    assert torch.equal(cov.beta, torch.full((4,), 0.5))


def test_a_hybrid_array_is_measured_in_its_measurement_domain():
    hybrid = ScenarioConfig.from_dict(
        {"array": {"n_elements": 24}, "measurement": {"combiner": "random_phase", "n_rf": 12, "snapshots": 4}}
    )
    lo, hi = (
        measure(s.Y, s.H, 1e-2, manifold(hybrid, "manifold")).manifold_snr_db.median()
        for s in (generate(hybrid, 32, seed=8, snr_db=snr) for snr in (0.0, 20.0))
    )
    assert torch.isfinite(lo) and hi > lo + 8


def test_with_two_snapshots_only_the_manifold_estimate_lets_the_table_leave_classic():
    # R_pred spans the true sources (better than R_samp everywhere): with the eigenvalue split every calibration scene
    # lands in the top bin, and no other bin has the scenes to leave β = 1
    cfg = CalibrationConfig(n_scenes=128, min_sources=10, betas=(0.5,))
    cal = calibration_set(STARVED, cfg, seed=1)
    scenes = cal.ref.scenes
    r = torch.where(scenes.mask, scenes.r, torch.ones_like(scenes.r))
    A = steering(scenes.theta, r, STARVED.array).to(torch.complex64) * scenes.mask[:, None, :]
    oracle = lambda x: (A[: len(x)], torch.zeros_like(A[: len(x)]))  # noqa: E731
    pipe = PipelineConfig(blend="calibrated")
    eigen = fit_table(oracle, pipe, cal, cfg)
    mf = manifold(STARVED, "manifold")
    by_manifold = fit_table(oracle, pipe.replace(snr_estimate="manifold"), cal, cfg, manifold=mf)
    assert sum(b < 1 for b in eigen) <= 1, eigen
    assert sum(b < 1 for b in by_manifold) >= 3, by_manifold
