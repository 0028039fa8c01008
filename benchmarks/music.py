"""How fast and how accurate is batched near-field MUSIC, on a digital (H = I) and on hybrid arrays?

    python benchmarks/music.py [--threads 2] [--scenes 1000] [--eval-scenes 500] [--device cpu]
                               [--loop-scenes 100] [--cases identity,hybrid24,hybrid32]

Cases: identity = the default scenario (N = 16, L = 16, K ≤ 3, H = I); hybrid24 = N = 24 behind M = 12
random-phase RF chains, L = 8, K ≤ 4; hybrid32 = N = 32, M = 16, L = 8, K ≤ 3. Ranges Fresnel..Fraunhofer,
grid 241 θ × 64 1/r. Every MUSIC runs in the whitened measurement domain (core.measurement; for H = I that
is MUSIC on the covariance itself). Prints, per case:
  - time per 1000 scenes of each stage (eigh + order, spectrum, peaks, refinement, repair) and in total;
  - the speed-up of the batched path over a per-scene loop through the same function;
  - MUSIC on R_true (true K): angle and range RMSE with and without refinement, beside the grid steps;
  - per SNR: classic MUSIC (on W·YYᴴ/L·W, the baseline) against the stochastic CRB, MUSIC on the N×N
    R_samp beside it (a diagnostic: for M < N the back-projection only sees H's row space), and the
    K accuracy of the eigengap and MDL rules on the classic covariance.
With --spread: how far classic MUSIC's RMSE over the CRB's moves between independent scene draws of
48 and 200 scenes per SNR point (the study figure's sample size, hpo/results/plots.py), identity case.
SNR = p_k/σ² per element and per source. Figures only: times are noisy on shared machines.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from core.array import ArrayConfig
from core.covariance import PipelineConfig, sample_covariance
from core.crb import scene_crb
from core.evaluation import score
from core.grid import GridConfig, build_grid
from core.measurement import classic_covariance, operator, to_measurement
from core.music import eigengap_order, find_peaks, music, refine, spectrum, steering_norms
from core.peak_repair import repair
from core.scenario import MeasurementConfig, ScenarioConfig, SceneConfig, generate


def _hybrid(n: int, m: int, k_max: int) -> ScenarioConfig:
    return ScenarioConfig(
        array=ArrayConfig(n_elements=n),
        measurement=MeasurementConfig(snapshots=8, combiner="random_phase", n_rf=m),
        scene=SceneConfig(k_max=k_max),
    )


CASES = {
    "identity": ScenarioConfig(),
    "hybrid24": _hybrid(24, 12, 4),
    "hybrid32": _hybrid(32, 16, 3),
}
SNRS_DB = (0, 5, 10, 15, 20)
GROSS_DEG = 1.0  # an angle error above this is a threshold-region failure (an unresolved or missed source)


def _median_time(fn, repeats, device) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _stages(C, T, grid, k_max, repeats, device) -> dict[str, float]:
    """Median seconds of each stage of `music` on the batch C (measurement domain, operator T), one at a time."""
    out = {}

    def eig():
        lam, U = torch.linalg.eigh(C.to(torch.complex128))
        return lam.flip(-1), U.flip(-1)

    T128 = None if T is None else T.to(torch.complex128)
    out["eigh + order"] = _median_time(lambda: eigengap_order(eig()[0], k_max), repeats, device)
    lam, U = eig()
    k = eigengap_order(lam, k_max)
    slots = torch.arange(k_max, device=device)[None, :] < k[:, None]  # (B, K_max): slots below the order
    U_s = U[..., :k_max] * slots[:, None, :]
    norms = None
    if T128 is not None:
        out["‖T a‖² on the grid"] = _median_time(lambda: steering_norms(T128, grid), repeats, device)
        norms = steering_norms(T128, grid)
    out["spectrum"] = _median_time(lambda: spectrum(U_s, grid, T128, norms), repeats, device)
    s = spectrum(U_s, grid, T128, norms)
    out["peaks"] = _median_time(lambda: find_peaks(s, grid.block, grid.reach, k_max), repeats, device)
    it, iu, found = find_peaks(s, grid.block, grid.reach, k_max)
    th, u = grid.theta[it], grid.inv_r[iu]
    out["refinement"] = _median_time(lambda: refine(U_s, th, u, grid, grid.refine_steps, T128), repeats, device)
    th, u = refine(U_s, th, u, grid, grid.refine_steps, T128)
    out["peak repair"] = _median_time(lambda: repair(U_s, th, u, slots & found, grid, T128, norms), repeats, device)
    out["music() end to end"] = _median_time(lambda: music(C, grid, k_max, T=T), repeats, device)
    return out


def _timing(cfg: ScenarioConfig, grid, args, device) -> None:
    k_max, n = cfg.scene.k_max, args.scenes
    batch = generate(cfg, n, seed=11, device=device)
    T = operator(batch.H)
    C = classic_covariance(batch.Y, batch.H)
    per_1000 = 1000 / n
    print(f"\n-- time per 1000 scenes (classic covariance, eigengap order), median of {args.repeats}")
    stages = _stages(C, T, grid, k_max, args.repeats, device)
    for name, t in stages.items():
        print(f"  {name:<20s} {t * per_1000 * 1e3:9.1f} ms")
    m = min(args.loop_scenes, n)

    def loop():
        return [music(C[i : i + 1], grid, k_max, T=None if T is None else T[i : i + 1]) for i in range(m)]

    per_scene = _median_time(loop, 1, device) * 1000 / m
    whole = stages["music() end to end"] * per_1000
    print(f"  per-scene loop       {per_scene * 1e3:9.1f} ms   (measured on {m} scenes; "
          f"batched speed-up {per_scene / whole:.1f}x)")  # fmt: skip


def _oracle(cfg: ScenarioConfig, grid, n: int, device) -> None:
    k_max = cfg.scene.k_max
    print("\n-- MUSIC on R_true through the same path, true K (float64 scenes)")
    exact = generate(cfg, n, seed=12, device=device, dtype=torch.float64)
    T = operator(exact.H)
    C = to_measurement(exact.R_true, T)
    step_deg = math.degrees((grid.theta[1] - grid.theta[0]).item())
    step_u = (grid.inv_r[1] - grid.inv_r[0]).item()
    r_lo, r_hi = cfg.range_m
    print(f"  grid steps: θ {step_deg:.3f}°, 1/r {step_u:.2e} 1/m = {step_u * r_lo**2:.2f} m at r={r_lo:.1f} m, "
          f"{step_u * r_hi**2:.1f} m at r={r_hi:.1f} m")  # fmt: skip
    for steps in (0, grid.refine_steps):
        g = build_grid(cfg, GridConfig(refine_steps=steps), device=device)
        est = music(C, g, k_max, k=exact.K, T=T)
        s = score(est.theta, est.r, est.mask, exact.theta, exact.r, exact.mask)
        print(f"  refine_steps={steps}: angle RMSE {s.angle_rmse_deg:.3g}°, range RMSE {s.range_rmse_m:.3g} m")


def _accuracy(cfg: ScenarioConfig, grid, n: int, device) -> None:
    k_max, snaps = cfg.scene.k_max, cfg.measurement.snapshots
    print(f"\n-- per SNR, true K, {n} scenes (the same scenes at every SNR); SNR = p_k/σ² per element and source")
    print(f"  classic = MUSIC on W·YYᴴ/L·W (the baseline); R_samp = MUSIC on the N×N Tikhonov R_samp (diagnostic);"
          f" gross = share of sources off by > {GROSS_DEG:g}°")  # fmt: skip
    print(f"  {'SNR dB':>6s} | {'classic °':>9s} {'CRB °':>8s} {'ratio':>5s} {'gross':>6s} | {'classic m':>9s}"
          f" {'CRB m':>7s} {'ratio':>5s} | {'R_samp °':>8s} {'gross':>6s} {'R_samp m':>8s} |"
          f" {'K acc eigengap':>14s} {'MDL':>5s}")  # fmt: skip
    alpha = PipelineConfig().tikhonov_alpha
    for snr in SNRS_DB:
        b = generate(cfg, n, seed=13, device=device, snr_db=float(snr))
        T, C = operator(b.H), classic_covariance(b.Y, b.H)
        classic = music(C, grid, k_max, k=b.K, T=T)
        samp = music(sample_covariance(b.Y, b.H, alpha), grid, k_max, k=b.K)  # N×N, no T: the old path
        sc, ss = (score(e.theta, e.r, e.mask, b.theta, b.r, b.mask) for e in (classic, samp))
        crb = scene_crb(b, cfg.array)
        k_eig = (music(C, grid, k_max, T=T).k_hat == b.K).float().mean().item()
        k_mdl = (music(C, grid, k_max, T=T, order="mdl", snapshots=snaps).k_hat == b.K).float().mean().item()
        gross = [f"{(abs(s.angle_err_deg) > GROSS_DEG).mean():6.1%}" for s in (sc, ss)]
        print(
            f"  {snr:6d} | {sc.angle_rmse_deg:9.4f} {crb.angle_rmse_deg:8.4f}"
            f" {sc.angle_rmse_deg / crb.angle_rmse_deg:5.2f} {gross[0]} | {sc.range_rmse_m:9.2f}"
            f" {crb.range_rmse_m:7.2f} {sc.range_rmse_m / crb.range_rmse_m:5.2f} |"
            f" {ss.angle_rmse_deg:8.3f} {gross[1]} {ss.range_rmse_m:8.2f} | {k_eig:14.3f} {k_mdl:5.3f}"
        )


def _spread(cfg: ScenarioConfig, grid, device, draws: int = 6) -> None:
    k_max = cfg.scene.k_max
    print(f"\n-- classic RMSE / CRB across {draws} independent scene draws (min..max), true K")
    for n in (48, 200):
        ratios = {snr: ([], []) for snr in SNRS_DB}
        for d in range(draws):
            for snr in SNRS_DB:
                b = generate(cfg, n, seed=7_000_001 + 1000 * d, device=device, snr_db=float(snr))
                est = music(classic_covariance(b.Y, b.H), grid, k_max, k=b.K, T=operator(b.H))
                s, c = score(est.theta, est.r, est.mask, b.theta, b.r, b.mask), scene_crb(b, cfg.array)
                ratios[snr][0].append(s.angle_rmse_deg / c.angle_rmse_deg)
                ratios[snr][1].append(s.range_rmse_m / c.range_rmse_m)
        for snr, (angle, rng) in ratios.items():
            print(f"  {n:4d} scenes, {snr:3d} dB: angle {min(angle):.2f}..{max(angle):.2f}, "
                  f"range {min(rng):.2f}..{max(rng):.2f}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    ap.add_argument("--scenes", type=int, default=1000, help="scenes per timed batch (default 1000)")
    ap.add_argument("--eval-scenes", type=int, default=500, help="scenes per SNR point and for R_true (default 500)")
    ap.add_argument("--loop-scenes", type=int, default=100, help="scenes timed in the per-scene loop (default 100)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    ap.add_argument("--repeats", type=int, default=5, help="timed repetitions, median reported (default 5)")
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {', '.join(CASES)}")
    ap.add_argument("--spread", action="store_true", help="only the RMSE/CRB spread between scene draws")
    args = ap.parse_args()
    cases = args.cases.split(",")
    if unknown := [c for c in cases if c not in CASES]:
        ap.error(f"unknown case(s) {unknown}; choose from {list(CASES)}")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device={device} threads={torch.get_num_threads()} torch={torch.__version__}")
    if args.spread:
        cfg = CASES["identity"]
        _spread(cfg, build_grid(cfg, device=device), device)
        return
    for name in cases:
        cfg = CASES[name]
        grid = build_grid(cfg, device=device)
        print(f"\n==== {name}: N={cfg.n}, M={cfg.m} ({cfg.measurement.combiner}), L={cfg.measurement.snapshots}, "
              f"K_max={cfg.scene.k_max}; grid {grid.shape[0]} θ × {grid.shape[1]} 1/r, "
              f"NMS block {grid.block} cells, reach {grid.reach} blocks")  # fmt: skip
        _timing(cfg, grid, args, device)
        _oracle(cfg, grid, args.eval_scenes, device)
        _accuracy(cfg, grid, args.eval_scenes, device)


if __name__ == "__main__":
    main()
