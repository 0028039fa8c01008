import math

import torch

from core.evaluation import score

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
