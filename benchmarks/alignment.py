"""The seed's claim, measured against the baseline that counts: what the learned R_blend gives MUSIC, next to
classic MUSIC on the snapshots.

For each L, the variants train with the same seed, model and optimiser-step budget (--steps or --epochs; a
step budget does not depend on the load of a shared machine) on fresh scenes of one scenario (the default one,
or a hybrid array via --combiner random_phase --n-rf M): "blend" (losses on R_blend), "raw" (losses on
R_pred, stable projector backward) and "raw-eigh" (the old recipe: losses on R_pred through plain eigh
autograd). --blend picks the pipeline's β (DESIGN §3): "fixed" uses --beta for every scene, "adaptive" learns
one β per scene in [--beta-min, 1] starting at --beta. Non-finite steps are counted and skipped.

Table 1 (NMSE): validation NMSE (dB, 10·log10 of the mean NMSE) of R_samp, of each variant's R_blend and of an
oracle whose factors (and, for the adaptive blend, β) are fitted per scene to R_true (the pipeline's ceiling),
overall and per SNR bucket (SNR = p_k/σ² per element and source, dB), eigengap health on the measurement
covariance C that MUSIC sees, the non-finite step count.
Table 2 (localisation): near-field MUSIC (core.music) over the same validation scenes, every covariance in the
whitened measurement domain (core.measurement: C = T R Tᴴ, steering T a, T = W H; for H = I, C = R):
    classic     MUSIC on W (Y Yᴴ/L) W: THE baseline, what a practitioner runs on the snapshots
    R_blend     MUSIC on T R_blend Tᴴ of each trained variant, and of the oracle-fitted factors
    R_samp      MUSIC on T R_samp Tᴴ: a diagnostic only (R_samp is the network's input, not a method; for
                H = I it is classic MUSIC up to a scale, so its rows equal classic's)
    CRB         the stochastic CRB's RMSE over the same sources (core.crb), the floor
scored by core.evaluation.score: angle RMSE (degrees) and range RMSE (metres) per SNR bucket, the share of
sources off by more than OUTLIER_DEG, with the true K and with the eigengap K̂ (on C), and the K̂ accuracy.
Table 3 (adaptive blend only): the mean learned β per SNR bucket.
Each variant's rows print as soon as it finishes; --step-time adds the step time at the chosen batch size.

The README's tables (repository root, venv active; the first takes ~25 min on 2 quiet cores, the others one
variant each, so less; do not run them on a busy machine):

    # default scenario (N=16, H=I), L = 16 and 4, fixed β = 0.6 / 0.3, the three loss variants, step time
    python benchmarks/alignment.py --step-time
    # default scenario, the adaptive blend of the `quick`/`default` specs, log subspace scale
    python benchmarks/alignment.py --blend adaptive --beta-min 0.05 --subspace-scale log --lam-peak 0.02 \\
        --variants blend --snapshots 16 --beta 0.6
    # the hybrid spec's scenario (studies/hybrid.toml: N=32, M=16 random-phase RF chains, L=8, K_max=3)
    python benchmarks/alignment.py --combiner random_phase --n-elements 32 --n-rf 16 \\
        --k-max 3 --snapshots 8 --beta 0.6 --blend adaptive --beta-min 0.05 --subspace-scale log --lam-peak 0.02 \\
        --variants blend

A smoke run (seconds): add --steps 10 --n-train 256 --n-val 128 --width 64 --depth 2 --batch 64 to any of them.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from typing import get_args

import torch

from core.covariance import (
    BLEND_WEIGHTS,
    Covariances,
    blended_covariance,
    pipeline,
    sample_covariance,
    trace_to_n,
)
from core.crb import scene_crb
from core.errors import ConfigError
from core.evaluation import score
from core.grid import Grid, build_grid
from core.losses import SUBSPACE_SCALES, nmse
from core.measurement import classic_covariance, operator, to_measurement
from core.metrics import (
    DEFAULT_SNR_EDGES_DB,
    bucket_index,
    bucket_labels,
    bucket_mean,
    gap_stats,
    nmse_db,
    to_db,
)
from core.music import music
from core.scenario import Combiner, ScenarioConfig, SceneBatch, generate
from core.train import ExperimentConfig, train

LABELS = bucket_labels(DEFAULT_SNR_EDGES_DB)

# Variant -> (loss target, projector backward). "raw-eigh" is the old recipe: losses on R_pred, plain eigh autograd.
VARIANTS: dict[str, tuple[str, str]] = {
    "blend": ("blend", "stable"),
    "raw": ("raw", "stable"),
    "raw-eigh": ("raw", "eigh"),
}
# A source whose matched MUSIC estimate is this far off counts as an outlier (degrees). Per-bucket RMSE over a
# few thousand scenes is set by a handful of such gross errors (two merged close pairs move 0–10 dB RMSE from
# 0.18° to 1.47°), so the outlier share is printed beside it.
OUTLIER_DEG = 1.0
NMSE_HEADER = ["L", "covariance", "NMSE dB", *[f"{lab} dB" for lab in LABELS], "health", "health SNR>=0", "NaN steps"]
LOC_HEADER = [
    "L",
    "covariance",
    "K",
    *[f"θ {lab}" for lab in LABELS],
    *[f"r {lab}" for lab in LABELS],
    *[f"θ>{OUTLIER_DEG:g}° % {lab}" for lab in LABELS],
    "K̂ acc",
]
BETA_HEADER = ["L", "covariance", "mean β", *[f"β {lab}" for lab in LABELS]]
CLASSIC = "classic MUSIC on W(YYᴴ/L)W (baseline)"
DIAGNOSTIC = "diagnostic: MUSIC on T R_samp Tᴴ (not a method)"
ORACLE = "R_blend, oracle factors fitted to R_true per scene"


@dataclass(frozen=True)
class Validation:
    """The fixed validation scenes of one L and what every covariance is scored with."""

    snapshots: int  # L
    scenes: SceneBatch
    T: torch.Tensor | None  # (B, M, N) operator W H of core.measurement; None for H = I
    grid: Grid
    k_max: int
    gap_margin: float

    def measured(self, R: torch.Tensor) -> torch.Tensor:
        """C = T R Tᴴ (B, M, M), what MUSIC and the health see, for an array covariance R (B, N, N)."""
        return to_measurement(R, self.T)

    def localisation_rows(self, name: str, C: torch.Tensor) -> list[list]:
        """MUSIC on the measurement covariance C (B, M, M): per SNR bucket angle RMSE (deg), range RMSE (m) and
        the share (%) of matched sources off by more than OUTLIER_DEG, with the true K and with the eigengap K̂
        on C (its accuracy in the last column)."""
        val = self.scenes
        bucket = bucket_index(val.snr_db)
        rows = []
        for rule, k in (("true", val.K), ("eigengap", None)):
            est = music(C, self.grid, self.k_max, k=k, T=self.T)
            theta, rng, outliers = [], [], []
            for b in range(len(LABELS)):
                sel = bucket == b
                s = score(est.theta[sel], est.r[sel], est.mask[sel], val.theta[sel], val.r[sel], val.mask[sel])
                theta.append(s.angle_rmse_deg)
                rng.append(s.range_rmse_m)
                off = 100.0 * float((abs(s.angle_err_deg) > OUTLIER_DEG).mean()) if s.angle_err_deg.size else ""
                outliers.append(off)
            k_acc = (est.k_hat == val.K).double().mean().item() if k is None else ""
            rows.append([self.snapshots, name, rule, *theta, *rng, *outliers, k_acc])
        return rows

    def crb_row(self, array) -> list:
        """The CRB's RMSE (sqrt of the mean per-source bound variance) per SNR bucket: angle (deg), range (m)."""
        bucket = bucket_index(self.scenes.snr_db)
        bounds = [scene_crb(self.scenes[bucket == b], array) for b in range(len(LABELS))]
        theta = [c.angle_rmse_deg for c in bounds]
        rng = [c.range_rmse_m for c in bounds]
        return [self.snapshots, "CRB (stochastic, same sources)", "", *theta, *rng, *[""] * len(LABELS), ""]

    def nmse_row(self, name: str, R: torch.Tensor, nonfinite: int | str = "") -> list:
        """NMSE (dB) of R (B, N, N) against R_true, overall and per bucket, and the eigengap health of T R Tᴴ."""
        val = self.scenes
        healthy, _ = gap_stats(self.measured(R), val.K, self.k_max, self.gap_margin)
        return [
            self.snapshots,
            name,
            nmse_db(R, val.R_true),
            *(to_db(v) for v in bucket_mean(nmse(R, val.R_true), val.snr_db)),
            healthy.double().mean().item(),
            healthy[val.snr_db >= 0].double().mean().item(),
            nonfinite,
        ]

    def beta_row(self, name: str, beta: torch.Tensor) -> list:
        """Mean blend weight β (B,) over all scenes and per SNR bucket."""
        return [self.snapshots, name, beta.double().mean().item(), *bucket_mean(beta, self.scenes.snr_db)]


