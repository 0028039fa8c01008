import math

import pytest
import torch

from core.array import ArrayConfig, element_positions, steering, steering_with_derivatives
from core.errors import ConfigError

CFG = ArrayConfig()


def test_positions_are_centred_on_the_array_midpoint():
    x = element_positions(CFG)
    assert x.sum().abs() < 1e-12
    assert torch.allclose(x[1:] - x[:-1], torch.full((CFG.n_elements - 1,), CFG.spacing, dtype=x.dtype))


def test_distance_helpers_follow_their_definitions():
    d = 15 * 0.5
    assert CFG.aperture == pytest.approx(d)
    assert CFG.fresnel_distance == pytest.approx(0.62 * math.sqrt(d**3))
    assert CFG.fraunhofer_distance == pytest.approx(2 * d**2)


def test_exact_steering_matches_the_closed_form():
    theta, r = math.radians(23.0), 17.5
    a = steering(torch.tensor([theta], dtype=torch.float64), torch.tensor([r], dtype=torch.float64), CFG)[:, 0]
    for n, xn in enumerate(element_positions(CFG).tolist()):
        rn = math.sqrt(r**2 + xn**2 - 2 * r * xn * math.sin(theta))
        expected = complex(math.cos(-2 * math.pi * (rn - r)), math.sin(-2 * math.pi * (rn - r)))
        assert abs(a[n].item() - expected) < 1e-12


def far_field_steering(theta: torch.Tensor, cfg: ArrayConfig) -> torch.Tensor:
    """The plane-wave limit exp(+j·2π·x_n·sin θ/λ), (N, K) complex."""
    x = element_positions(cfg, dtype=theta.dtype)[:, None]
    phase = 2 * math.pi / cfg.wavelength * x * torch.sin(theta[None, :])
    return torch.polar(torch.ones_like(phase), phase)


def test_steering_tends_to_far_field_as_range_grows():
    theta = torch.tensor([math.radians(-35.0), 0.1], dtype=torch.float64)
    ff = far_field_steering(theta, CFG)
    errs = [(steering(theta, torch.full_like(theta, r), CFG) - ff).abs().max().item() for r in (1e2, 1e4, 1e6)]
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] < 1e-4


def test_float32_steering_stays_accurate_at_large_range():
    theta, r = torch.tensor([0.3]), torch.tensor([1e5])
    a32 = steering(theta, r, CFG)
    a64 = steering(theta.double(), r.double(), CFG)
    assert a32.dtype == torch.complex64
    assert (a32.to(torch.complex128) - a64).abs().max() < 1e-4


def test_fresnel_is_an_explicit_option_that_approximates_the_exact_wavefront():
    theta = torch.tensor([0.4], dtype=torch.float64)
    r = torch.tensor([4 * CFG.fresnel_distance], dtype=torch.float64)
    exact = steering(theta, r, CFG)
    fresnel = steering(theta, r, CFG, wavefront="fresnel")
    assert not torch.allclose(exact, fresnel)
    assert (exact - fresnel).abs().max() < 0.2
    assert torch.equal(steering(theta, r, ArrayConfig(wavefront="fresnel")), fresnel)


@pytest.mark.parametrize("wavefront", ["exact", "fresnel"])
def test_derivatives_match_finite_differences(wavefront):
    theta = torch.tensor([[-0.7, 0.2, 0.9]], dtype=torch.float64)
    r = torch.tensor([[14.0, 30.0, 90.0]], dtype=torch.float64)
    a, da_dtheta, da_dr = steering_with_derivatives(theta, r, CFG, wavefront)
    h = 1e-6
    fd_theta = (steering(theta + h, r, CFG, wavefront) - steering(theta - h, r, CFG, wavefront)) / (2 * h)
    fd_r = (steering(theta, r + h, CFG, wavefront) - steering(theta, r - h, CFG, wavefront)) / (2 * h)
    assert torch.allclose(a, steering(theta, r, CFG, wavefront))
    assert torch.allclose(da_dtheta, fd_theta, atol=1e-6)
    assert torch.allclose(da_dr, fd_r, atol=1e-8)


def test_steering_is_batched_over_scenes_and_sources():
    theta = torch.rand(5, 3)
    r = 20 + torch.rand(5, 3)
    A = steering(theta, r, CFG)
    assert A.shape == (5, CFG.n_elements, 3)
    assert torch.allclose(A[2, :, 1], steering(theta[2, 1:2], r[2, 1:2], CFG)[:, 0])


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(n_elements=1), "n_elements"),
        (dict(wavelength=0.0), "wavelength"),
        (dict(spacing=-1.0), "spacing"),
        (dict(wavefront="parabolic"), "wavefront"),
    ],
)
def test_bad_array_config_names_the_value(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        ArrayConfig(**kwargs)
