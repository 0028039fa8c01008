import json
import math

import pytest
import torch

from core.array import ArrayConfig
from core.covariance import PipelineConfig
from core.errors import ConfigError, CovblendError
from core.estimators import ESTIMATORS
from core.evaluation import (
    METHODS,
    NMSE_METHODS,
    SCHEMA_VERSION,
    EvalConfig,
    _rerun,
    check_schema,
    evaluate,
    score,
)
from core.grid import build_grid
from core.measurement import classic_covariance, operator
from core.metrics import matched_errors
from core.models import ModelConfig, build_model
from core.music import model_order
from core.scenario import MeasurementConfig, ScenarioConfig, SceneConfig, generate

F64 = dict(dtype=torch.float64)


def test_score_matches_estimates_to_truths_whatever_their_order():
    truth_t = torch.tensor([[-0.5, 0.1, 0.6]], **F64)
    truth_r = torch.tensor([[20.0, 30.0, 40.0]], **F64)
    est_t = truth_t[:, [2, 0, 1]] + torch.tensor([[0.001, -0.002, 0.0]], **F64)
    est_r = truth_r[:, [2, 0, 1]] + torch.tensor([[1.0, 0.0, -2.0]], **F64)
    mask = torch.ones(1, 3, dtype=torch.bool)
    s = score(est_t, est_r, mask, truth_t, truth_r, mask)
    assert math.isclose(s.angle_rmse_deg, math.degrees(math.sqrt((0.001**2 + 0.002**2) / 3)), rel_tol=1e-9)
    assert math.isclose(s.range_rmse_m, math.sqrt(5 / 3), rel_tol=1e-9)


def test_score_counts_only_min_k_hat_k_pairs_and_ignores_padded_slots():
    truth_t = torch.tensor([[0.2, -0.3, 0.0], [0.4, 0.0, 0.0]], **F64)
    truth_r = torch.tensor([[15.0, 25.0, 0.0], [50.0, 0.0, 0.0]], **F64)
    truth_m = torch.tensor([[True, True, False], [True, False, False]])
    # Scene 0 under-estimates K (one estimate); scene 1 over-estimates it (two); padded slots hold junk.
    est_t = torch.tensor([[-0.3, 9.0, 9.0], [0.9, 0.4, 9.0]], **F64)
    est_r = torch.tensor([[25.0, 1.0, 1.0], [10.0, 50.0, 1.0]], **F64)
    est_m = torch.tensor([[True, False, False], [True, True, False]])
    s = score(est_t, est_r, est_m, truth_t, truth_r, truth_m)
    assert s.angle_err_deg.size == 2
    assert s.angle_rmse_deg == 0.0 and s.range_rmse_m == 0.0


def test_score_pairs_sources_as_the_objective_does_when_the_sum_of_errors_ties():
    """Every estimate on one side of every truth: each pairing has the same sum of |Δθ|. The report's plain
    errors take the pairing of its clipped ones and of the objective (core.metrics.matched_errors)."""
    truth_t, est_t = torch.tensor([[0.3, 0.4, 0.5]], **F64), torch.tensor([[0.0, 0.05, 0.1]], **F64)
    r, mask = torch.zeros(1, 3, **F64), torch.ones(1, 3, dtype=torch.bool)
    s = score(est_t, r, mask, truth_t, r, mask)
    err_t, _ = matched_errors(est_t, r, mask, truth_t, r, mask, (180.0, 0.0))
    assert s.angle_err_deg.tolist() == err_t[0].tolist()


def test_score_of_nothing_matched_is_nan():
    m = torch.zeros(1, 2, dtype=torch.bool)
    s = score(torch.zeros(1, 2), torch.zeros(1, 2), m, torch.zeros(1, 2), torch.zeros(1, 2), ~m)
    assert math.isnan(s.angle_rmse_deg) and math.isnan(s.range_rmse_m)


SCENARIO = ScenarioConfig()
SMALL = EvalConfig(snr_grid_db=(0.0, 10.0, 20.0), n_scenes=40)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(ModelConfig(arch="mlp", width=16, depth=1), SCENARIO)


@pytest.fixture(scope="module")
def report(model) -> str:
    """The SMALL sweep with the default pipeline, as JSON text (each test parses its own copy)."""
    return json.dumps(evaluate(model, SCENARIO, PipelineConfig(), SMALL))