def epochs_for(args) -> int:
    """Epochs of n_train fresh scenes: --epochs, or enough for --steps optimiser steps."""
    if args.epochs is not None:
        return args.epochs
    return max(1, math.ceil(args.steps / math.ceil(args.n_train / args.batch)))


def beta_for(args, snapshots: int) -> float:
    """β of the blend at this L: --beta gives one value per --snapshots entry, or one for all."""
    betas = args.beta if len(args.beta) > 1 else args.beta * len(args.snapshots)
    if len(betas) != len(args.snapshots):
        raise ConfigError(f"--beta needs one value or one per --snapshots entry ({len(args.snapshots)}), got {betas}")
    return dict(zip(args.snapshots, betas, strict=True))[snapshots]


def experiment(args, snapshots: int, variant: str, epochs: int) -> ExperimentConfig:
    target, projector = VARIANTS[variant]
    return ExperimentConfig.from_dict(
        {
            "scenario": {
                "array": {"n_elements": args.n_elements},
                "measurement": {"snapshots": snapshots, "combiner": args.combiner, "n_rf": args.n_rf},
                "scene": {"k_max": args.k_max},
            },
            "pipeline": {"beta": beta_for(args, snapshots), "blend": args.blend, "beta_min": args.beta_min},
            "model": {"arch": args.arch, "width": args.width, "depth": args.depth},
            "loss": {
                "target": target,
                "projector": projector,
                "lam_sub": args.lam_sub,
                "lam_peak": args.lam_peak,
                "subspace_scale": args.subspace_scale,
            },
            "train": {
                "epochs": epochs,
                "n_train": args.n_train,
                "n_val": args.n_val,
                "batch_size": args.batch,
                "lr": args.lr,
                "seed": args.seed,
                "threads": args.threads,
                "device": "cpu",
            },
            # This benchmark localises the whole validation set itself; the per-epoch metric would only cost time.
            "localisation": {"n_scenes": 0},
        }
    )


