import math

import pytest
import torch

from core.array import ArrayConfig, steering
from core.crb import scene_crb, stochastic_crb
from core.scenario import MeasurementConfig, ScenarioConfig, SceneConfig, generate

ARRAY = ArrayConfig(n_elements=8)
F64 = dict(dtype=torch.float64)


def _hermitian_basis(k):
    """A real basis of k×k Hermitian matrices: k diagonal, k(k-1)/2 real and k(k-1)/2 imaginary off-diagonal."""
    basis = []
    for i in range(k):
        for j in range(i, k):
            e = torch.zeros(k, k, dtype=torch.complex128)
            e[i, j] = e[j, i] = 1
            basis.append(e)
            if j > i:
                e = torch.zeros(k, k, dtype=torch.complex128)
                e[i, j], e[j, i] = 1j, -1j
                basis.append(e)
    return basis


def _brute_force_crb(theta, r, P0, noise_var, H, snapshots):
    """Slepian–Bangs FIM of R_y = H(A P Aᴴ + σ² I)Hᴴ by central differences at P = P0; P full Hermitian, σ² unknown.

    Returns the std bounds (θ in degrees, r in metres) of one scene, each (K,).
    """
    k, n = theta.shape[0], ARRAY.n_elements
    eye = torch.eye(n, dtype=torch.complex128)

    def r_y(th, rr, P, s2):
        A = steering(th, rr, ARRAY)
        return H @ (A @ P @ A.mH + s2 * eye) @ H.mH

    point = (theta, r, P0, noise_var)
    # One direction per unknown: each θ_k, each r_k, each Hermitian basis matrix of P, and σ².
    directions = []
    for i in range(k):
        directions.append((torch.eye(k, **F64)[i] * 1e-6, 0 * r, 0 * P0, 0.0))
    for i in range(k):
        directions.append((0 * theta, torch.eye(k, **F64)[i] * 1e-6 * r[i], 0 * P0, 0.0))
    directions += [(0 * theta, 0 * r, 1e-6 * e, 0.0) for e in _hermitian_basis(k)]
    directions.append((0 * theta, 0 * r, 0 * P0, 1e-6))
    derivs = []
    for d in directions:
        h = next(float(x.abs().max()) for x in (d[0], d[1], d[2], torch.tensor(d[3])) if float(x.abs().max()) > 0)
        plus = r_y(*(p + dp for p, dp in zip(point, d, strict=True)))
        minus = r_y(*(p - dp for p, dp in zip(point, d, strict=True)))
        derivs.append((plus - minus) / (2 * h))
    Ri = torch.linalg.inv(r_y(*point))
    fim = torch.stack([torch.stack([snapshots * torch.trace(Ri @ a @ Ri @ b).real for b in derivs]) for a in derivs])
    var = torch.diagonal(torch.linalg.inv(fim))
    return torch.rad2deg(var[:k].sqrt()), var[k : 2 * k].sqrt()


def _random_phase(m, n, seed):
    g = torch.Generator().manual_seed(seed)
    phi = 2 * math.pi * torch.rand(m, n, generator=g, **F64)
    return torch.polar(torch.full_like(phi, 1 / math.sqrt(n)), phi)


@pytest.mark.parametrize("m", [8, 5], ids=["identity", "random_phase_M5"])
def test_crb_matches_a_brute_force_slepian_bangs_fim(m):
    # Three scenes with K = 2, 1, 3 in one padded batch, so the per-K grouping is exercised too. Low SNR
    # and close sources make P Bᴴ R_y⁻¹ B P far from diagonal, so every term of the formula matters.
    theta = torch.tensor([[0.3, 0.45, 0.0], [0.1, 0.0, 0.0], [-0.7, -0.55, 0.2]], **F64)
    r = torch.tensor([[6.0, 11.0, 0.0], [8.0, 0.0, 0.0], [5.5, 9.0, 14.0]], **F64)
    mask = torch.tensor([[True, True, False], [True, False, False], [True, True, True]])
    power = torch.tensor([[1.0, 0.5, 0.0], [2.0, 0.0, 0.0], [1.0, 1.5, 0.7]], **F64)
    noise_var = torch.tensor([2.0, 0.5, 3.0], **F64)
    H = torch.stack([torch.eye(8, dtype=torch.complex128) if m == 8 else _random_phase(m, 8, s) for s in range(3)])
    P = torch.diag_embed(power).to(torch.complex128)
    bound = stochastic_crb(theta, r, P, noise_var, H, 50, ARRAY, mask)
    for b in range(3):
        k = int(mask[b].sum())
        ang, rng = _brute_force_crb(theta[b, :k], r[b, :k], P[b, :k, :k], noise_var[b], H[b], 50)
        assert torch.allclose(bound.angle_deg[b, :k], ang, rtol=1e-3, atol=0)
        assert torch.allclose(bound.range_m[b, :k], rng, rtol=1e-3, atol=0)
        assert bound.angle_deg[b, k:].isnan().all() and bound.range_m[b, k:].isnan().all()