@pytest.fixture(scope="module")
def all_samp_report(model) -> dict:
    """The SMALL sweep with β = 1: R_blend = R_samp."""
    return evaluate(model, SCENARIO, PipelineConfig(beta=1.0), SMALL)


def test_report_has_one_row_per_snr_and_follows_the_schema(report):
    report = json.loads(report)
    check_schema(report)  # after a JSON round trip: no NaN, no tensors
    assert [row["snr_db"] for row in report["rows"]] == [0.0, 10.0, 20.0]
    assert report["schema_version"] == SCHEMA_VERSION == 3 and "p_k/σ²" in report["snr_definition"]
    assert report["loc_gain_reference"] == "classic"  # MUSIC, the default estimator
    assert set(report["rows"][0]["methods"]) == set(METHODS) == {"learned", "classic", "dml", "music_samp", "oracle"}


def test_nmse_is_reported_only_for_the_n_by_n_covariances(report):
    methods = json.loads(report)["rows"][0]["methods"]
    assert [name for name in METHODS if "nmse_db" in methods[name]] == list(NMSE_METHODS) == ["learned", "music_samp"]
    assert all(isinstance(methods[name]["nmse_db"], float) for name in NMSE_METHODS)


def test_mean_beta_is_the_blend_weight_of_the_learned_pipeline(report, all_samp_report):
    assert all(row["mean_beta"] == pytest.approx(0.3) for row in json.loads(report)["rows"])
    assert all(row["mean_beta"] == 1.0 for row in all_samp_report["rows"])


def test_crb_ratios_are_the_rmses_over_the_bound(report):
    row = json.loads(report)["rows"][1]
    classic, crb = row["methods"]["classic"], row["crb"]
    assert classic["angle_crb_ratio"] == pytest.approx(classic["angle_rmse_deg"] / crb["angle_rmse_deg"])
    assert classic["range_crb_ratio"] == pytest.approx(classic["range_rmse_m"] / crb["range_rmse_m"])


def test_learned_equals_music_on_r_samp_when_the_blend_is_all_r_samp(all_samp_report):
    # β = 1 makes R_blend = R_samp inside the one pipeline, so both methods must score identically.
    for row in all_samp_report["rows"]:
        learned, samp = row["methods"]["learned"], row["methods"]["music_samp"]
        assert learned["angle_rmse_deg"] == pytest.approx(samp["angle_rmse_deg"], rel=1e-4)
        assert learned["k_accuracy"] == samp["k_accuracy"]


def test_the_learned_side_localises_with_the_pipelines_estimator(model):
    # β = 1 and DML: the learned pipeline is classic DML (R_samp's ridge only scales C for H = I).
    cfg = EvalConfig(snr_grid_db=(10.0,), n_scenes=12, methods=("learned", "dml"), order_rules=())
    report = evaluate(model, SCENARIO, PipelineConfig(beta=1.0, estimator="dml"), cfg)
    methods = report["rows"][0]["methods"]
    for key in ("angle_rmse_deg", "range_rmse_m", "gross_rate"):
        assert methods["learned"][key] == pytest.approx(methods["dml"][key], rel=1e-4, abs=1e-9)
    # its loc_gain_db is against classic DML, the search objective's reference for this pipeline
    assert report["loc_gain_reference"] == "dml" and report["loc_gain_db"] == pytest.approx(0.0, abs=1e-3)


@pytest.mark.parametrize("name", ["music", "dml"])
def test_an_order_rules_estimate_reruns_only_the_scenes_whose_k_hat_is_not_k(name):
    batch = generate(SCENARIO.replace(scene=SCENARIO.scene.replace(snr_db=(0.0, 0.0))), 24, seed=3)
    C, T, grid, k_max = classic_covariance(batch.Y, batch.H), operator(batch.H), build_grid(SCENARIO), 3
    estimate, sizes = ESTIMATORS[name], []

    def counted(cov, *args, **kwargs):
        sizes.append(cov.shape[0])
        return estimate(cov, *args, **kwargs)

    at_true_k = estimate(C, grid, k_max, k=batch.K, T=T)
    k_hat = model_order(at_true_k.eigvals, k_max, None, "eigengap", None)
    assert 0 < int((k_hat != batch.K).sum()) < len(batch)  # both kinds of scene are here
    reused = _rerun(counted, C, grid, T, at_true_k, k_hat, k_hat != batch.K)
    full = estimate(C, grid, k_max, k=k_hat, T=T)
    assert sizes == [int((k_hat != batch.K).sum())]
    for field in ("theta", "r", "mask", "k_hat", "eigvals"):
        assert torch.equal(getattr(reused, field), getattr(full, field)), field


