"""Fixed against adaptive blend: validation NMSE, the learned β per SNR bucket, and MUSIC angle RMSE (true K).

    python benchmarks/adaptive_blend.py [--arch mlp] [--steps 300] [--beta 0.6] [--beta-min 0.05] [--threads 2]
    python benchmarks/adaptive_blend.py --hybrid     # random_phase, N=24, M=12, L=8, K_max=4: finite steps?

Trains the same model, seed and data twice on the default scenario (SNR = p_k/σ² per element and per source,
in dB): once with blend="fixed" at β, once with blend="adaptive" (β_min, starting at β). Prints figures only.
The angle RMSE is MUSIC with the true K on R_blend (H = I only; for the hybrid run it is left out), without
the peak repair: on a trained adaptive R_blend the repair's Gram solve raised "input matrix is singular"
(core/peak_repair.py, _gram_solve), and both runs use the same MUSIC so the comparison stays fair.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from core.covariance import pipeline
from core.evaluation import score
from core.experiment import ExperimentConfig
from core.grid import GridConfig, build_grid
from core.losses import nmse
from core.music import music
from core.scenario import generate
from core.train import save_checkpoint, train

BUCKETS_DB = (-10.0, -5.0, 0.0, 5.0, 10.0, 15.0, 20.0)  # lower edges; the last bucket is [15, 20]
HYBRID = {
    "array": {"n_elements": 24},
    "measurement": {"combiner": "random_phase", "n_rf": 12, "snapshots": 8},
    "scene": {"k_max": 4},
}


def _config(args, blend: str) -> ExperimentConfig:
    batch = 256
    return ExperimentConfig.from_dict(
        {
            "scenario": HYBRID if args.hybrid else {},
            "pipeline": {"blend": blend, "beta": args.beta, "beta_min": args.beta_min},
            "model": {"arch": args.arch},
            "train": {
                "epochs": args.epochs,
                "n_train": batch * math.ceil(args.steps / args.epochs),
                "n_val": args.n_val,
                "batch_size": batch,
                "threads": args.threads,
                "device": "cpu",
                "lr": args.lr,
            },
        }
    )


def _report(cfg: ExperimentConfig, model, val, grid) -> dict[str, list[float]]:
    with torch.no_grad():
        covs = [pipeline(model, val.Y[i : i + 256], val.H[i : i + 256], cfg.pipeline) for i in range(0, len(val), 256)]
    R_blend, R_samp = torch.cat([c.R_blend for c in covs]), torch.cat([c.R_samp for c in covs])
    beta = torch.cat([c.beta for c in covs])
    rows: dict[str, list[float]] = {"nmse_db": [], "nmse_samp_db": [], "beta": [], "rmse_blend": [], "rmse_samp": []}
    for lo, hi in zip(BUCKETS_DB[:-1], BUCKETS_DB[1:], strict=True):
        sel = (val.snr_db >= lo) & ((val.snr_db < hi) if hi < BUCKETS_DB[-1] else (val.snr_db <= hi))
        rows["nmse_db"].append(10 * math.log10(nmse(R_blend[sel], val.R_true[sel]).mean().item()))
        rows["nmse_samp_db"].append(10 * math.log10(nmse(R_samp[sel], val.R_true[sel]).mean().item()))
        rows["beta"].append(beta[sel].mean().item())
        for name, R in (("rmse_blend", R_blend), ("rmse_samp", R_samp)):
            if grid is None:
                rows[name].append(math.nan)
                continue
            est = music(R[sel], grid, cfg.scenario.scene.k_max, k=val.K[sel])
            rows[name].append(
                score(est.theta, est.r, est.mask, val.theta[sel], val.r[sel], val.mask[sel]).angle_rmse_deg
            )
    rows["all"] = [10 * math.log10(nmse(R_blend, val.R_true).mean().item()), beta.mean().item(), beta.std().item()]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="mlp", help="model registry key (default mlp)")
    ap.add_argument("--steps", type=int, default=300, help="optimiser steps of batch 256 (default 300)")
    ap.add_argument("--epochs", type=int, default=3, help="epochs the steps are split into (default 3)")
    ap.add_argument("--lr", type=float, default=1e-3, help="AdamW peak learning rate (default 1e-3)")
    ap.add_argument("--beta", type=float, default=0.6, help="fixed β, and the adaptive β's start (default 0.6)")
    ap.add_argument("--beta-min", type=float, default=0.05, help="adaptive β floor (default 0.05)")
    ap.add_argument("--n-val", type=int, default=1536, help="validation scenes (default 1536)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    ap.add_argument("--save-dir", default=None, help="write each trained model there as BLEND.pt (default: no)")
    ap.add_argument(
        "--hybrid", action="store_true", help="the hybrid scenario (random_phase, N=24, M=12, L=8, K_max=4)"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for blend in ("fixed", "adaptive"):
        cfg = _config(args, blend)
        t0 = time.perf_counter()
        result = train(cfg, skip_nonfinite=True)
        seconds = time.perf_counter() - t0
        if args.save_dir:
            save_checkpoint(f"{args.save_dir}/{blend}.pt", result, cfg)
        val = generate(cfg.scenario, args.n_val, cfg.train.val_seed)
        grid = None if args.hybrid else build_grid(cfg.scenario, GridConfig(repair=False))
        rows = _report(cfg, result.model, val, grid)
        nonfinite = int(result.final["nonfinite_steps"])
        print(
            f"\n{blend}: β={args.beta}{f', β_min={args.beta_min}' if blend == 'adaptive' else ''}, {args.arch}, "
            f"{args.steps} steps, {seconds:.0f} s; val NMSE {rows['all'][0]:.2f} dB, β mean {rows['all'][1]:.3f} "
            f"± {rows['all'][2]:.3f}, non-finite steps {nonfinite}"
        )
        print(f"{'SNR bucket, dB':>16} {'NMSE dB':>8} {'R_samp dB':>9} {'mean β':>7} {'θ RMSE°':>8} {'R_samp θ°':>9}")
        for i, lo in enumerate(BUCKETS_DB[:-1]):
            print(
                f"{f'[{lo:g}, {BUCKETS_DB[i + 1]:g})':>16} {rows['nmse_db'][i]:8.2f} {rows['nmse_samp_db'][i]:9.2f} "
                f"{rows['beta'][i]:7.3f} {rows['rmse_blend'][i]:8.3f} {rows['rmse_samp'][i]:9.3f}"
            )


if __name__ == "__main__":
    main()
