from dataclasses import replace

import pytest
import torch

from core.array import ArrayConfig
from core.covariance import (
    PipelineConfig,
    blended_covariance,
    hermitize,
    measure,
    pipeline,
    pipeline_on,
    sample_covariance,
    trace_to_n,
)
from core.errors import ConfigError
from core.measurement import measured_eigvals, split_eigvals
from core.scenario import MeasurementConfig, ScenarioConfig, generate

PIPE = PipelineConfig()
ADAPTIVE = PipelineConfig(blend="adaptive", beta=0.3, beta_min=0.05)


def _factors(b, n=16, k=3, rank_deficient=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    A1 = torch.randn(b, n, k, dtype=torch.complex64, generator=g).requires_grad_()
    A2 = torch.randn(b, n, k, dtype=torch.complex64, generator=g).requires_grad_()
    return A1, A2


@pytest.fixture(params=["identity", "random_phase"])
def batch(request):
    m = None if request.param == "identity" else 10
    cfg = ScenarioConfig(measurement=MeasurementConfig(combiner=request.param, n_rf=m))
    return generate(cfg, 32, seed=0)


def test_blend_has_trace_n_and_is_hermitian_psd(batch):
    cov = blended_covariance(_factors(32), batch.Y, batch.H, PIPE)
    for R in (cov.R_pred, cov.R_samp, cov.R_blend):
        tr = torch.diagonal(R, dim1=-2, dim2=-1).sum(-1)
        assert torch.allclose(tr.real, torch.full((32,), 16.0), atol=1e-4)
        assert torch.allclose(R, R.mH)
    assert torch.linalg.eigvalsh(cov.R_blend.detach()).min() > -1e-4


def test_gradients_reach_both_factors_and_nothing_flows_into_r_samp(batch):
    A1, A2 = _factors(32)
    cov = blended_covariance((A1, A2), batch.Y, batch.H, PIPE)
    assert not cov.R_samp.requires_grad and cov.R_samp.grad_fn is None
    (cov.R_blend.real.square().sum() + cov.R_blend.imag[:, 0, 1].sum()).backward()
    assert A1.grad is not None and A1.grad.abs().sum() > 0
    assert A2.grad is not None and A2.grad.abs().sum() > 0


def test_pipeline_never_reads_r_true(batch):
    A1, A2 = _factors(32)
    ref = blended_covariance((A1, A2), batch.Y, batch.H, PIPE).R_blend
    poisoned = replace(batch, R_true=torch.full_like(batch.R_true, float("nan")))
    again = blended_covariance((A1, A2), poisoned.Y, poisoned.H, PIPE).R_blend
    assert torch.equal(ref, again)


def test_same_inputs_give_bit_identical_blend(batch):
    f = _factors(32)
    a = blended_covariance(f, batch.Y, batch.H, PIPE).R_blend
    b = blended_covariance(f, batch.Y, batch.H, PIPE).R_blend
    assert torch.equal(a, b)


def test_blend_is_the_documented_mix():
    b = generate(ScenarioConfig(), 8, seed=1)
    f = _factors(8)
    cfg = PipelineConfig(beta=0.25)
    cov = blended_covariance(f, b.Y, b.H, cfg)
    expected = trace_to_n(hermitize(0.75 * cov.R_pred + 0.25 * cov.R_samp))
    assert torch.allclose(cov.R_blend, expected)
    assert torch.allclose(blended_covariance(f, b.Y, b.H, PipelineConfig(beta=1.0)).R_blend, cov.R_samp)


def test_trace_to_n_scales_rather_than_normalises_to_one():
    R = torch.eye(4, dtype=torch.complex64)[None] * 3.0
    assert torch.allclose(trace_to_n(R), torch.eye(4, dtype=torch.complex64)[None])


def test_sample_covariance_with_identity_h_is_the_scaled_snapshot_covariance():
    b = generate(ScenarioConfig(), 4, seed=2)
    R = b.Y @ b.Y.mH
    assert torch.allclose(sample_covariance(b.Y, b.H, 1e-2), trace_to_n(R), atol=1e-5)


@pytest.mark.parametrize("alpha", [1e-3, 1e-5, 1e-6])
def test_sample_covariance_of_a_hybrid_array_keeps_float32_accuracy_at_small_alpha(alpha):
    # M < N: the N×N Gram Hᴴ H + α I has N − M eigenvalues α; solving it in float32 lost up to 17% of R_samp
    cfg = ScenarioConfig(
        array=ArrayConfig(n_elements=32), measurement=MeasurementConfig(combiner="random_phase", n_rf=16)
    )
    b = generate(cfg, 64, seed=4)
    Y, H = b.Y.to(torch.complex128), b.H.to(torch.complex128)
    X = torch.linalg.solve(H.mH @ H + alpha * torch.eye(32, dtype=H.dtype), H.mH @ Y)  # the formula, in float64
    exact = trace_to_n(hermitize(X @ X.mH))
    err = torch.linalg.matrix_norm(sample_covariance(b.Y, b.H, alpha).to(exact.dtype) - exact)
    assert (err / torch.linalg.matrix_norm(exact)).max() < 1e-5


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(beta=1.5), "beta"),
        (dict(beta=-0.1), "beta"),
        (dict(tikhonov_alpha=0.0), "tikhonov_alpha"),
        (dict(range_weight=-1.0), "range_weight"),
        (dict(blend="adapt"), "blend"),
        (dict(beta_min=1.5), "beta_min"),
        (dict(beta_min=-0.1), "beta_min"),
    ],
)
def test_bad_pipeline_config_names_the_value(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        PipelineConfig(**kwargs)


def test_pipeline_through_a_model_equals_the_pipeline_on_its_factors(batch):
    seen = {}

    def model(x):
        seen["R_samp"], seen["H"] = x.R_samp, x.H
        return _factors(len(x))

    via_model = pipeline(model, batch.Y, batch.H, PIPE)
    via_factors = blended_covariance(_factors(len(batch)), batch.Y, batch.H, PIPE)
    assert torch.equal(via_model.R_blend, via_factors.R_blend)
    assert torch.equal(seen["R_samp"], via_model.R_samp) and seen["H"] is batch.H


def _gate(b, scale=1.0, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(b, generator=g)).requires_grad_()


def test_adaptive_blend_has_trace_n_and_is_hermitian_psd(batch):
    A1, A2 = _factors(32)
    cov = blended_covariance((A1, A2, _gate(32, scale=3.0)), batch.Y, batch.H, ADAPTIVE)
    tr = torch.diagonal(cov.R_blend, dim1=-2, dim2=-1).sum(-1)
    assert torch.allclose(tr.real, torch.full((32,), 16.0), atol=1e-4)
    assert torch.allclose(cov.R_blend, cov.R_blend.mH)
    assert torch.linalg.eigvalsh(cov.R_blend.detach()).min() > -1e-4


def test_adaptive_blend_is_the_documented_mix_per_scene(batch):
    cov = blended_covariance((*_factors(32), _gate(32)), batch.Y, batch.H, ADAPTIVE)
    beta = cov.beta[:, None, None]
    assert cov.beta.shape == (32,) and cov.beta.unique().numel() == 32  # one β per scene
    torch.testing.assert_close(cov.R_blend, trace_to_n(hermitize((1 - beta) * cov.R_pred + beta * cov.R_samp)))


def test_adaptive_gate_gets_gradients_and_nothing_flows_into_r_samp(batch):
    gate = _gate(32)
    cov = blended_covariance((*_factors(32), gate), batch.Y, batch.H, ADAPTIVE)
    assert cov.R_samp.grad_fn is None
    cov.R_blend.real.square().sum().backward()
    assert gate.grad is not None and torch.isfinite(gate.grad).all() and gate.grad.abs().min() > 0


@pytest.mark.parametrize("beta_min", [0.0, 0.05, 0.37, 1.0])
def test_adaptive_beta_stays_in_its_range_even_for_extreme_logits(beta_min):
    b = generate(ScenarioConfig(), 7, seed=4)
    logits = torch.tensor([-1e30, -1e4, -30.0, 0.0, 30.0, 1e4, 1e30])
    cfg = PipelineConfig(blend="adaptive", beta=0.5, beta_min=beta_min)
    beta = blended_covariance((*_factors(7), logits), b.Y, b.H, cfg).beta
    assert ((beta >= beta_min) & (beta <= 1.0)).all(), beta
    assert beta[0] == pytest.approx(beta_min) and beta[-1] == pytest.approx(1.0)


@pytest.mark.parametrize("beta", [0.0, 0.05, 0.3, 0.9, 1.0])
def test_a_zero_gate_logit_starts_the_adaptive_beta_at_the_configured_beta(beta):
    b = generate(ScenarioConfig(), 4, seed=4)
    cfg = PipelineConfig(blend="adaptive", beta=beta, beta_min=0.05)
    got = blended_covariance((*_factors(4), torch.zeros(4)), b.Y, b.H, cfg).beta
    # A β at or below β_min, or at 1, starts just inside the range, in the sigmoid's tail.
    expected = min(max(beta, 0.05 + 0.95e-3), 1 - 0.95e-3)
    torch.testing.assert_close(got, torch.full((4,), expected), atol=1e-6, rtol=0)


def test_fixed_blend_ignores_the_gate_logit(batch):
    f = _factors(32)
    without = blended_covariance(f, batch.Y, batch.H, PIPE)
    with_gate = blended_covariance((*f, _gate(32, scale=10.0)), batch.Y, batch.H, PIPE)
    assert torch.equal(without.R_blend, with_gate.R_blend)
    assert torch.equal(with_gate.beta, torch.full((32,), PIPE.beta))


def test_adaptive_blend_without_a_gate_logit_is_a_config_error(batch):
    with pytest.raises(ConfigError, match="gate logit"):
        blended_covariance(_factors(32), batch.Y, batch.H, ADAPTIVE)


def test_the_noise_floor_adds_the_measured_noise_share_of_the_trace(batch):
    floored = blended_covariance(_factors(32), batch.Y, batch.H, PipelineConfig(noise_floor=True))
    bare = blended_covariance(_factors(32), batch.Y, batch.H, PIPE)
    f = split_eigvals(measured_eigvals(bare.R_samp, batch.H), 3, batch.Y.shape[-1]).noise_share.float()[:, None, None]
    assert (f > 0).all() and (f < 1).all()
    eye = torch.eye(16, dtype=bare.R_pred.dtype)
    assert torch.allclose(floored.R_pred, (1 - f) * bare.R_pred + f * eye, atol=1e-5)
    tr = torch.diagonal(floored.R_pred, dim1=-2, dim2=-1).sum(-1).real
    assert torch.allclose(tr, torch.full((32,), 16.0), atol=1e-4)
    assert torch.linalg.eigvalsh(floored.R_pred.detach()).min() > -1e-5


def test_without_the_noise_floor_r_pred_keeps_the_factors_rank(batch):
    cov = blended_covariance(_factors(32), batch.Y, batch.H, PIPE)
    assert (torch.linalg.matrix_rank(cov.R_pred.detach()) <= 6).all()


def test_a_set_measured_once_and_sliced_gives_what_measuring_the_batch_gives(batch):
    # Training measures its fixed set once and indexes it per batch; the numbers must be those of pipeline().
    cfg = PipelineConfig(blend="calibrated", beta_table=(0.3, 0.5, 0.7, 0.9, 1.0, 1.0, 1.0), noise_floor=True)
    idx = torch.tensor([5, 0, 17, 31, 2])
    factors = _factors(len(idx))

    def model(x):
        return factors

    sliced = pipeline_on(model, measure(batch.Y, batch.H, cfg.tikhonov_alpha)[idx], cfg)
    direct = pipeline(model, batch.Y[idx], batch.H[idx], cfg)
    assert torch.equal(sliced.R_blend, direct.R_blend)
    assert torch.equal(sliced.beta, direct.beta)


def test_scenes_measured_with_another_alpha_are_refused(batch):
    x = measure(batch.Y, batch.H, 1e-3)
    with pytest.raises(ConfigError, match="tikhonov_alpha"):
        pipeline_on(lambda x: _factors(32), x, PipelineConfig(tikhonov_alpha=1e-2))