@pytest.mark.parametrize("name", ["music", "dml"])
@pytest.mark.parametrize("measured", [False, True], ids=["identity", "random_phase"])
def test_every_estimator_takes_an_empty_batch(name, measured):
    # a reshape with -1 raised on 0 scenes, so a caller with no scene left to estimate needed a guard of its own
    hybrid = MeasurementConfig(n_rf=8, combiner="random_phase")
    scenario = SCENARIO.replace(measurement=hybrid) if measured else SCENARIO
    batch = generate(scenario, 2, seed=5)
    C, T = classic_covariance(batch.Y, batch.H)[:0], operator(batch.H)
    est = ESTIMATORS[name](C, build_grid(scenario), 3, k=batch.K[:0], T=None if T is None else T[:0])
    assert est.theta.shape == est.r.shape == est.mask.shape == (0, 3) and est.k_hat.shape == (0,)
    assert est.eigvals.shape == (0, scenario.m)


def test_the_learned_pipeline_is_estimated_only_in_its_scenes_below_beta_one(model, monkeypatch):
    # elsewhere its C is the classic one, whose estimate the classic method's run holds already
    music, sizes = ESTIMATORS["music"], []

    def counted(C, *args, **kwargs):
        sizes.append(C.shape[0])
        return music(C, *args, **kwargs)

    monkeypatch.setitem(ESTIMATORS, "music", counted)
    pipe = PipelineConfig(blend="calibrated", beta_table=(0.5, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0))
    cfg = EvalConfig(snr_grid_db=(2.5,), n_scenes=40, methods=("learned", "classic"), order_rules=())
    row = evaluate(model, SCENARIO, pipe, cfg)["rows"][0]
    below = round((1 - row["mean_beta"]) * 40 / 0.5)  # the scenes in the bins at β = 0.5
    assert 0 < below < 40 and sizes == [40, below]  # classic first, then learned in its scenes below β = 1


def test_oracle_beats_classic_music_and_the_crb_falls_with_snr(report):
    rows = json.loads(report)["rows"]
    for row in rows:
        assert row["methods"]["oracle"]["angle_rmse_deg"] < 1e-4 < row["methods"]["classic"]["angle_rmse_deg"]
        assert row["methods"]["oracle"]["k_accuracy"]["eigengap"] > 0.9
    # The same scenes at every SNR point, so the bound falls strictly, in angle and in range.
    for key in ("angle_rmse_deg", "range_rmse_m"):
        crb = [row["crb"][key] for row in rows]
        assert crb[0] > crb[1] > crb[2]


def test_on_a_hybrid_array_every_method_runs_in_the_measurement_domain():
    hybrid = ScenarioConfig(
        array=ArrayConfig(n_elements=24),
        measurement=MeasurementConfig(snapshots=8, combiner="random_phase", n_rf=12),
        scene=SceneConfig(k_max=4),
    )
    torch.manual_seed(0)
    net = build_model(ModelConfig(arch="mlp", width=16, depth=1), hybrid)
    report = evaluate(net, hybrid, PipelineConfig(), EvalConfig(snr_grid_db=(20.0,), n_scenes=30))
    methods = report["rows"][0]["methods"]
    # T R_true Tᴴ is exact; T R_samp Tᴴ ≈ W (Y Yᴴ/L) W (the back-projection's row-space bias is gone there).
    assert methods["oracle"]["angle_rmse_deg"] < 1e-4
    assert methods["classic"]["angle_rmse_deg"] < 0.2 and methods["music_samp"]["angle_rmse_deg"] < 0.2


