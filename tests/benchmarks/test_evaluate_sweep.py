"""benchmarks/evaluate_sweep.py: it times hpo evaluate's sweep on a spec and reports the K̂ accuracy it measured."""

from __future__ import annotations

import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_sweep_is_timed_and_its_k_hat_accuracy_reported(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # as `python benchmarks/evaluate_sweep.py` runs it
    bench = importlib.import_module("evaluate_sweep")
    seconds, accuracy = bench.evaluation_seconds("quick", scenes=4)
    assert seconds > 0
    assert len(accuracy) == 7 and all(0.0 <= a <= 1.0 for a in accuracy)
