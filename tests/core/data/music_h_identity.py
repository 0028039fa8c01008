"""Writes music_h_identity.json: MUSIC's outputs (H = I) for fixed scenes, as the code of commit 4a973b7 gave them.

Run at that commit, from a checkout of it:  PYTHONPATH=. python tests/core/data/music_h_identity.py OUT.json
tests/core/test_music.py compares today's H = I path with the committed file exactly (floats round-trip
through JSON exactly). Re-run it only when a change of the H = I results is intended, and say so.
"""

import json
import sys

from core.covariance import sample_covariance
from core.grid import build_grid
from core.music import music
from core.scenario import ScenarioConfig, generate

SEED, SCENES, SNRS_DB = 2024, 48, (0.0, 10.0)  # 0 dB: many threshold-region scenes, peak repairs, grid edges


def main(path: str) -> None:
    cfg = ScenarioConfig()
    grid = build_grid(cfg)
    out = {"seed": SEED, "scenes": SCENES, "tikhonov_alpha": 1e-2, "cases": []}
    for snr in SNRS_DB:
        b = generate(cfg, SCENES, seed=SEED, snr_db=snr)
        R = sample_covariance(b.Y, b.H, 1e-2)
        for rule, kw in (("eigengap", {}), ("mdl", {"order": "mdl", "snapshots": 16}), ("true_k", {"k": b.K})):
            e = music(R, grid, cfg.scene.k_max, **kw)
            fields = {"theta": e.theta, "r": e.r, "mask": e.mask, "k_hat": e.k_hat}
            out["cases"].append({"snr_db": snr, "rule": rule, **{k: v.tolist() for k, v in fields.items()}})
    with open(path, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main(sys.argv[1])
