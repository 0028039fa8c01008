"""The localisation metric of validation: cadence, the oracle beats the classic baseline, the reference is fixed."""

from __future__ import annotations

import pytest
import torch

from core.errors import ConfigError
from core.localisation import KEYS, LocalisationConfig, localisation_metrics, reference
from core.scenario import ScenarioConfig, generate

SCEN = ScenarioConfig()


@pytest.mark.parametrize("bad", [{"n_scenes": -1}, {"every": 0}, {"n_scenes": 1.5}])
def test_bad_settings_are_config_errors(bad):
    with pytest.raises(ConfigError, match=next(iter(bad))):
        LocalisationConfig(**bad)


def test_it_runs_every_k_epochs_and_always_after_the_last():
    cfg = LocalisationConfig(every=3)
    assert [e for e in range(7) if cfg.due(e, 7)] == [2, 5, 6]
    assert not any(LocalisationConfig(n_scenes=0).due(e, 7) for e in range(7))


def test_the_true_covariance_is_far_below_the_crb_and_always_beats_classic_music():
    batch = generate(SCEN, 64, seed=3, snr_db=10.0)
    ref = reference(SCEN, batch, LocalisationConfig(n_scenes=48))
    m = localisation_metrics(batch.R_true[:48], ref)
    assert list(m) == list(KEYS)
    assert m["angle_eff_db"] < -20 and m["range_eff_db"] < -20  # refinement precision, far below the bound
    assert m["angle_eff_db"] < m["classic_angle_eff_db"] and m["win_rate"] == 1.0


def test_the_sample_covariance_ties_with_classic_music_for_a_digital_array():
    # For H = I the classic covariance is Y Yᴴ/L itself: the same MUSIC input, so every source ties.
    batch = generate(SCEN, 32, seed=4)
    ref = reference(SCEN, batch, LocalisationConfig(n_scenes=32))
    m = localisation_metrics(batch.Y @ batch.Y.mH / batch.Y.shape[-1], ref)
    assert m["angle_eff_db"] == m["classic_angle_eff_db"] and m["win_rate"] == 0.5


def test_a_non_finite_covariance_scores_badly_instead_of_raising():
    batch = generate(SCEN, 16, seed=5, snr_db=10.0)
    ref = reference(SCEN, batch, LocalisationConfig(n_scenes=16))
    m = localisation_metrics(torch.full_like(batch.R_true, float("nan")), ref)
    assert m["angle_eff_db"] > m["classic_angle_eff_db"]