def step_time(args, snapshots: int) -> float:
    """Seconds per optimiser step (data, pipeline, losses, backward, step): two 1-epoch runs of 8 and 40 steps,
    differenced so model setup and validation cancel."""
    seconds = {}
    for steps in (8, 40):
        d = experiment(args, snapshots, "blend", 1).to_dict()
        d["train"].update(n_train=steps * args.batch, n_val=args.batch)
        t0 = time.perf_counter()
        train(ExperimentConfig.from_dict(d))
        seconds[steps] = time.perf_counter() - t0
    return (seconds[40] - seconds[8]) / 32


def oracle_fitted(val: SceneBatch, cfg: ExperimentConfig, steps: int = 400) -> Covariances:
    """The pipeline's covariances (R_blend (B, N, N), β (B,)) with factors fitted per scene, R_true in hand, to
    minimise this scene's NMSE.

    An oracle: it reads R_true, which no model may. Its factors are (B, N, K_max) × 2 like every model's, plus a
    gate logit (B,) that the adaptive blend turns into β per scene (the fixed blend ignores it, so it keeps no
    gradient and Adam leaves it alone), and go through `blended_covariance`, so it shows what the pipeline of
    DESIGN §3 (rank-2·K_max R_pred, this blend) can reach at all. Adam from R_true's top eigenvectors and the
    configured β finds a local optimum, so it is a lower estimate of that ceiling."""
    k_max, rho = cfg.scenario.scene.k_max, cfg.pipeline.range_weight
    lam, U = torch.linalg.eigh(trace_to_n(val.R_true))
    top = lam[..., -2 * k_max :].clamp_min(0).sqrt()[..., None, :].to(U.dtype) * U[..., -2 * k_max :]
    A_angle = top[..., :k_max].to(torch.complex64).clone().requires_grad_(True)
    A_range = (top[..., k_max:] / math.sqrt(max(rho, 1e-3))).to(torch.complex64).clone().requires_grad_(True)
    gate = torch.zeros(len(val), requires_grad=True)  # logit 0: β starts at the configured β
    factors = (A_angle, A_range, gate)
    opt = torch.optim.Adam(factors, lr=0.02)
    for _ in range(steps):
        R = blended_covariance(factors, val.Y, val.H, cfg.pipeline).R_blend
        loss = nmse(R, val.R_true).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return blended_covariance(factors, val.Y, val.H, cfg.pipeline)


