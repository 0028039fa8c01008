import math
import sys
from pathlib import Path

import pytest
import torch

from core.array import ArrayConfig
from core.errors import ConfigError
from core.scenario import MeasurementConfig, ScenarioConfig, SceneConfig, generate
from tests.core.data.scenes_before_correlation import CASES

CFG = ScenarioConfig()
DATA = Path(__file__).parent / "data"


def test_batch_has_the_documented_shapes():
    cfg = ScenarioConfig(measurement=MeasurementConfig(combiner="random_phase", n_rf=8, snapshots=5))
    b = generate(cfg, 7, seed=0)
    assert b.Y.shape == (7, 8, 5) and b.H.shape == (7, 8, 16) and b.R_true.shape == (7, 16, 16)
    assert b.K.shape == (7,) and b.theta.shape == b.r.shape == b.mask.shape == (7, 3)
    assert torch.equal(b.mask.sum(1), b.K)


def test_same_seed_gives_identical_tensors_and_another_seed_does_not():
    a, b, c = generate(CFG, 64, seed=3), generate(CFG, 64, seed=3), generate(CFG, 64, seed=4)
    assert torch.equal(a.Y, b.Y) and torch.equal(a.R_true, b.R_true) and torch.equal(a.theta, b.theta)
    assert not torch.equal(a.Y, c.Y)


def test_uncorrelated_scenes_are_those_of_before_the_correlation_setting():
    # The file holds scenes drawn by the generator of commit 73aaffd (no correlation setting), as
    # data/scenes_before_correlation.py wrote them: equal bit for bit on the machine that wrote it; on another
    # CPU torch's kernels round differently in the last bits, while a change in the draws would move every value.
    before = torch.load(DATA / "scenes_before_correlation.pt")
    for name, (cfg, kwargs) in CASES.items():
        assert cfg.scene.correlation == (0.0, 0.0)
        kwargs = dict(kwargs)
        batch = generate(cfg, kwargs.pop("batch"), **kwargs)
        for field, old in before[name].items():
            new = getattr(batch, field)
            if old.is_floating_point() or old.is_complex():
                torch.testing.assert_close(new, old, rtol=1e-5, atol=1e-6, msg=f"{name}.{field}")
            else:
                assert torch.equal(new, old), f"{name}.{field}"


def test_coherent_sources_have_a_rank_one_p_and_a_rank_one_noiseless_signal_subspace():
    cfg = ScenarioConfig(measurement=MeasurementConfig(snapshots=40), scene=SceneConfig(correlation=1.0))
    b = generate(cfg, 64, seed=2, num_sources=3, snr_db=100.0, dtype=torch.float64)
    assert (torch.linalg.matrix_rank(b.source_cov) == 1).all()
    R_samp = b.Y @ b.Y.mH / 40  # σ² = 1e-10: noiseless up to rounding
    lam = torch.linalg.eigvalsh(R_samp).flip(-1)
    assert (lam[:, 1] < 1e-6 * lam[:, 0]).all()  # one waveform: rank 1, whatever K is
    white = generate(
        ScenarioConfig(measurement=MeasurementConfig(snapshots=40)),
        64,
        seed=2,
        num_sources=3,
        snr_db=100.0,
        dtype=torch.float64,
    )
    lam = torch.linalg.eigvalsh(white.Y @ white.Y.mH / 40).flip(-1)
    assert (lam[:, 2] > 1e-3 * lam[:, 0]).all()


