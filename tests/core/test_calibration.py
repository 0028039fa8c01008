"""The calibrated blend (DESIGN §3): β from a table over the measured SNR, fitted on calibration scenes, falling
back to classic MUSIC (β = 1) wherever R_pred does not help, and carried by the config into checkpoints."""

from __future__ import annotations

import pytest
import torch

from core.array import steering
from core.calibration import CalibrationConfig, calibration_set, fit_table, refused, worse
from core.covariance import PipelineConfig, pipeline, sample_covariance
from core.dml import dml
from core.errors import ConfigError
from core.experiment import ExperimentConfig
from core.grid import build_grid
from core.localisation import LocalisationConfig, localisation_metrics, reference
from core.measurement import classic_covariance, measured_eigvals, operator, split_eigvals, to_measurement
from core.music import music
from core.scenario import ScenarioConfig, SceneConfig, generate
from core.train import load_checkpoint, save_checkpoint, train

SCEN = ScenarioConfig()
CAL = CalibrationConfig(n_scenes=96, min_sources=10)
CALIBRATED = PipelineConfig(blend="calibrated", beta=0.5)


@pytest.fixture(scope="module")
def cal():
    return calibration_set(SCEN, CAL, seed=1)


def _constant(A_angle):
    """A model that returns fixed factors (B, N, K_max) for the scenes it is called on, whatever R_samp says."""
    return lambda x: (A_angle, torch.zeros_like(A_angle))


def _oracle(scenes):
    """Factors that span the true signal subspace: R_pred is the noiseless A P Aᴴ, better than R_samp anywhere."""
    r = torch.where(scenes.mask, scenes.r, torch.ones_like(scenes.r))
    return _constant(steering(scenes.theta, r, SCEN.array) * scenes.mask[:, None, :])


def test_a_table_of_ones_is_classic_music_exactly():
    scenes = generate(SCEN, 48, seed=5)
    pipe = CALIBRATED.replace(beta_table=(1.0,) * 7)
    cov = pipeline(_oracle(scenes), scenes.Y, scenes.H, pipe)
    assert torch.equal(cov.beta, torch.ones(48))
    grid = build_grid(SCEN)
    learned = music(cov.R_blend, grid, 3, k=scenes.K)
    classic = music(classic_covariance(scenes.Y, scenes.H), grid, 3, k=scenes.K)
    assert torch.equal(learned.mask, classic.mask)
    assert torch.allclose(learned.theta, classic.theta, atol=1e-6) and torch.allclose(learned.r, classic.r, rtol=1e-5)


def test_with_the_dml_estimator_a_table_of_ones_is_classic_dml_exactly():
    # Coherent sources, where DML is the classic method: β = 1 must hand the pipeline's DML classic's own C.
    scen = SCEN.replace(scene=SceneConfig(k_max=3, correlation=(1.0, 1.0)))
    scenes = generate(scen, 12, seed=8)
    pipe = CALIBRATED.replace(beta_table=(1.0,) * 7, estimator="dml")
    cal = calibration_set(scen, CAL.replace(n_scenes=12), seed=1, estimator="dml")
    assert cal.ref.estimator == "dml"
    cov = pipeline(_oracle(scenes), scenes.Y, scenes.H, pipe)
    grid = build_grid(scen)
    learned = dml(cov.R_blend, grid, 3, k=scenes.K)
    classic = dml(classic_covariance(scenes.Y, scenes.H), grid, 3, k=scenes.K)

    def by_angle(est):  # DML's slot order follows its search path, which float rounding may permute
        order = torch.where(est.mask, est.theta, torch.inf).argsort(-1)
        return (x.gather(-1, order) for x in (est.theta, est.r, est.mask))

    (lt, lr, lm), (ct, cr, cm) = by_angle(learned), by_angle(classic)
    assert torch.equal(lm, cm)
    assert torch.allclose(lt, ct, atol=1e-6) and torch.allclose(lr, cr, rtol=1e-5)


def test_before_its_first_table_the_calibrated_blend_uses_beta_everywhere():
    scenes = generate(SCEN, 8, seed=6)
    assert torch.equal(pipeline(_oracle(scenes), scenes.Y, scenes.H, CALIBRATED).beta, torch.full((8,), 0.5))


def test_the_table_is_one_where_r_pred_does_not_help(cal):
    # R_pred puts three strong sources where no scene has one: any β < 1 pulls MUSIC's peaks towards them.
    b = len(cal.ref.scenes)
    wrong = steering(torch.tensor([[-0.5, 0.0, 0.5]]).expand(b, 3), torch.full((b, 3), 20.0), SCEN.array)
    assert fit_table(_constant(wrong), CALIBRATED, cal, CAL) == (1.0,) * 7


def test_the_table_leans_on_r_pred_at_low_snr_where_it_helps(cal):
    table = fit_table(_oracle(cal.ref.scenes), CALIBRATED, cal, CAL)
    assert len(table) == 7 and min(table[:3]) < 1.0


