"""Writes scenes_before_correlation.pt: scenes as the generator of commit 73aaffd (no correlation setting) drew them.

Run at that commit, from a checkout of it:  PYTHONPATH=. python tests/core/data/scenes_before_correlation.py OUT.pt
tests/core/test_scenario.py compares today's c = 0 scenes with the file: exactly on the machine that wrote it,
to float rounding elsewhere (other CPUs take other vector paths through torch's kernels).
"""

import sys

import torch

from core.scenario import MeasurementConfig, ScenarioConfig, generate

FIELDS = ("Y", "H", "K", "theta", "r", "mask", "power", "noise_var", "snr_db")
CASES = {  # name -> (config, generate's arguments)
    "fully_digital": (ScenarioConfig(), dict(batch=8, seed=3)),
    "hybrid": (
        ScenarioConfig(measurement=MeasurementConfig(combiner="random_phase", n_rf=8, snapshots=5)),
        dict(batch=8, seed=9, snr_db=5.0, dtype=torch.float64),
    ),
}


def main(path: str) -> None:
    out = {}
    for name, (cfg, kwargs) in CASES.items():
        kwargs = dict(kwargs)
        batch = generate(cfg, kwargs.pop("batch"), **kwargs)
        out[name] = {f: getattr(batch, f).clone() for f in FIELDS}
    torch.save(out, path)


if __name__ == "__main__":
    main(sys.argv[1])
