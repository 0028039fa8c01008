"""benchmarks/gpu.py --smoke: the GPU benchmark runs end to end at tiny sizes (on the CPU without a GPU)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_smoke_run_prints_every_figure(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--smoke"],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    numbered = [line.split(".")[0] for line in done.stdout.splitlines() if line[:1].isdigit()]
    assert sorted(set(numbered)) == ["1", "2", "3", "4", "5"]