@pytest.mark.parametrize("c", [0.9, 1.0], ids=["correlated", "coherent"])
def test_crb_with_correlated_sources_matches_the_brute_force_fim(c):
    # The scenes' own P = D^½ Γ D^½ (full for c = 0.9, rank 1 for c = 1), padded slots placed first in one
    # scene so the per-K gather of P's rows and columns is exercised.
    cfg = ScenarioConfig(array=ARRAY, scene=SceneConfig(k_max=3, correlation=c, min_separation_deg=10.0))
    batch = generate(cfg, 6, seed=11, snr_db=0.0, dtype=torch.float64)
    bound = scene_crb(batch, ARRAY)
    assert (torch.linalg.matrix_rank(batch.source_cov[batch.K == 3]) == (1 if c == 1 else 3)).all()
    for b in range(6):
        k = int(batch.K[b])
        P = batch.source_cov[b, :k, :k]
        ang, rng = _brute_force_crb(batch.theta[b, :k], batch.r[b, :k], P, batch.noise_var[b], batch.H[b], 16)
        assert torch.allclose(bound.angle_deg[b, :k], ang, rtol=1e-3, atol=0)
        assert torch.allclose(bound.range_m[b, :k], rng, rtol=1e-3, atol=0)


def test_coherent_sources_have_a_larger_bound_than_uncorrelated_ones():
    cfgs = [ScenarioConfig(scene=SceneConfig(correlation=c)) for c in (0.0, 1.0)]
    white, coherent = (scene_crb(generate(cfg, 64, seed=5, snr_db=0.0, dtype=torch.float64), cfg.array) for cfg in cfgs)
    two = generate(cfgs[0], 64, seed=5, dtype=torch.float64).K > 1
    assert coherent.angle_deg[two].square().nanmean() > white.angle_deg[two].square().nanmean()


def test_crb_variance_scales_as_one_over_snapshots():
    batch = generate(ScenarioConfig(), 16, seed=3, dtype=torch.float64)
    args = (batch.theta, batch.r, batch.source_cov, batch.noise_var, batch.H)
    few = stochastic_crb(*args, 10, ScenarioConfig().array, batch.mask)
    many = stochastic_crb(*args, 40, ScenarioConfig().array, batch.mask)
    valid = batch.mask
    assert torch.allclose(few.angle_deg[valid] / many.angle_deg[valid], torch.full((int(valid.sum()),), 2.0, **F64))
    assert torch.allclose(few.range_m[valid] / many.range_m[valid], torch.full((int(valid.sum()),), 2.0, **F64))


def test_crb_falls_as_snr_rises():
    cfg = ScenarioConfig(measurement=MeasurementConfig(combiner="random_phase", n_rf=10), scene=SceneConfig(k_max=2))
    # A fixed SNR draws no random numbers, so every SNR sees the same geometry and H.
    bounds = [
        scene_crb(generate(cfg, 32, seed=4, snr_db=snr, dtype=torch.float64), cfg.array) for snr in (-10, 0, 10, 20)
    ]
    valid = ~bounds[0].angle_deg.isnan()
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        assert (hi.angle_deg[valid] < lo.angle_deg[valid]).all()
        assert (hi.range_m[valid] < lo.range_m[valid]).all()
