import pytest
import torch

from core.covariance import PipelineConfig, blended_covariance, hermitize, pipeline, sample_covariance, trace_to_n
from core.errors import ConfigError
from core.scenario import MeasurementConfig, ScenarioConfig, generate

PIPE = PipelineConfig()


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
    poisoned = batch.with_(R_true=torch.full_like(batch.R_true, float("nan")))
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


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(beta=1.5), "beta"),
        (dict(beta=-0.1), "beta"),
        (dict(tikhonov_alpha=0.0), "tikhonov_alpha"),
        (dict(range_weight=-1.0), "range_weight"),
    ],
)
def test_bad_pipeline_config_names_the_value(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        PipelineConfig(**kwargs)


def test_pipeline_through_a_model_equals_the_pipeline_on_its_factors(batch):
    seen = {}

    def model(R_samp, H):
        seen["R_samp"], seen["H"] = R_samp, H
        return _factors(len(H))

    via_model = pipeline(model, batch.Y, batch.H, PIPE)
    via_factors = blended_covariance(_factors(len(batch)), batch.Y, batch.H, PIPE)
    assert torch.equal(via_model.R_blend, via_factors.R_blend)
    assert torch.equal(seen["R_samp"], via_model.R_samp) and seen["H"] is batch.H
