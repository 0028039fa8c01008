"""The seed's claim, measured: losses on R_blend ("blend") against losses on R_pred ("raw").

For each L, three variants train with the same seed, model and wall-clock budget on fresh scenes of the default
scenario: "blend", "raw" (losses on R_pred, stable projector backward) and "raw, eigh" (the old recipe: losses
on R_pred through plain eigh autograd). Non-finite steps are counted and skipped (train(skip_nonfinite=True)). The table
shows validation NMSE (dB, 10·log10 of the mean NMSE) of R_samp, of each variant's R_blend and of a rank-limited
oracle, overall and per SNR bucket (SNR = p_k/σ² per element and source, dB), eigengap health, the
non-finite step count, and the step time at the chosen batch size and thread count.

    .venv/bin/python benchmarks/alignment.py --minutes 2 --arch mlp --snapshots 16 4
"""

from __future__ import annotations

import argparse
import time

import torch

from core.covariance import blend, pipeline, sample_covariance, trace_to_n
from core.metrics import DEFAULT_SNR_EDGES_DB, bucket_labels, bucket_nmse_db, gap_stats, nmse_db
from core.scenario import generate
from core.train import ExperimentConfig, train

LABELS = bucket_labels(DEFAULT_SNR_EDGES_DB)


def localisation_columns(model, cfg: ExperimentConfig, val) -> dict[str, str]:
    """MUSIC angle/range RMSE of R_blend vs R_samp per SNR bucket goes here once core/music.py lands; none yet."""
    return {}


# Variant -> (loss target, projector backward). "raw, eigh" is the old recipe: losses on R_pred, plain eigh autograd.
VARIANTS: dict[str, tuple[str, str]] = {
    "blend": ("blend", "stable"),
    "raw": ("raw", "stable"),
    "raw, eigh": ("raw", "eigh"),
}


def experiment(args, snapshots: int, variant: str, epochs: int) -> ExperimentConfig:
    target, projector = VARIANTS[variant]
    return ExperimentConfig.from_dict(
        {
            "scenario": {"measurement": {"snapshots": snapshots}},
            "model": {"arch": args.arch, "width": args.width, "depth": args.depth},
            "loss": {"target": target, "projector": projector},
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


def oracle_rank_limited(val, cfg: ExperimentConfig):
    """R_blend with R_pred = R_true's top 2·K_max eigenvectors, the missing trace spread evenly over them.

    A heuristic of what a (B, N, K_max) × 2 factor model can reach: R_pred has rank <= 2·K_max and trace N."""
    rank, n = 2 * cfg.scenario.scene.k_max, cfg.scenario.n
    lam, U = torch.linalg.eigh(trace_to_n(val.R_true))
    top = lam[..., -rank:].clamp_min(0)
    top = (top + (n - top.sum(-1, keepdim=True)) / rank).clamp_min(0)
    Ur = U[..., -rank:]
    R_pred = trace_to_n((Ur * top[..., None, :].to(Ur.dtype)) @ Ur.mH)
    return blend(R_pred, sample_covariance(val.Y, val.H, cfg.pipeline.tikhonov_alpha), cfg.pipeline.beta)


def health_at_nonneg_snr(model, cfg: ExperimentConfig, val) -> float:
    with torch.no_grad():
        R = pipeline(model, val.Y, val.H, cfg.pipeline).R_blend
    healthy, _ = gap_stats(R, val.K, cfg.scenario.scene.k_max, cfg.loss.gap_margin)
    return healthy[val.snr_db >= 0].double().mean().item()


def run(args) -> None:
    torch.set_num_threads(args.threads)
    header = ["L", "covariance", "NMSE dB", *[f"{lab} dB" for lab in LABELS], "health", "health SNR>=0", "NaN steps"]
    rows, notes = [], []
    for snapshots in args.snapshots:
        t_step = step_time(args, snapshots)
        steps_per_epoch = -(-args.n_train // args.batch)
        epochs = max(1, round(args.minutes * 60 / (t_step * steps_per_epoch)))
        notes.append(
            f"L={snapshots}: {t_step * 1e3:.1f} ms/step at batch {args.batch} on {args.threads} threads, "
            f"{epochs} epochs x {args.n_train} fresh scenes per variant"
        )
        results = {}
        for target in VARIANTS:
            cfg = experiment(args, snapshots, target, epochs)
            t0 = time.perf_counter()
            res = train(cfg, skip_nonfinite=True)
            results[target] = (res, time.perf_counter() - t0)
            print(
                f"# L={snapshots} {target}: nmse_db={res.final['nmse_db']:.2f} "
                f"(R_samp {res.final['nmse_samp_db']:.2f}) in {results[target][1]:.0f} s",
                flush=True,
            )
        cfg = results["blend"][0].cfg
        val = generate(cfg.scenario, cfg.train.n_val, cfg.train.val_seed)
        f = results["blend"][0].final
        rows.append([snapshots, "R_samp", f["nmse_samp_db"], *[f[f"nmse_samp_db@{lab}"] for lab in LABELS], "", "", ""])
        for target, (res, seconds) in results.items():
            m = res.final
            rows.append(
                [
                    snapshots,
                    f"R_blend ({target}-trained, {seconds:.0f} s)",
                    m["nmse_db"],
                    *[m[f"nmse_db@{lab}"] for lab in LABELS],
                    m["eigengap_health"],
                    health_at_nonneg_snr(res.model, cfg, val),
                    int(m["nonfinite_steps"]),
                ]
            )
            localisation_columns(res.model, cfg, val)
        R_or = oracle_rank_limited(val, cfg)
        healthy, _ = gap_stats(R_or, val.K, cfg.scenario.scene.k_max, cfg.loss.gap_margin)
        rows.append(
            [
                snapshots,
                f"R_blend, oracle rank-{2 * cfg.scenario.scene.k_max} R_pred",
                nmse_db(R_or, val.R_true),
                *bucket_nmse_db(R_or, val.R_true, val.snr_db),
                healthy.double().mean().item(),
                healthy[val.snr_db >= 0].double().mean().item(),
                "",
            ]
        )
    fmt = lambda v: f"{v:.2f}" if isinstance(v, float) else str(v)  # noqa: E731
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(fmt(v) for v in row) + " |")
    print()
    print(
        f"arch={args.arch} width={args.width} depth={args.depth} lr={args.lr} seed={args.seed}; "
        f"SNR = p_k/σ² per element and source; NMSE dB = 10·log10(mean NMSE) over {args.n_val} fixed scenes"
    )
    for note in notes:
        print(note)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=2.0, help="training budget per variant and L")
    p.add_argument("--arch", default="mlp", help="model registry key: mlp | transformer | structured")
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--n-train", type=int, default=8192, help="fresh scenes per epoch")
    p.add_argument("--n-val", type=int, default=2048, help="fixed validation scenes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--snapshots", type=int, nargs="+", default=[16, 4], help="values of L")
    run(p.parse_args())


if __name__ == "__main__":
    main()
