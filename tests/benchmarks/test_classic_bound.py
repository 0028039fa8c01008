"""benchmarks/classic_bound.py: on a spec's own scenes, classic DML is scored beside classic MUSIC against the CRB,
and each gain target of a spec is printed over the bound."""

from __future__ import annotations

import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_coherent_sources_put_dml_nearer_the_bound_than_music_and_the_targets_are_printed(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # as `python benchmarks/classic_bound.py` runs it
    bench = importlib.import_module("classic_bound")
    rows = bench.measure("coherent", [20.0], scenes=24, seeds=1)
    (row,) = rows[20.0]
    crb = row["crb"]["angle_rmse_deg"]
    assert crb > 0
    # coherent sources leave MUSIC one signal eigenvector; DML needs no rank
    assert row["dml"]["angle_rmse_clipped_deg"] < row["music"]["angle_rmse_clipped_deg"]
    assert row["dml"]["angle_rmse_clipped_deg"] >= 0.5 * crb  # an efficient estimator cannot sit far below it
    assert row["dml_short"] <= 0.1  # the search reaches the likelihood's maximum on (nearly) every scene
    text = bench.format_table(["20"], bench.table("coherent", rows), markdown=True)
    assert "| target 0.5× better classic angle_rmse_clipped_deg ÷ CRB |" in text
    assert "| target 0.7× better classic range_rmse_m ÷ CRB |" in text
    assert "| dml search short of the maximum (share of scenes) |" in text
