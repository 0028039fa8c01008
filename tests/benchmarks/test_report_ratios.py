"""benchmarks/report_ratios.py: ratios over several `hpo evaluate` reports, seed by seed and pooled."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # as `python benchmarks/report_ratios.py` runs it
    return importlib.import_module("report_ratios")


def report(learned: tuple[float, float], classic: tuple[float, float]) -> dict:
    """A one-point report: (range RMSE, gross-error rate) of the learned pipeline and of classic MUSIC."""

    def method(rmse: float, gross: float) -> dict:
        return {"range_rmse_m": rmse, "gross_rate": gross, "angle_rmse_clipped_deg": rmse, "angle_rmse_deg": rmse}

    return {"rows": [{"snr_db": 0.0, "methods": {"learned": method(*learned), "classic": method(*classic)},
                      "mean_beta": 0.5}]}  # fmt: skip


def test_pooled_ratios_weigh_the_squares_of_each_seed_not_its_ratio(bench):
    # seed ratios 1.0 and 0.5: their range is 0.500-1.000; over the scenes pooled, the seed with the larger errors
    # decides: sqrt((1 + 4) / 2) / sqrt((1 + 16) / 2) = 0.542; the gross-error rates pool as means: 0.1 / 0.3
    reports = [report((1.0, 0.1), (1.0, 0.2)), report((2.0, 0.1), (4.0, 0.4))]
    cells = dict(bench.tables(reports, pooled=True))
    assert cells["range ÷ classic MUSIC"] == [f"0.500–1.000 [{math.sqrt(5 / 17):.3f}]"]
    assert cells["gross errors ÷ classic MUSIC"] == ["0.250–0.500 [0.333]"]
    assert dict(bench.tables(reports))["range ÷ classic MUSIC"] == ["0.500–1.000"]
