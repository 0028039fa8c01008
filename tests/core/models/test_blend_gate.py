"""The blend gate shared by every model: its input, its start near zero, and its RNG-neutral construction."""

from __future__ import annotations

import torch

from core.covariance import measure
from core.measurement import operator, to_measurement
from core.models.base import BlendGate, measured_log_spectrum
from core.scenario import MeasurementConfig, ScenarioConfig, generate

SCEN = ScenarioConfig()
HYBRID = ScenarioConfig(measurement=MeasurementConfig(combiner="random_phase", n_rf=10))


def _inputs(scen, b=8, seed=0, **kwargs):
    batch = generate(scen, b, seed=seed, **kwargs)
    return measure(batch.Y, batch.H, 1e-2)


def test_building_a_gate_leaves_the_global_rng_where_it_was():
    # So adding the gate to every model changed no other parameter's initial value (fixed-blend runs unchanged).
    torch.manual_seed(0)
    BlendGate(SCEN)
    after_gate = torch.rand(5)
    torch.manual_seed(0)
    assert torch.equal(after_gate, torch.rand(5))


def test_identity_spectrum_is_r_samps_own_log_eigenvalues():
    x = _inputs(SCEN)
    expected = torch.linalg.eigvalsh(x.R_samp.to(torch.complex128)).flip(-1).clamp_min(1e-6).log().float()
    torch.testing.assert_close(measured_log_spectrum(x), expected, atol=1e-5, rtol=1e-5)


def test_hybrid_spectrum_is_the_measurement_domain_one():
    x = _inputs(HYBRID)
    spectrum = measured_log_spectrum(x)
    assert spectrum.shape == (8, HYBRID.m)
    C = to_measurement(x.R_samp, operator(x.H))
    lam = torch.linalg.eigvalsh(C.to(torch.complex128)).flip(-1)
    expected = (lam * HYBRID.m / lam.sum(-1, keepdim=True)).log().float()
    torch.testing.assert_close(spectrum, expected, atol=1e-4, rtol=1e-4)


def test_the_spectrum_spreads_with_snr():
    # Trace-M eigenvalues: log λ₁ grows with SNR, while the noise eigenvalues sink; what lets the gate tell SNR.
    low = measured_log_spectrum(_inputs(SCEN, 64, snr_db=-10.0, num_sources=1))
    high = measured_log_spectrum(_inputs(SCEN, 64, snr_db=20.0, num_sources=1))
    assert high[:, 0].mean() > low[:, 0].mean() and high[:, -1].mean() < low[:, -1].mean()


def test_a_new_gate_starts_near_a_zero_logit_for_every_input():
    torch.manual_seed(0)
    gate = BlendGate(HYBRID)
    g = gate(_inputs(HYBRID, 32))
    assert g.shape == (32,) and g.dtype == torch.float32
    assert g.abs().max() < 0.05
