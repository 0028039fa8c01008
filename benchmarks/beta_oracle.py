"""What would a β chosen by the true SNR give? A checkpoint's R_pred blended at fixed β, against β = 1 (the
pipeline's classic estimator on C(R_samp)), per SNR point of fresh scenes, beside what its calibrated table does.

    python benchmarks/beta_oracle.py --checkpoint W.pt [--betas 0.93,0.85,0.7,0.5] [--scenes 300] [--seeds 3]
                                     [--snr -10,-5,0,5,10,15,20] [--threads 2] [--markdown]

On each of `--seeds` scene draws (hpo evaluate's seeds 7000001, ...; true K) the checkpoint's pipeline runs once
with its own blend ("shipped") and once per fixed β; each is scored as `hpo evaluate` scores the learned method
(clipped angle RMSE, range RMSE, gross-error rate: docs/design.md §5–§6) and divided by the same figure at β = 1 on
the same scenes. Below 1 is a gain a per-SNR table could take if its SNR estimate placed the scenes; the last rows
give the checkpoint's own estimate ŝ (PipelineConfig.snr_estimate: MDL's split of C(R_samp)'s eigenvalues, or the
manifold estimate of core.snr) per SNR point as its 10th, 50th and 90th percentile. Ranges are min–max over the
seeds. Figures only; the model is not changed.
"""

from __future__ import annotations

import argparse

import torch
from report_ratios import FIRST_SEED, add_sweep_options, format_table, ratio, span

from core.covariance import SNR_ESTIMATES, BlendInputs, measure
from core.evaluation import EvalConfig, evaluate
from core.scenario import generate
from core.snr import manifold
from core.train import load_checkpoint

METRICS = (("clipped angle", "angle_rmse_clipped_deg"), ("range", "range_rmse_m"), ("gross errors", "gross_rate"))


def scores(model, cfg, betas: list[float], snrs: list[float], scenes: int, seed: int) -> dict:
    """{label: [per SNR point, the learned method's scores]} for "shipped" and each fixed β (1 included)."""
    ev = EvalConfig(n_scenes=scenes, seed=seed, snr_grid_db=tuple(snrs), methods=("learned",), order_rules=())
    pipes = {"shipped": cfg.pipeline} | {b: cfg.pipeline.replace(blend="fixed", beta=b) for b in (1.0, *betas)}
    return {
        label: [row["methods"]["learned"] for row in evaluate(model, cfg.scenario, pipe, ev)["rows"]]
        for label, pipe in pipes.items()
    }


def snr_estimates(cfg, snrs: list[float], scenes: int, seed: int) -> list[list[float]]:
    """Per SNR point, ŝ's 10th, 50th and 90th percentile (dB) on the same scenes as `scores`'."""
    out, pipe = [], cfg.pipeline
    for snr in snrs:
        batch = generate(cfg.scenario, scenes, seed=seed, snr_db=snr)
        x = measure(batch.Y, batch.H, pipe.tikhonov_alpha, manifold(cfg.scenario, pipe.snr_estimate))
        s = SNR_ESTIMATES[pipe.snr_estimate](BlendInputs(None, x, cfg.scenario.scene.k_max))
        out.append(torch.quantile(s, torch.tensor([0.1, 0.5, 0.9], dtype=s.dtype)).tolist())
    return out


def table(per_seed: list[dict], estimates: list[list[list[float]]]) -> list[tuple[str, list[str]]]:
    """(label, one cell per SNR point) rows: each blend's metrics over β = 1's, then ŝ's percentiles."""
    rows = []
    for label in per_seed[0]:
        if label == 1.0:
            continue
        name = label if label == "shipped" else f"β = {label:g}"
        for metric, key in METRICS:
            # per seed, one ratio per SNR point; then per SNR point, the seeds' ratios
            seeds = [[ratio(m[key], one[key]) for m, one in zip(s[label], s[1.0], strict=True)] for s in per_seed]
            rows.append((f"{name}: {metric} ÷ β = 1", [span(list(c)) for c in zip(*seeds, strict=True)]))
    for i, q in enumerate(("p10", "p50", "p90")):
        rows.append((f"ŝ {q} (dB)", [span([e[p][i] for e in estimates], 1) for p in range(len(estimates[0]))]))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="a checkpoint of hpo retrain, hpo best or pred_losses --save")
    ap.add_argument("--betas", default="0.93,0.85,0.7,0.5", help="fixed β below 1 to try (default 0.93,0.85,0.7,0.5)")
    add_sweep_options(ap, snr="-10,-5,0,5,10,15,20")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, cfg, _ = load_checkpoint(args.checkpoint)
    betas, snrs = [float(b) for b in args.betas.split(",")], [float(s) for s in args.snr.split(",")]
    per_seed, estimates = [], []
    for s in range(args.seeds):
        per_seed.append(scores(model, cfg, betas, snrs, args.scenes, FIRST_SEED + s))
        estimates.append(snr_estimates(cfg, snrs, args.scenes, FIRST_SEED + s))
        print(f"  seed {s + 1}/{args.seeds} done", flush=True)
    pipe = cfg.pipeline
    print(f"\n{args.checkpoint}: shipped blend {pipe.blend}, table {pipe.beta_table} over the {pipe.snr_estimate} ŝ")
    print(f"bins {pipe.beta_bins_db} dB; estimator {pipe.estimator}")
    print(f"{args.seeds} × {args.scenes} scenes per SNR, true K; min–max over the seeds")
    print(format_table([f"{s:g}" for s in snrs], table(per_seed, estimates), args.markdown))


if __name__ == "__main__":
    main()