@pytest.mark.parametrize("c", [0.5, 0.9])
def test_correlated_snapshots_have_covariance_p(c):
    # E[s sᴴ] = P = D^½ ((1 − c) I + c u uᴴ) D^½: the snapshots' covariance converges to R_true = A P Aᴴ + σ² I.
    cfg = ScenarioConfig(measurement=MeasurementConfig(snapshots=20000), scene=SceneConfig(correlation=c))
    b = generate(cfg, 4, seed=1, num_sources=3, snr_db=10.0, dtype=torch.float64)
    R = b.Y @ b.Y.mH / 20000
    err = (R - b.R_true).norm(dim=(-2, -1)) / b.R_true.norm(dim=(-2, -1))
    assert (err < 0.05).all()
    gamma = b.source_cov / b.source_cov.diagonal(dim1=-2, dim2=-1).real.sqrt()[:, :, None]
    gamma = gamma / b.source_cov.diagonal(dim1=-2, dim2=-1).real.sqrt()[:, None, :]
    off = ~torch.eye(3, dtype=torch.bool)
    assert torch.allclose(gamma.abs()[:, off], torch.full((4, 6), c, dtype=torch.float64))


def test_a_correlation_range_draws_c_per_scene_and_changes_no_other_draw():
    ranged = generate(ScenarioConfig(scene=SceneConfig(correlation=(0.9, 1.0))), 256, seed=4)
    white = generate(CFG, 256, seed=4)
    assert torch.equal(ranged.theta, white.theta) and torch.equal(ranged.r, white.r)
    assert torch.equal(ranged.snr_db, white.snr_db) and not torch.equal(ranged.Y, white.Y)
    two = ranged.K > 1
    c = ranged.source_cov[two, 0, 1].abs() / ranged.power[two, 0]
    assert c.min() >= 0.9 - 1e-6 and c.max() <= 1.0 + 1e-6 and c.std() > 0.01


def test_fewer_snapshots_than_sources_give_a_sample_covariance_of_rank_l():
    cfg = ScenarioConfig(measurement=MeasurementConfig(snapshots=2))
    b = generate(cfg, 32, seed=0, num_sources=3, dtype=torch.float64)
    assert (torch.linalg.matrix_rank(b.Y @ b.Y.mH / 2) == 2).all()


def test_scenes_respect_angle_range_separation_and_range_interval():
    b = generate(CFG, 4000, seed=1)
    lo, hi = (math.radians(v) for v in CFG.scene.angle_deg)
    th = b.theta[b.mask]
    assert th.min() >= lo - 1e-6 and th.max() <= hi + 1e-6
    r = b.r[b.mask]
    r_min, r_max = CFG.range_m
    assert r.min() >= r_min * (1 - 1e-5) and r.max() <= r_max * (1 + 1e-5)
    multi = b.K >= 2
    gaps = (b.theta[multi, 1:] - b.theta[multi, :-1])[b.mask[multi, 1:]]
    assert gaps.min() >= math.radians(CFG.scene.min_separation_deg) - 1e-6
    assert set(b.K.tolist()) == {1, 2, 3}


def test_ranges_are_uniform_in_inverse_range():
    b = generate(CFG, 20000, seed=2)
    r_min, r_max = CFG.range_m
    u = ((1 / b.r[b.mask]) - 1 / r_max) / (1 / r_min - 1 / r_max)
    hist = torch.histc(u, bins=4, min=0, max=1) / u.numel()
    assert torch.allclose(hist, torch.full((4,), 0.25), atol=0.02)


def test_snr_is_a_power_ratio_per_element_and_source():
    b = generate(CFG, 16, seed=0, snr_db=10.0)
    assert torch.allclose(b.noise_var, torch.full((16,), 0.1))
    # Diagonal of R_true is K·p + σ² for unit-modulus steering vectors.
    diag = torch.diagonal(b.R_true, dim1=-2, dim2=-1).real
    assert torch.allclose(diag, (b.K.float() + 0.1)[:, None].expand_as(diag), atol=1e-5)


