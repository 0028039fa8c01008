import math

import torch

from core.array import steering
from core.covariance import sample_covariance
from core.grid import GridConfig, build_grid
from core.music import music
from core.peak_repair import RESIDUAL_FLAG, _gram_solve, fit_residual
from core.scenario import ScenarioConfig, generate
from tests.core.snapshots import snapshots

CFG = ScenarioConfig()
PLAIN, REPAIRED = build_grid(CFG, GridConfig(repair=False)), build_grid(CFG)
# A pair 6° apart near end-fire (the beam is ~1.7× wider at 55° than at broadside) beside a third source.
THETA, R = [37.0, 52.0, 58.0], [25.0, 80.0, 30.0]


def _sample_covariances(seeds, snr_db=10.0, n_snapshots=16):
    """R_samp (S, N, N) of the scene above, one noise draw per seed; H = I."""
    Y = torch.cat([snapshots(THETA, R, snr_db, n_snapshots, seed, CFG) for seed in seeds]).to(torch.complex64)
    H = torch.eye(CFG.n, dtype=torch.complex64).expand(len(seeds), -1, -1)
    return sample_covariance(Y, H, 1e-2)


def _signal_subspace(R: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """U_s (B, N, 3) complex128: the top-K eigenvectors of R (B, N, N), columns beyond each scene's K zeroed."""
    U = torch.linalg.eigh(R.to(torch.complex128))[1].flip(-1)[..., :3]
    return U * (torch.arange(3)[None, :] < k[:, None])[:, None, :]


def _worst_angle_error_deg(est) -> torch.Tensor:
    """(S,) largest |θ̂ − θ| after sorting both, degrees."""
    got = torch.rad2deg(est.theta).sort(-1).values
    return (got - torch.tensor(THETA, dtype=got.dtype)).abs().amax(-1)


def test_a_merged_close_pair_is_recovered_by_the_repair():
    R_samp = _sample_covariances(range(30))
    k = torch.full((30,), 3)
    plain = _worst_angle_error_deg(music(R_samp, PLAIN, 3, k=k))
    repaired = _worst_angle_error_deg(music(R_samp, REPAIRED, 3, k=k))
    assert (plain > 5).sum() >= 5  # plain MUSIC merges the pair in many draws and puts a peak far away
    assert (repaired < 1).all(), repaired


def test_well_fitted_scenes_are_left_bit_identical():
    batch = generate(CFG, 300, seed=5, snr_db=15.0)
    R_samp = sample_covariance(batch.Y, batch.H, 1e-2)
    plain, repaired = music(R_samp, PLAIN, 3, k=batch.K), music(R_samp, REPAIRED, 3, k=batch.K)
    U_s = _signal_subspace(R_samp, batch.K)
    A = steering(plain.theta, torch.where(plain.mask, plain.r, 1.0), CFG.array) * plain.mask[:, None, :]
    fitted = fit_residual(U_s, A) <= RESIDUAL_FLAG
    assert fitted.float().mean() > 0.9
    assert torch.equal(plain.theta[fitted], repaired.theta[fitted])
    assert torch.equal(plain.r[fitted], repaired.r[fitted])


def test_the_residual_is_zero_at_the_true_sources_of_the_true_covariance():
    batch = generate(CFG, 64, seed=6, dtype=torch.float64)
    U_s = _signal_subspace(batch.R_true, batch.K)
    A = steering(batch.theta, torch.where(batch.mask, batch.r, 1.0), CFG.array) * batch.mask[:, None, :]
    assert fit_residual(U_s, A).abs().max() < 1e-8
    assert math.isclose(float(fit_residual(U_s, torch.zeros_like(A))[0]), float(batch.K[0]), rel_tol=1e-9)


def test_two_estimates_on_one_point_do_not_break_the_repair():
    # Seen on a trained R_blend: two slots on the same grid point make AᴴA singular in complex64.
    a = steering(torch.tensor([[0.3, 0.3, -0.4]]), torch.tensor([[40.0, 40.0, 60.0]]), CFG.array).to(torch.complex64)
    X = torch.randn(1, 3, 5, dtype=torch.complex64)
    out = _gram_solve(a, X)
    assert torch.isfinite(out).all()
    # The pseudo-inverse counts the repeated column once: a vector in the span is fully explained.
    span = a[..., :1] + a[..., 2:]
    C = a.mH @ span
    explained = (C.conj() * _gram_solve(a, C)).sum((-2, -1)).real
    assert torch.allclose(explained, span.abs().square().sum((-2, -1)), rtol=1e-3)


def test_in_a_mixed_batch_only_the_accepted_scenes_change_and_those_are_repaired():
    # -10 dB scenes get flagged and mostly rejected; the merged pairs after them are accepted and swept
    noisy = generate(CFG, 200, seed=8, snr_db=-10.0)
    R = torch.cat([sample_covariance(noisy.Y, noisy.H, 1e-2), _sample_covariances(range(10))])
    k = torch.cat([noisy.K, torch.full((10,), 3)])
    plain, repaired = music(R, PLAIN, 3, k=k), music(R, REPAIRED, 3, k=k)
    changed = (plain.theta != repaired.theta).any(-1) | (plain.r != repaired.r).any(-1)
    U_s = _signal_subspace(R, k)
    A = steering(plain.theta, torch.where(plain.mask, plain.r, 1.0), CFG.array) * plain.mask[:, None, :]
    flagged = fit_residual(U_s, A) > RESIDUAL_FLAG
    assert int((flagged[:200] & ~changed[:200]).sum()) >= 10  # rejected re-searches leave their scenes as they were
    assert not bool((changed & ~flagged).any())
    assert (_worst_angle_error_deg(repaired)[200:] < 1).all()
    for b in range(200, 210):  # each scene's own estimate, whatever its neighbours
        assert torch.allclose(repaired.theta[b], music(R[b : b + 1], REPAIRED, 3, k=k[b : b + 1]).theta, atol=1e-6)