def test_on_a_hybrid_array_the_learned_pipeline_at_beta_one_is_classic_music_exactly():
    # With α = 10⁻² the ridge bends T R_samp Tᴴ away from the classic C (music_samp shows it); a scene at β = 1
    # localises on the classic C itself, so every figure of the learned pipeline is classic's, bit for bit.
    hybrid = ScenarioConfig(
        array=ArrayConfig(n_elements=24), measurement=MeasurementConfig(snapshots=8, combiner="random_phase", n_rf=12)
    )
    torch.manual_seed(0)
    net = build_model(ModelConfig(arch="mlp", width=16, depth=1), hybrid)
    cfg = EvalConfig(snr_grid_db=(0.0, 20.0), n_scenes=30, methods=("learned", "classic", "music_samp"))
    report = evaluate(net, hybrid, PipelineConfig(beta=1.0, tikhonov_alpha=1e-2), cfg)
    for row in report["rows"]:
        learned, classic, samp = (row["methods"][m] for m in cfg.methods)
        for key in ("angle_rmse_deg", "angle_rmse_clipped_deg", "range_rmse_m", "gross_rate", "k_accuracy"):
            assert learned[key] == classic[key], key
    assert samp["angle_rmse_deg"] != classic["angle_rmse_deg"]  # what the fallback would be without it


def test_overrides_of_l_and_k_reach_the_scenes(model):
    cfg = EvalConfig(snr_grid_db=(20.0,), n_scenes=30, snapshots=64, num_sources=1)
    report = evaluate(model, SCENARIO, PipelineConfig(), cfg)
    assert report["scenario"]["measurement"]["snapshots"] == 64
    # Every scene has one source, and at 20 dB with L = 64 MDL finds it every time.
    assert report["rows"][0]["methods"]["classic"]["k_accuracy"]["mdl"] == 1.0
    with pytest.raises(ConfigError, match="num_sources"):
        evaluate(model, SCENARIO, PipelineConfig(), EvalConfig(num_sources=4))


@pytest.mark.parametrize(
    "path",
    [("methods", "oracle", "k_accuracy", "mdl"), ("methods", "classic", "angle_crb_ratio"), ("mean_beta",)],
    ids=lambda p: ".".join(p),
)
def test_check_schema_names_a_missing_entry(report, path):
    report = json.loads(report)
    *parents, leaf = path
    node = report["rows"][0]
    for key in parents:
        node = node[key]
    del node[leaf]
    with pytest.raises(CovblendError, match=r"rows\[0\]\." + r"\.".join(path)):
        check_schema(report)


def test_check_schema_refuses_a_version_2_report(report):
    report = {**json.loads(report), "schema_version": 2}
    with pytest.raises(CovblendError, match="version 3"):
        check_schema(report)


def test_a_subset_of_methods_and_no_order_rules_gives_a_smaller_report_that_still_checks(model):
    cfg = EvalConfig(snr_grid_db=(10.0,), n_scenes=20, methods=("classic", "learned"), order_rules=())
    report = json.loads(json.dumps(evaluate(model, SCENARIO, PipelineConfig(), cfg)))
    check_schema(report)
    methods = report["rows"][0]["methods"]
    assert list(methods) == ["learned", "classic"]  # METHODS' order
    assert all("k_accuracy" not in m and "estimated_k" not in m for m in methods.values())


def test_rmse_intervals_bracket_the_rmse(report):
    for row in json.loads(report)["rows"]:
        m = row["methods"]["classic"]
        for key, ci in (("angle_rmse_deg", "angle_rmse_ci95"), ("range_rmse_m", "range_rmse_ci95")):
            lo, hi = m[ci]
            assert lo <= m[key] <= hi and lo < hi


def test_bad_snr_grid_is_a_config_error():
    with pytest.raises(ConfigError, match="snr_grid_db"):
        EvalConfig(snr_grid_db=())
    with pytest.raises(ConfigError, match="snr_grid_db"):  # σ² = 1e40 overflowed float32: eigh raised, not this
        EvalConfig(snr_grid_db=(0.0, -400.0))
    with pytest.raises(ConfigError, match=r"each SNR point once \(0, 5 repeated\)"):  # the same scenes twice a row
        EvalConfig(snr_grid_db=(5.0, 0.0, 10.0, 0.0, 5.0))
    with pytest.raises(ConfigError, match="methods"):
        EvalConfig(methods=("learned", "music"))
    with pytest.raises(ConfigError, match="order_rules"):
        EvalConfig(order_rules=("aic",))