def print_table(header: list[str], rows: list[list]) -> None:
    fmt = lambda v: f"{v:.2f}" if isinstance(v, float) else str(v)  # noqa: E731
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(fmt(v) for v in row) + " |")
    print(flush=True)


def run(args) -> None:
    torch.set_num_threads(args.threads)
    rows, loc_rows, beta_rows, notes = [], [], [], []
    epochs = epochs_for(args)
    steps = epochs * math.ceil(args.n_train / args.batch)
    adaptive = args.blend == "adaptive"  # the β table only says something when β varies per scene
    for snapshots in args.snapshots:
        cfg = experiment(args, snapshots, "blend", epochs)  # validates every option before any work
        if args.step_time:
            t_step = step_time(args, snapshots)
            notes.append(f"L={snapshots}: {t_step * 1e3:.1f} ms/step at batch {args.batch} on {args.threads} threads")
        scenes = generate(cfg.scenario, cfg.train.n_val, cfg.train.val_seed)
        val = Validation(
            snapshots, scenes, operator(scenes.H), build_grid(cfg.scenario), args.k_max, cfg.loss.gap_margin
        )
        R_samp = sample_covariance(scenes.Y, scenes.H, cfg.pipeline.tikhonov_alpha)
        rows.append(val.nmse_row("R_samp", R_samp))
        new_loc = [
            val.crb_row(cfg.scenario.array),
            *val.localisation_rows(CLASSIC, classic_covariance(scenes.Y, scenes.H)),
            *val.localisation_rows(DIAGNOSTIC, val.measured(R_samp)),
        ]
        loc_rows += new_loc
        print_table(LOC_HEADER, new_loc)
        for variant in args.variants:
            cfg = experiment(args, snapshots, variant, epochs)
            t0 = time.perf_counter()
            res = train(cfg, skip_nonfinite=True)
            seconds = time.perf_counter() - t0
            name = f"R_blend ({variant}-trained, {steps} steps, {seconds:.0f} s)"
            with torch.no_grad():
                cov = pipeline(res.model, scenes.Y, scenes.H, cfg.pipeline)
            row = val.nmse_row(name, cov.R_blend, int(res.final["nonfinite_steps"]))
            new_loc = val.localisation_rows(name, val.measured(cov.R_blend))
            rows.append(row)
            loc_rows += new_loc
            print_table(NMSE_HEADER, [row])
            print_table(LOC_HEADER, new_loc)
            if adaptive:
                beta_rows.append(val.beta_row(name, cov.beta))
                print_table(BETA_HEADER, beta_rows[-1:])
        oracle = oracle_fitted(scenes, cfg)
        rows.append(val.nmse_row(ORACLE, oracle.R_blend))
        loc_rows += val.localisation_rows(ORACLE, val.measured(oracle.R_blend))
        if adaptive:
            beta_rows.append(val.beta_row(ORACLE, oracle.beta))
    print("## NMSE (R_blend, R_samp against R_true; health on the measurement covariance C = T R Tᴴ)")
    print_table(NMSE_HEADER, rows)
    print(
        "## MUSIC localisation in the measurement domain: angle RMSE θ (degrees), range RMSE r (metres) and the"
        f" share of sources off by more than {OUTLIER_DEG:g}° per SNR bucket; classic is the baseline"
    )
    print_table(LOC_HEADER, loc_rows)
    if adaptive:
        print(f"## Adaptive blend: mean β per SNR bucket (β in [{args.beta_min:g}, 1], starts at --beta)")
        print_table(BETA_HEADER, beta_rows)
    print(
        f"scenario: N={cfg.scenario.n} M={cfg.scenario.m} combiner={args.combiner} K_max={args.k_max}; "
        f"arch={args.arch} width={args.width} depth={args.depth} lr={args.lr} lam_sub={args.lam_sub} "
        f"lam_peak={args.lam_peak} subspace_scale={args.subspace_scale} blend={args.blend}"
        f"{f' beta_min={args.beta_min}' if adaptive else ''} "
        f"beta={ {s: beta_for(args, s) for s in args.snapshots} } "
        f"seed={args.seed}; "
        f"{epochs} epochs x {args.n_train} fresh scenes = {steps} steps of batch {args.batch}; "
        f"SNR = p_k/σ² per element and source; NMSE dB = 10·log10(mean NMSE) over {args.n_val} fixed scenes"
    )
    for note in notes:
        print(note)