def test_sample_covariance_of_x_converges_to_r_true():
    errs = []
    for snaps in (10, 100, 1000):
        cfg = ScenarioConfig(measurement=MeasurementConfig(snapshots=snaps))
        b = generate(cfg, 200, seed=5, dtype=torch.float64)
        R = b.Y @ b.Y.mH / snaps
        errs.append(((R - b.R_true).norm(dim=(-2, -1)) / b.R_true.norm(dim=(-2, -1))).mean().item())
    assert errs[0] > errs[1] > errs[2]
    # Error of a sample covariance falls as 1/sqrt(L).
    assert errs[1] / errs[2] == pytest.approx(math.sqrt(10), rel=0.2)


def test_random_phase_combiner_has_unit_modulus_entries_over_sqrt_n():
    cfg = ScenarioConfig(measurement=MeasurementConfig(combiner="random_phase", n_rf=6))
    b = generate(cfg, 4, seed=0)
    assert torch.allclose(b.H.abs(), torch.full_like(b.H.abs(), 1 / 4))
    assert not torch.allclose(b.H[0], b.H[1])


def _python_calls(n: int) -> tuple[int, torch.Tensor]:
    """Python function calls made while generating n scenes, and the snapshots."""
    calls = []
    sys.setprofile(lambda frame, event, arg: calls.append(1) if event == "call" else None)
    try:
        b = generate(CFG, n, seed=0)
    finally:
        sys.setprofile(None)
    return len(calls), b.Y


def test_generation_is_batched_not_a_loop_over_scenes():
    # The same Python calls for 64 and 16,384 scenes: no per-scene loop (speed itself is benchmarks/' business).
    few, _ = _python_calls(64)
    many, Y = _python_calls(16384)
    assert many == few
    assert torch.isfinite(Y).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_generates_on_cuda():
    b = generate(CFG, 128, seed=0, device="cuda")
    assert b.Y.is_cuda and b.R_true.is_cuda


@pytest.mark.parametrize(
    "build, needle",
    [
        (lambda: ScenarioConfig(scene=SceneConfig(k_max=16)), "k_max"),
        (lambda: ScenarioConfig(measurement=MeasurementConfig(combiner="random_phase", n_rf=17)), "n_rf"),
        (lambda: ScenarioConfig(measurement=MeasurementConfig(n_rf=8)), "identity combiner"),
        (lambda: ScenarioConfig(measurement=MeasurementConfig(combiner="random_phase", n_rf=3)), "n_rf"),
        (lambda: MeasurementConfig(snapshots=0), "snapshots"),
        (lambda: SceneConfig(k_max=4, angle_deg=(-10.0, 10.0), min_separation_deg=10.0), "min_separation_deg"),
        (lambda: SceneConfig(range_m=(0.0, 10.0)), "range_m"),
        (lambda: SceneConfig(range_m=(5.0, math.inf)), "range_m"),
        (lambda: SceneConfig(snr_db=(20.0, -10.0)), "snr_db"),
        (lambda: SceneConfig(correlation=1.5), "correlation"),
        (lambda: SceneConfig(correlation=(1.0, 0.9)), "correlation"),
        (lambda: ScenarioConfig.from_dict({"scene": {"kmax": 3}}), "kmax"),
        (lambda: ScenarioConfig.from_dict({"antenna": {}}), "antenna"),
        (lambda: generate(CFG, 4, seed=0, num_sources=4), "num_sources"),
        (  # before the allocator: 4 scenes of 10**8 snapshots are 51 GB
            lambda: generate(CFG.replace(measurement=MeasurementConfig(snapshots=10**8)), 4, seed=0),
            "n_scenes × snapshots must be <= 16,000,000 .*got 4 × 100,000,000",
        ),
    ],
)
def test_bad_config_gives_a_clear_error(build, needle):
    with pytest.raises(ConfigError, match=needle):
        build()


def test_from_dict_builds_nested_configs():
    cfg = ScenarioConfig.from_dict({"array": {"n_elements": 8}, "scene": {"k_max": 2, "snr_db": [0, 10]}})
    assert cfg.array == ArrayConfig(n_elements=8) and cfg.scene.snr_db == (0, 10)
