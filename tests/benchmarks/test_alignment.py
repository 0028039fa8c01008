"""benchmarks/alignment.py: its options are explained, bad input is one line, and a tiny hybrid run prints the
classic measurement-domain baseline, the labelled R_samp diagnostic, the CRB and the adaptive β per SNR bucket."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "alignment.py"
TINY = ["--steps", "2", "--n-train", "64", "--n-val", "48", "--width", "32", "--depth", "1", "--batch", "32"]
TINY += ["--threads", "1"]  # pytest-xdist keeps every core busy already
HYBRID = ["--combiner", "random_phase", "--n-elements", "12", "--n-rf", "8", "--k-max", "2", "--snapshots", "8"]


def _script(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600, env=env, cwd=ROOT
    )


def _module():
    spec = importlib.util.spec_from_file_location("alignment_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve the module's annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_every_option_has_a_help_text():
    parser = _module().parser()
    missing = [a.option_strings for a in parser._actions if not (a.help and a.help.strip())]
    assert missing == []


def test_a_bad_beta_min_is_one_line_naming_it():
    done = _script("--beta-min", "1.5", "--snapshots", "16", "--beta", "0.6", *TINY)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "beta_min" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_a_tiny_hybrid_adaptive_run_prints_the_baseline_and_beta_per_bucket():
    done = _script(
        *TINY, *HYBRID, "--beta", "0.6", "--blend", "adaptive", "--subspace-scale", "log", "--variants", "blend"
    )
    assert done.returncode == 0, done.stderr
    tables = done.stdout.split("## ")
    localisation = next(t for t in tables if t.startswith("MUSIC localisation"))
    for label in ("classic MUSIC on W(YYᴴ/L)W (baseline)", "diagnostic: MUSIC on T R_samp Tᴴ", "CRB", "R_blend ("):
        assert label in localisation
    beta = next(t for t in tables if t.startswith("Adaptive blend"))
    rows = [line for line in beta.splitlines() if line.startswith("| 8 |")]
    assert len(rows) == 2  # the trained model and the oracle
    values = [float(v) for row in rows for v in row.strip("| ").split(" | ")[2:]]
    assert all(0.05 <= v <= 1.0 for v in values)
    assert "M=8 combiner=random_phase" in done.stdout