def test_the_snr_estimate_follows_the_snr_of_separated_sources():
    for snr in (0.0, 10.0, 20.0):
        scenes = generate(SCEN, 64, seed=7, snr_db=snr, num_sources=1)
        R = scenes.Y @ scenes.Y.mH / scenes.Y.shape[-1]
        assert (
            abs(split_eigvals(measured_eigvals(R, scenes.H), 3, scenes.Y.shape[-1]).snr_db.median().item() - snr) < 2.0
        )


@pytest.mark.parametrize(
    "kwargs, needle",
    [({"beta_table": (0.5, 1.0)}, "beta_table"), ({"beta_bins_db": (0.0, 0.0)}, "beta_bins_db"),
     ({"beta_table": (2.0,) * 7}, "beta_table")],
)  # fmt: skip
def test_a_bad_table_names_the_setting(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        PipelineConfig(blend="calibrated", **kwargs)


def test_training_refits_the_table_and_the_checkpoint_keeps_it(tmp_path):
    cfg = ExperimentConfig.from_dict(
        {
            "pipeline": {"blend": "calibrated", "beta": 0.5},
            "model": {"arch": "mlp", "width": 16, "depth": 1},
            "train": {"epochs": 1, "n_train": 64, "n_val": 32, "batch_size": 32, "threads": 1, "device": "cpu"},
            "localisation": {"n_scenes": 0},
            "calibration": {"n_scenes": 64},
        }
    )
    result = train(cfg)
    table = result.cfg.pipeline.beta_table
    assert table is not None and len(table) == 7 and cfg.pipeline.beta_table is None
    save_checkpoint(tmp_path / "c.pt", result, result.cfg)
    assert load_checkpoint(tmp_path / "c.pt")[1].pipeline.beta_table == table


def test_a_table_of_ones_scores_zero_on_the_search_objective():
    # β = 1 everywhere: whatever the network says, the objective sees classic MUSIC (up to float rounding).
    ref = reference(SCEN, 1, LocalisationConfig(n_scenes=12))
    noise = torch.randn(len(ref.scenes), SCEN.n, 3, dtype=torch.complex64, generator=torch.Generator().manual_seed(1))
    cov = pipeline(_constant(noise), ref.scenes.Y, ref.scenes.H, CALIBRATED.replace(beta_table=(1.0,) * 7))
    gains = {k: v for k, v in localisation_metrics(cov.R_blend, ref).items() if "gain" in k}
    assert all(abs(v) < 1e-4 for v in gains.values())


def test_the_noise_share_of_an_exact_covariance_is_its_noise_floor():
    scenes = generate(SCEN, 64, seed=7)
    split = split_eigvals(measured_eigvals(scenes.R_true, scenes.H), 3, 10_000)
    assert torch.equal(split.k.cpu(), scenes.K.cpu())
    tr = torch.diagonal(scenes.R_true, dim1=-2, dim2=-1).sum(-1).real.double()
    assert torch.allclose(split.noise_share, scenes.noise_var.double() * SCEN.n / tr, rtol=1e-4)


def test_a_beta_that_helps_a_bin_on_average_but_hurts_one_snr_in_it_is_refused():
    # Two bins split at an SNR estimate of 0 dB. R_pred is the truth for scenes from 0 dB up and a wrong subspace
    # below, so the high bin gains on most of its scenes and loses on those whose ŝ rose above their true SNR.
    pipe = CALIBRATED.replace(beta_bins_db=(0.0,))
    cfg = CalibrationConfig(n_scenes=600, min_sources=10)
    cal = calibration_set(SCEN, cfg, seed=3)
    scenes = cal.ref.scenes
    good = _oracle(scenes)(None)[0]
    b = len(scenes)
    wrong = steering(torch.tensor([[-0.5, 0.0, 0.5]]).expand(b, 3), torch.full((b, 3), 20.0), SCEN.array)
    mixed = _constant(torch.where((scenes.snr_db >= 0)[:, None, None], good, wrong))
    s_hat = split_eigvals(
        measured_eigvals(pipeline(mixed, scenes.Y, scenes.H, pipe).R_samp, scenes.H), 3, scenes.Y.shape[-1]
    ).snr_db
    strays = (s_hat >= 0) & (scenes.snr_db < 0)
    assert scenes.mask[strays].sum() >= cfg.min_sources  # the high bin serves enough low-SNR sources to check
    assert fit_table(mixed, pipe, cal, cfg)[1] == 1.0


def test_the_shipped_tables_test_admits_a_loss_within_its_tolerance_and_not_beyond():
    # 4,000 sources whose error over the CRB spreads as classic's does: a 1% larger mean square error is within the
    # 1.02x RMSE tolerance at one standard error, a 6% one is not, and with no tolerance R_pred must be shown better.
    ref = torch.randn(2000, 2, generator=torch.Generator().manual_seed(0)).abs()
    where = torch.ones_like(ref, dtype=torch.bool)
    tol = CalibrationConfig().tolerance
    assert not worse(ref * 1.01**0.5, ref, where, z=1.0, tolerance=tol)
    assert worse(ref * 1.06**0.5, ref, where, z=1.0, tolerance=tol)
    assert worse(ref * 1.01**0.5, ref, where, z=1.0, tolerance=0.0)
    assert not worse(ref * 0.99**0.5, ref, where, z=0.0, tolerance=0.0)


def test_the_shipped_tables_standard_error_counts_scenes_not_sources():
    # The same 2,000 paired differences of the squares, 0.013 ± 1 (mean 0.013): over 2,000 scenes of one source
    # each, one standard error (1/√2000 = 0.022) keeps the mean within the 0.0404 tolerance; as 1,000 scenes whose
    # two sources err alike (they share the scene's snapshots), it is 1/√999 = 0.032, and the loss is not shown
    # to be within it.
    d = 0.013 + torch.tensor([1.0, -1.0], dtype=torch.float64).repeat(1000)
    tol = CalibrationConfig().tolerance
    alone = (1 + d).sqrt()[:, None], torch.ones(2000, 1, dtype=torch.float64)
    assert not worse(*alone, torch.ones(2000, 1, dtype=torch.bool), z=1.0, tolerance=tol)
    paired = (1 + d[:1000]).sqrt()[:, None].expand(1000, 2), torch.ones(1000, 2, dtype=torch.float64)
    assert worse(*paired, torch.ones(1000, 2, dtype=torch.bool), z=1.0, tolerance=tol)
    assert not worse(*paired, torch.ones(1000, 2, dtype=torch.bool), z=0.5, tolerance=tol)


def _errors(gross_rows):
    """(clipped angle, range, gross) (500, 2) for 1,000 sources: 0.3 deg where precise, the 3 deg clip where gross."""
    gross = torch.zeros(500, 2, dtype=torch.bool)
    gross[gross_rows, 0] = True
    return torch.where(gross, 3.0, 0.3), torch.ones(500, 2), gross


def test_the_shipped_table_refuses_a_tie_in_gross_errors_that_training_accepts():
    # Classic grossly wrong on 10 of 1,000 sources, R_pred on 10 others: equal counts and equal precision, but the
    # clipped angle MSE (what the evaluation reports) is not shown within 1.02x classic's at one standard error.
    where, crb, tol = torch.ones(500, 2, dtype=torch.bool), (torch.ones(500, 2),) * 2, CalibrationConfig().tolerance
    classic, tie, fewer = _errors(slice(0, 10)), _errors(slice(10, 20)), _errors(slice(0, 5))
    assert refused(tie, classic, crb, where, z=1.0, tolerance=tol, final=True)
    assert not refused(tie, classic, crb, where, z=0.0, tolerance=0.0, final=False)
    assert not refused(fewer, classic, crb, where, z=1.0, tolerance=tol, final=True)
    assert refused(_errors(slice(0, 11)), classic, crb, where, z=0.0, tolerance=0.0, final=False)  # one more: refused


def test_a_thin_open_end_bin_is_fitted_with_its_inner_neighbour(cal):
    scenes = cal.ref.scenes
    s_hat = split_eigvals(
        measured_eigvals(pipeline(_oracle(scenes), scenes.Y, scenes.H, CALIBRATED).R_samp, scenes.H), 3, 16
    ).snr_db
    assert scenes.mask[s_hat < CALIBRATED.beta_bins_db[0]].sum() < CAL.min_sources  # ŝ reads high: bin 0 is thin
    table = fit_table(_oracle(scenes), CALIBRATED, cal, CAL)
    assert table[0] < 1.0 and table[1] < 1.0


def test_refits_during_training_use_the_head_of_the_set_and_the_last_one_all_of_it(cal):
    full, seen = _oracle(cal.ref.scenes)(None)[0], []

    def model(x):
        seen.append(len(x))
        return full[: len(x)], torch.zeros_like(full[: len(x)])

    head = CAL.replace(refit_scenes=48)
    during = fit_table(model, CALIBRATED, cal, head, final=False)
    assert seen == [48] and during == fit_table(model, CALIBRATED, cal.head(48), head, final=False)
    fit_table(model, CALIBRATED, cal, head, final=True)
    assert seen[-1] == len(cal.ref.scenes)


def test_on_a_hybrid_array_beta_one_is_classic_music_only_as_the_ridge_vanishes():
    # T X = W·HHᴴ(HHᴴ + αI)⁻¹·Y: the ridge bends the measurement domain by α over HHᴴ's eigenvalues (down to
    # ~0.09 for M/N = 1/2), so MUSIC on C(R_samp) departs from classic's W (Y Yᴴ/L) W unless α is small.
    scen = ScenarioConfig(measurement=SCEN.measurement.replace(combiner="random_phase", n_rf=8))
    scenes = generate(scen, 32, seed=4, snr_db=20.0)
    T = operator(scenes.H)
    signal = lambda C: torch.linalg.eigh(C)[1][..., -1:]  # one source's signal subspace  # noqa: E731
    classic = signal(classic_covariance(scenes.Y, scenes.H))
    gap = {}
    for alpha in (1e-2, 1e-4):
        ours = signal(to_measurement(sample_covariance(scenes.Y, scenes.H, alpha), T))
        gap[alpha] = (1 - (classic.mH @ ours).abs().squeeze()).max().item()  # 1 − |cos| of the two subspaces
    assert gap[1e-4] < 1e-5 < 1e-3 < gap[1e-2]