def parser() -> argparse.ArgumentParser:
    scenario = ScenarioConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--steps", type=int, default=1280, help="optimiser steps per variant and L, rounded up to epochs (default 1280)"
    )
    budget.add_argument("--epochs", type=int, default=None, help="epochs of --n-train fresh scenes per variant and L")
    p.add_argument("--arch", default="mlp", help="model registry key (core.models.MODELS; default mlp)")
    p.add_argument(
        "--variants",
        nargs="+",
        default=list(VARIANTS),
        choices=list(VARIANTS),
        help="loss variants to train: blend (losses on R_blend), raw (on R_pred), raw-eigh (on R_pred, plain eigh "
        "autograd) (default: all three)",
    )
    p.add_argument("--width", type=int, default=512, help="hidden width of the model (default 512)")
    p.add_argument("--depth", type=int, default=3, help="hidden layers of the model (default 3)")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW peak learning rate (default 1e-3)")
    p.add_argument("--lam-sub", type=float, default=0.1, help="weight of the subspace loss; NMSE's is 1 (default 0.1)")
    p.add_argument(
        "--lam-peak",
        type=float,
        default=0.0,
        help="weight of the peak-shift loss, MUSIC's first-order angle error at the truth (default 0: off)",
    )
    p.add_argument(
        "--subspace-scale",
        default="linear",
        choices=sorted(SUBSPACE_SCALES),
        help="how the subspace loss weighs each source's null spectrum: linear, or log (every SNR alike, like the "
        "efficiency in dB) (default linear)",
    )
    p.add_argument(
        "--blend",
        default="fixed",
        choices=sorted(BLEND_WEIGHTS),
        help="β of the blend: fixed (--beta for every scene) or adaptive (per scene from the model's gate, in "
        "[--beta-min, 1], starting at --beta; prints the mean β per SNR bucket) (default fixed)",
    )
    p.add_argument(
        "--beta",
        type=float,
        nargs="+",
        default=[0.6, 0.3],
        help="β of the blend (the adaptive β's start), one per --snapshots entry or one for all (default 0.6 0.3)",
    )
    p.add_argument("--beta-min", type=float, default=0.05, help="floor of the adaptive β, in [0, 1] (default 0.05)")
    p.add_argument(
        "--combiner",
        default=scenario.measurement.combiner,
        choices=list(get_args(Combiner)),
        help="H: identity (fully digital, M = N) or random_phase (hybrid, one H per scene) "
        f"(default {scenario.measurement.combiner})",
    )
    p.add_argument("--n-rf", type=int, default=None, help="M, RF chains (rows of H), <= N (default: M = N)")
    p.add_argument("--n-elements", type=int, default=scenario.n, help=f"N, antenna elements (default {scenario.n})")
    p.add_argument(
        "--k-max",
        type=int,
        default=scenario.scene.k_max,
        help=f"K_max, most sources per scene (K ~ U{{1..K_max}}), < M (default {scenario.scene.k_max})",
    )
    p.add_argument("--batch", type=int, default=256, help="scenes per optimiser step (default 256)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--n-train", type=int, default=8192, help="fresh scenes per epoch (default 8192)")
    p.add_argument("--n-val", type=int, default=2048, help="fixed validation scenes, all localised (default 2048)")
    p.add_argument("--seed", type=int, default=0, help="model init and training data seed (default 0)")
    p.add_argument("--snapshots", type=int, nargs="+", default=[16, 4], help="values of L (default 16 4)")
    p.add_argument("--step-time", action="store_true", help="also measure ms per optimiser step at each L")
    return p


def main() -> None:
    try:
        run(parser().parse_args())
    except ConfigError as e:
        print(f"alignment.py: {e}", file=sys.stderr)  # bad user input: one line, no traceback
        sys.exit(2)


if __name__ == "__main__":
    main()
