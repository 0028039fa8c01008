"""How fast and how accurate is batched near-field MUSIC on the default grid?

    python benchmarks/music.py [--threads 2] [--scenes 1000] [--device cpu] [--loop-scenes 100]

Prints, for the default scenario (N = 16, K ≤ 3, ranges Fresnel..Fraunhofer) and grid (241 θ × 64 1/r):
  - time per 1000 scenes of each stage (eigh + order, spectrum, peaks, refinement) and in total;
  - the speed-up of the batched path over a per-scene loop through the same function;
  - MUSIC on R_true (oracle K): angle and range RMSE with and without refinement, beside the grid steps;
  - MUSIC on R_samp with L = 16 (oracle K) against the stochastic CRB, per SNR.
SNR = p_k/σ² per element and per source. Figures only: times are noisy on shared machines.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from core.covariance import PipelineConfig, sample_covariance
from core.crb import scene_crb
from core.evaluation import score
from core.music import GridConfig, build_grid, eigengap_order, find_peaks, music, refine, spectrum
from core.peak_repair import repair
from core.scenario import ScenarioConfig, generate


def _median_time(fn, repeats, device) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _stages(R, grid, k_max, repeats, device) -> dict[str, float]:
    """Median seconds of each stage of `music` on the batch R, timed one at a time."""
    out = {}

    def eig():
        lam, U = torch.linalg.eigh(R.to(torch.complex128))
        return lam.flip(-1), U.flip(-1)

    out["eigh + order"] = _median_time(lambda: eigengap_order(eig()[0], k_max), repeats, device)
    lam, U = eig()
    k = eigengap_order(lam, k_max)
    slots = torch.arange(k_max, device=device)[None, :] < k[:, None]  # (B, K_max): slots below the order
    U_s = U[..., :k_max] * slots[:, None, :]
    out["spectrum"] = _median_time(lambda: spectrum(U_s, grid), repeats, device)
    s = spectrum(U_s, grid)
    out["peaks"] = _median_time(lambda: find_peaks(s, grid.block, grid.reach, k_max), repeats, device)
    it, iu, found = find_peaks(s, grid.block, grid.reach, k_max)
    th, u = grid.theta[it], grid.inv_r[iu]
    out["refinement"] = _median_time(lambda: refine(U_s, th, u, grid, grid.refine_steps), repeats, device)
    th, u = refine(U_s, th, u, grid, grid.refine_steps)
    out["peak repair"] = _median_time(lambda: repair(U_s, th, u, slots & found, grid), repeats, device)
    out["music() end to end"] = _median_time(lambda: music(R, grid, k_max), repeats, device)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    ap.add_argument("--scenes", type=int, default=1000, help="scenes per batch (default 1000)")
    ap.add_argument("--loop-scenes", type=int, default=100, help="scenes timed in the per-scene loop (default 100)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    ap.add_argument("--repeats", type=int, default=5, help="timed repetitions, median reported (default 5)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cfg = ScenarioConfig()
    k_max, n = cfg.scene.k_max, args.scenes
    grid = build_grid(cfg, device=device)
    print(f"device={device} threads={torch.get_num_threads()} torch={torch.__version__} scenes={n}")
    print(f"grid {grid.shape[0]} θ × {grid.shape[1]} 1/r, NMS block {grid.block} cells, reach {grid.reach} blocks")

    batch = generate(cfg, n, seed=11, device=device)
    R = sample_covariance(batch.Y, batch.H, PipelineConfig().tikhonov_alpha)
    per_1000 = 1000 / n
    print("\n-- time per 1000 scenes (R_samp, eigengap order), median of", args.repeats)
    stages = _stages(R, grid, k_max, args.repeats, device)
    for name, t in stages.items():
        print(f"  {name:<20s} {t * per_1000 * 1e3:9.1f} ms")
    m = min(args.loop_scenes, n)
    loop = _median_time(lambda: [music(R[i : i + 1], grid, k_max) for i in range(m)], 1, device) * 1000 / m
    whole = stages["music() end to end"] * per_1000
    print(
        f"  per-scene loop      {loop * 1e3:9.1f} ms   (measured on {m} scenes; batched speed-up {loop / whole:.1f}x)"
    )

    print("\n-- MUSIC on R_true, oracle K (float64 scenes)")
    exact = generate(cfg, n, seed=12, device=device, dtype=torch.float64)
    step_deg = math.degrees((grid.theta[1] - grid.theta[0]).item())
    step_u = (grid.inv_r[1] - grid.inv_r[0]).item()
    r_lo, r_hi = cfg.range_m
    print(f"  grid steps: θ {step_deg:.3f}°, 1/r {step_u:.2e} 1/m = {step_u * r_lo**2:.2f} m at r={r_lo:.1f} m, "
          f"{step_u * r_hi**2:.1f} m at r={r_hi:.1f} m")  # fmt: skip
    for steps in (0, grid.refine_steps):
        g = build_grid(cfg, GridConfig(refine_steps=steps), device=device)
        est = music(exact.R_true, g, k_max, k=exact.K)
        s = score(est.theta, est.r, est.mask, exact.theta, exact.r, exact.mask)
        print(f"  refine_steps={steps}: angle RMSE {s.angle_rmse_deg:.3g}°, range RMSE {s.range_rmse_m:.3g} m")
    k_acc = {
        rule: (music(exact.R_true, grid, k_max, order=rule, snapshots=cfg.measurement.snapshots).k_hat == exact.K)
        .float()
        .mean()
        .item()
        for rule in ("eigengap", "mdl")
    }
    print(f"  K accuracy on R_true: eigengap {k_acc['eigengap']:.3f}, MDL(L=16) {k_acc['mdl']:.3f}")

    print("\n-- MUSIC on R_samp (L = 16, oracle K) vs the stochastic CRB; SNR = p_k/σ² per element and source")
    print("  (gross = angle error > 1°, a threshold-region failure on an unresolved pair; 'w/o gross' drops them)")
    print(
        f"  {'SNR dB':>6s} {'angle RMSE °':>13s} {'CRB °':>9s} {'ratio':>6s} {'gross':>6s} {'w/o gross °':>12s}"
        f" {'ratio':>6s} {'range RMSE m':>13s} {'CRB m':>8s}"
    )
    for snr in (0, 5, 10, 15, 20, 30):
        b = generate(cfg, n, seed=13, device=device, snr_db=snr)
        est = music(sample_covariance(b.Y, b.H, PipelineConfig().tikhonov_alpha), grid, k_max, k=b.K)
        s, c = score(est.theta, est.r, est.mask, b.theta, b.r, b.mask), scene_crb(b, cfg.array)
        fine = abs(s.angle_err_deg) <= 1.0
        trimmed = math.sqrt((s.angle_err_deg[fine] ** 2).mean())
        print(
            f"  {snr:6d} {s.angle_rmse_deg:13.4f} {c.angle_rmse_deg:9.4f} {s.angle_rmse_deg / c.angle_rmse_deg:6.2f}"
            f" {int((~fine).sum()):6d} {trimmed:12.4f} {trimmed / c.angle_rmse_deg:6.2f}"
            f" {s.range_rmse_m:13.2f} {c.range_rmse_m:8.2f}"
        )


if __name__ == "__main__":
    main()
