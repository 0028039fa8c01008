import json
import math

import pytest
import torch

from core.covariance import PipelineConfig
from core.errors import ConfigError, CovblendError
from core.evaluation import SCHEMA_VERSION, EvalConfig, check_schema, evaluate, score
from core.model import ModelConfig, build_model
from core.scenario import ScenarioConfig

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


def test_score_of_nothing_matched_is_nan():
    m = torch.zeros(1, 2, dtype=torch.bool)
    s = score(torch.zeros(1, 2), torch.zeros(1, 2), m, torch.zeros(1, 2), torch.zeros(1, 2), ~m)
    assert math.isnan(s.angle_rmse_deg) and math.isnan(s.range_rmse_m)


SCENARIO = ScenarioConfig()
SMALL = EvalConfig(snr_grid_db=(0.0, 20.0), n_scenes=40)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(ModelConfig(arch="mlp", width=16, depth=1), SCENARIO)


def test_report_has_one_row_per_snr_and_follows_the_schema(model):
    report = evaluate(model, SCENARIO, PipelineConfig(), SMALL)
    check_schema(json.loads(json.dumps(report)))  # JSON round trip: no NaN, no tensors
    assert [row["snr_db"] for row in report["rows"]] == [0.0, 20.0]
    assert report["schema_version"] == SCHEMA_VERSION and "p_k/σ²" in report["snr_definition"]


def test_learned_equals_music_on_r_samp_when_the_blend_is_all_r_samp(model):
    # β = 1 makes R_blend = R_samp inside the one pipeline, so both methods must score identically.
    report = evaluate(model, SCENARIO, PipelineConfig(beta=1.0), SMALL)
    for row in report["rows"]:
        learned, samp = row["methods"]["learned"], row["methods"]["music_samp"]
        assert learned["angle_rmse_deg"] == pytest.approx(samp["angle_rmse_deg"], rel=1e-4)
        assert learned["k_accuracy"] == samp["k_accuracy"]


def test_oracle_beats_sample_music_and_the_crb_falls_with_snr(model):
    rows = evaluate(model, SCENARIO, PipelineConfig(), SMALL)["rows"]
    for row in rows:
        assert row["methods"]["oracle"]["angle_rmse_deg"] < row["methods"]["music_samp"]["angle_rmse_deg"]
        assert row["methods"]["oracle"]["k_accuracy"]["eigengap"] > 0.9
    assert rows[1]["crb"]["angle_rmse_deg"] < rows[0]["crb"]["angle_rmse_deg"]


def test_overrides_of_l_and_k_reach_the_scenes(model):
    cfg = EvalConfig(snr_grid_db=(20.0,), n_scenes=30, snapshots=64, num_sources=1)
    report = evaluate(model, SCENARIO, PipelineConfig(), cfg)
    assert report["scenario"]["measurement"]["snapshots"] == 64
    # Every scene has one source, and at 20 dB with L = 64 MDL finds it every time.
    assert report["rows"][0]["methods"]["music_samp"]["k_accuracy"]["mdl"] == 1.0
    with pytest.raises(ConfigError, match="num_sources"):
        evaluate(model, SCENARIO, PipelineConfig(), EvalConfig(num_sources=4))


def test_check_schema_names_a_missing_entry(model):
    report = json.loads(json.dumps(evaluate(model, SCENARIO, PipelineConfig(), EvalConfig((10.0,), n_scenes=10))))
    del report["rows"][0]["methods"]["oracle"]["k_accuracy"]["mdl"]
    with pytest.raises(CovblendError, match=r"rows\[0\]\.methods\.oracle\.k_accuracy\.mdl"):
        check_schema(report)


def test_bad_snr_grid_is_a_config_error():
    with pytest.raises(ConfigError, match="snr_grid_db"):
        EvalConfig(snr_grid_db=())
