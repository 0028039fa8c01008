"""The search grid: its extent, its refusals, and the Hermitian-form features the spectra use."""

from __future__ import annotations

import math

import pytest
import torch

from core.errors import ConfigError
from core.grid import GridConfig, build_grid, resolution
from core.linalg import hermitian_coefficients
from core.scenario import ScenarioConfig

SCEN = ScenarioConfig()


def test_a_grid_setting_out_of_range_is_named():
    with pytest.raises(ConfigError, match="n_angles"):
        GridConfig(n_angles=2)


def test_the_grid_spans_the_scenes_angles_plus_the_margin_and_stays_in_front_of_the_array():
    grid = build_grid(SCEN, GridConfig(n_angles=61, n_ranges=8, angle_margin_deg=5.0))
    lo, hi = SCEN.scene.angle_deg
    assert math.degrees(grid.theta[0]) == pytest.approx(lo - 5.0) and math.degrees(grid.theta[-1]) == pytest.approx(
        hi + 5.0
    )
    assert grid.shape == (61, 8) and grid.steering.shape == (SCEN.n, 61 * 8)
    assert (grid.inv_r > 0).all()  # 1/r never reaches 0: no point at r = ∞


def test_hermitian_features_give_every_grid_points_hermitian_form():
    grid = build_grid(SCEN, GridConfig(n_angles=31, n_ranges=4))
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(3, SCEN.n, SCEN.n, dtype=torch.complex128, generator=gen)
    G = X @ X.mH
    a = grid.steering.to(torch.complex128)
    direct = torch.einsum("ng,bnm,mg->bg", a.conj(), G, a).real
    torch.testing.assert_close(
        hermitian_coefficients(G) @ grid.hermitian_features, direct.float(), rtol=1e-5, atol=1e-3
    )


def test_the_angle_resolution_widens_towards_end_fire():
    broadside, _ = resolution(SCEN.array, 0.0)
    assert resolution(SCEN.array, math.radians(60))[0] == pytest.approx(broadside / math.cos(math.radians(60)))
