"""The search objective loc_gain_db (DESIGN §6): cadence, its zero at classic MUSIC, the oracle's gain, the scenes."""

from __future__ import annotations

import pytest
import torch

from core.covariance import sample_covariance
from core.dml import dml
from core.errors import ConfigError
from core.localisation import (
    SNR_GRID_DB,
    LocalisationConfig,
    derived_seed,
    keys,
    localisation_metrics,
    localisation_set,
    reference,
)
from core.measurement import classic_covariance, localised, to_measurement
from core.metrics import clipped_angle_errors, matched_errors
from core.scenario import ScenarioConfig

SCEN = ScenarioConfig()
SMALL = LocalisationConfig(n_scenes=12)


@pytest.fixture(scope="module")
def ref():
    return reference(SCEN, 1, SMALL)


@pytest.mark.parametrize("bad", [{"n_scenes": -1}, {"every": 0}, {"n_scenes": 1.5}])
def test_bad_settings_are_config_errors(bad):
    with pytest.raises(ConfigError, match=next(iter(bad))):
        LocalisationConfig(**bad)


def test_it_runs_every_k_epochs_and_always_after_the_last():
    cfg = LocalisationConfig(every=3)
    assert [e for e in range(7) if cfg.due(e, 7)] == [2, 5, 6]
    assert not any(LocalisationConfig(n_scenes=0).due(e, 7) for e in range(7))


def test_the_set_has_the_same_scenes_at_every_snr_point_of_the_evaluation_grid(ref):
    s, n = ref.scenes, SMALL.n_scenes
    assert len(s) == n * len(SNR_GRID_DB)
    for i, snr in enumerate(SNR_GRID_DB):
        part = s[i * n : (i + 1) * n]
        assert torch.equal(part.theta, s[:n].theta) and torch.equal(part.K, s[:n].K)
        assert torch.allclose(part.snr_db, torch.full((n,), snr))


def test_its_seed_is_apart_from_the_validation_and_calibration_seeds():
    seeds = {1, derived_seed(1, "localisation"), derived_seed(1, "calibration"), derived_seed(1, "retrain")}
    assert len(seeds) == 4
    a = localisation_set(SCEN, 4, derived_seed(1, "localisation"))
    b = localisation_set(SCEN, 4, derived_seed(2, "localisation"))
    assert not torch.equal(a.theta, b.theta)


def test_a_pipeline_that_returns_classic_music_scores_exactly_zero(ref):
    # For H = I the classic covariance is Y Yᴴ/L: an R_blend equal to it (β = 1) is classic MUSIC itself.
    s = ref.scenes
    m = localisation_metrics(s.Y @ s.Y.mH / s.Y.shape[-1], ref)
    assert list(m) == list(keys())
    assert m["loc_gain_db"] == 0.0 and m["gross_rate"] == m["classic_gross_rate"]
    assert all(m[f"angle_gain_db@{snr:g}"] == 0.0 and m[f"range_gain_db@{snr:g}"] == 0.0 for snr in SNR_GRID_DB)


def test_on_a_hybrid_array_scenes_at_beta_one_score_exactly_zero():
    # The ridge bends T R_samp Tᴴ away from the classic C; at β = 1 the pipeline localises on the classic C itself.
    hybrid = SCEN.replace(measurement=SCEN.measurement.replace(combiner="random_phase", n_rf=8))
    ref = reference(hybrid, 1, LocalisationConfig(n_scenes=6))
    s = ref.scenes
    R_samp = sample_covariance(s.Y, s.H, 1e-2)
    m = localisation_metrics(R_samp, ref, torch.ones(len(s)))
    assert m["loc_gain_db"] == 0.0 and m["gross_rate"] == m["classic_gross_rate"]
    assert localisation_metrics(R_samp, ref)["loc_gain_db"] != 0.0  # T R_samp Tᴴ everywhere: not classic
    half = torch.arange(len(s)) % 2 == 0  # scenes at β < 1 keep T R_blend Tᴴ
    C = localised(R_samp, torch.where(half, 1.0, 0.5), s.Y, s.H, ref.T)
    assert torch.equal(C[half], classic_covariance(s.Y, s.H)[half])
    assert torch.equal(C[~half], to_measurement(R_samp, ref.T)[~half])


def test_scenes_at_beta_one_take_the_baseline_and_the_others_run_the_estimator(ref):
    s = ref.scenes
    half = torch.arange(len(s)) % 2 == 0
    got = ref.pipeline_errors(s.R_true, torch.where(half, 1.0, 0.5))
    alone = ref.errors(s.R_true)  # the estimator on every scene's R_true
    for g, base, run in zip(got, ref.baseline, alone, strict=True):
        assert torch.equal(g[half].nan_to_num(-1), base[half].nan_to_num(-1))
        torch.testing.assert_close(g[~half], run[~half], equal_nan=True, rtol=1e-6, atol=1e-6)
    assert not torch.equal(got[0].nan_to_num(-1), ref.baseline[0].nan_to_num(-1))  # R_true is not classic


def test_with_the_dml_estimator_the_baseline_is_classic_dml_and_classic_scores_zero():
    coherent = SCEN.replace(scene=SCEN.scene.replace(correlation=(1.0, 1.0)))
    ref = reference(coherent, 1, LocalisationConfig(n_scenes=3), "dml")
    s = ref.scenes
    C = s.Y @ s.Y.mH / s.Y.shape[-1]
    est = dml(C, ref.grid, s.theta.shape[1], k=s.K)
    err_t, _ = matched_errors(est.theta, est.r, est.mask, s.theta, s.r, s.mask, ref.miss)
    torch.testing.assert_close(ref.baseline[0], clipped_angle_errors(err_t, s.theta, ref.grid.array)[0], equal_nan=True)
    assert localisation_metrics(C, ref)["loc_gain_db"] == 0.0


def test_the_true_covariance_gains_over_classic_music_at_every_point(ref):
    m = localisation_metrics(ref.scenes.R_true, ref)
    assert m["loc_gain_db"] > 10
    assert all(m[f"angle_gain_db@{snr:g}"] > 0 for snr in SNR_GRID_DB)
    assert m["gross_rate"] <= m["classic_gross_rate"]


def test_a_non_finite_covariance_scores_below_classic_instead_of_raising(ref):
    m = localisation_metrics(torch.full_like(ref.scenes.R_true, float("nan")), ref)
    assert m["loc_gain_db"] < 0
