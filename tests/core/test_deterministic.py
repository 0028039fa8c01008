"""core.reproducibility: deterministic() switches torch to deterministic algorithms, warning where none exists,
without importing TorchInductor (1.3 s of CPU per process, for a flag only torch.compile reads)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import sys
from core.reproducibility import deterministic
s = deterministic()
print(s["deterministic_algorithms"], s["warn_only"], "torch._inductor" in sys.modules)
"""


def test_deterministic_sets_torchs_flag_in_a_fresh_process_without_importing_inductor():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "False"]
