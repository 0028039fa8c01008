"""How fast is the floor? Scenes/s of the generator and the pipeline's time per batch of 256: whole (measuring
the snapshots: R_samp and the eigenvalues of C(R_samp), the model's input), and on scenes already measured, as a
training step on a fixed set runs it (core.train caches the measurement). Then R_samp's least squares on the
`hybrid` array (N = 32, M = 16, L = 8): core.covariance's M×M solve against the N×N Gram of the formula as written,
their times and their float32 error against the float64 formula, per α.

    python benchmarks/pipeline.py [--threads 2] [--scenes 16384] [--device cpu]

Prints figures only; absolute times are noisy on shared machines, so compare runs side by side.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from core.array import ArrayConfig
from core.covariance import (
    PipelineConfig,
    blended_covariance,
    hermitize,
    measure,
    pipeline_on,
    sample_covariance,
    trace_to_n,
)
from core.scenario import MeasurementConfig, ScenarioConfig, generate


def _timed(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times


def timings(cfg: ScenarioConfig, scenes: int, device: str, repeats: int) -> tuple[float, float, float, float]:
    """(generator scenes/s, pipeline forward ms, forward+backward ms, forward ms on measured scenes) at batch 256."""
    generate(cfg, 256, seed=0, device=device)  # warm-up
    gen_s = statistics.median(_timed(lambda: generate(cfg, scenes, seed=1, device=device), repeats))
    b = generate(cfg, 256, seed=2, device=device)
    n, k = cfg.n, cfg.scene.k_max
    A1 = torch.randn(256, n, k, dtype=torch.complex64, device=device, requires_grad=True)
    A2 = torch.randn(256, n, k, dtype=torch.complex64, device=device, requires_grad=True)
    pipe = PipelineConfig()

    def forward():
        with torch.no_grad():
            blended_covariance((A1, A2), b.Y, b.H, pipe)

    def forward_backward():
        blended_covariance((A1, A2), b.Y, b.H, pipe).R_blend.real.square().sum().backward()

    fwd = statistics.median(_timed(forward, 20 * repeats))
    fb = statistics.median(_timed(forward_backward, 20 * repeats))
    x = measure(b.Y, b.H, pipe.tikhonov_alpha)

    def on_measured():
        with torch.no_grad():
            pipeline_on(lambda _: (A1, A2), x, pipe)

    step = statistics.median(_timed(on_measured, 20 * repeats))
    return scenes / gen_s, fwd * 1e3, fb * 1e3, step * 1e3


def gram_nxn(Y: torch.Tensor, H: torch.Tensor, alpha: float) -> torch.Tensor:
    """R_samp with X_ls = (Hᴴ H + α I_N)⁻¹ Hᴴ Y solved as written: the N×N system core.covariance avoids."""
    X = torch.linalg.solve(H.mH @ H + alpha * torch.eye(H.shape[-1], dtype=H.dtype, device=H.device), H.mH @ Y)
    return trace_to_n(hermitize(X @ X.mH / Y.shape[-1]))


def least_squares_rows(scenes: int, device: str, repeats: int) -> None:
    """Per α: ms per `scenes` hybrid scenes and the relative float32 error of each form against float64."""
    cfg = ScenarioConfig(
        array=ArrayConfig(n_elements=32), measurement=MeasurementConfig(combiner="random_phase", n_rf=16, snapshots=8)
    )
    b = generate(cfg, scenes, seed=11, device=device)
    Y64, H64 = b.Y.to(torch.complex128), b.H.to(torch.complex128)
    print(f"\nR_samp's least squares, hybrid N=32 M=16 L=8, {scenes} scenes: ms and max relative error in float32")
    print(f"{'alpha':>8}{'M×M ms':>10}{'N×N ms':>10}{'M×M error':>12}{'N×N error':>12}")
    for alpha in (1e-2, 1e-3, 1e-4, 1e-5, 1e-6):
        exact = sample_covariance(Y64, H64, alpha)
        row = []
        for form in (sample_covariance, gram_nxn):
            row.append(1e3 * statistics.median(_timed(lambda f=form, a=alpha: f(b.Y, b.H, a), repeats)))
        for form in (sample_covariance, gram_nxn):
            err = torch.linalg.matrix_norm(form(b.Y, b.H, alpha).to(exact.dtype) - exact)
            row.append((err / torch.linalg.matrix_norm(exact)).max().item())
        print(f"{alpha:>8.0e}{row[0]:>10.2f}{row[1]:>10.2f}{row[2]:>12.1e}{row[3]:>12.1e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    ap.add_argument("--scenes", type=int, default=16384, help="scenes per generator call (default 16384)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    ap.add_argument("--repeats", type=int, default=5, help="timed repetitions, median reported (default 5)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"device={args.device} threads={torch.get_num_threads()} torch={torch.__version__}")
    columns = ("generator scenes/s", "pipeline ms / 256", "fwd+bwd ms / 256")
    print(f"{'scenario':<28}" + "".join(f"{c:>20}" for c in columns) + f"{'measured ms':>14}")
    for label, meas in [
        ("identity, L=16", MeasurementConfig()),
        ("identity, L=4", MeasurementConfig(snapshots=4)),
        ("random_phase M=8, L=16", MeasurementConfig(combiner="random_phase", n_rf=8)),
    ]:
        rate, fwd, fb, step = timings(ScenarioConfig(measurement=meas), args.scenes, args.device, args.repeats)
        print(f"{label:<28}{rate:>20,.0f}{fwd:>20.3f}{fb:>20.3f}{step:>14.3f}")
    least_squares_rows(500, args.device, 20 * args.repeats)


if __name__ == "__main__":
    main()
