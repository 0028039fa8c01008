"""Which losses make R_pred worth blending? Each variant's NMSE of R_pred and R_blend against R_samp's, and its
loc_gain_db, per SNR point on fresh scenes (issue 20, item 3).

    python benchmarks/pred_losses.py --study default --variant base: --variant anchor:lam_pred=1 \\
        [--param arch=mlp --param width=256 ...] [--epochs 20] [--scenes 300] [--seed 7000001]
    python benchmarks/pred_losses.py --checkpoint PATH [--checkpoint PATH ...] [--scenes 300] [--seed 7000001]

Every variant trains the spec's experiment (its [fixed] values, then the --param values, then the variant's own)
with the same seeds, so the variants differ only in what the variant sets. Each is then measured on --scenes
fresh scenes per SNR point of the evaluation grid (a stream training, validation, localisation and calibration
never used), true K:
    NMSE dB     10·log10 of the mean NMSE against R_true of R_samp, R_pred and R_blend; "pred gain" and "blend
                gain" are R_samp's NMSE minus theirs (dB, higher is better)
    gain dB     the objective's terms on those scenes: 10·log10(MSE_classic / MSE_learned) of the clipped angle
                and of the range (core.evaluation), and their mean over the grid, loc_gain_db; classic is the
                pipeline's estimator (MUSIC or DML) on C(R_samp), the objective's own baseline
and the β table the variant's calibrated blend ended with. --checkpoint measures saved models the same way
(`hpo retrain`'s, `hpo best --download`'s, --save's) instead of training. The target of item 3: R_pred's NMSE
gain over R_samp >= 4 dB at every SNR <= 0 dB on `default`.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from core.covariance import pipeline
from core.evaluation import CLASSIC_OF, EvalConfig, evaluate
from core.experiment import ExperimentConfig
from core.metrics import nmse_db
from core.reproducibility import deterministic
from core.scenario import generate
from core.snr import manifold
from core.train import load_checkpoint, save_checkpoint, train
from hpo.study.spec import PARAMS, load_spec


def _value(text: str):
    """A --param/--variant value as TOML would read it: a number, a boolean, or a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _assignments(text: str) -> dict:
    pairs = [p for p in text.split(",") if p]
    return {k: _value(v) for k, v in (p.split("=", 1) for p in pairs)}


def _nmse_rows(model, cfg: ExperimentConfig, eval_cfg: EvalConfig) -> list[tuple[float, float, float]]:
    """(R_samp, R_pred, R_blend) NMSE dB per SNR point on the evaluation's own fresh scenes."""
    rows = []
    with torch.no_grad():
        for snr in eval_cfg.snr_grid_db:
            batch = generate(cfg.scenario, eval_cfg.n_scenes, seed=eval_cfg.seed, snr_db=float(snr))
            cov = pipeline(model, batch.Y, batch.H, cfg.pipeline, manifold(cfg.scenario, cfg.pipeline.snr_estimate))
            rows.append(tuple(nmse_db(R, batch.R_true) for R in (cov.R_samp, cov.R_pred, cov.R_blend)))
    return rows


def _report(label: str, what: str, model, cfg: ExperimentConfig, eval_cfg: EvalConfig, note: str) -> None:
    """Print one model's table: NMSE of R_samp, R_pred and R_blend, the objective's terms, gross rates per SNR."""
    classic = CLASSIC_OF[cfg.pipeline.estimator]  # the objective's baseline: MUSIC or DML on C(R_samp)
    report = evaluate(model, cfg.scenario, cfg.pipeline, eval_cfg.replace(methods=("learned", classic)))
    nmse = _nmse_rows(model, cfg, eval_cfg)
    print(f"\n{label} ({what}): {note}; β table {cfg.pipeline.beta_table}")
    print("   SNR  NMSE samp  pred  blend  pred gain  blend gain   angle gain  range gain   gross L/C")
    for snr, (samp, pred, blended), row in zip(eval_cfg.snr_grid_db, nmse, report["rows"], strict=True):
        learned, ref = row["methods"]["learned"], row["methods"][classic]
        angle = 20 * math.log10(ref["angle_rmse_clipped_deg"] / learned["angle_rmse_clipped_deg"])
        rng = 20 * math.log10(ref["range_rmse_m"] / learned["range_rmse_m"])
        print(
            f"{snr:6.0f} {samp:10.2f} {pred:5.2f} {blended:6.2f} {samp - pred:10.2f} {samp - blended:11.2f}"
            f" {angle:12.2f} {rng:11.2f}   {learned['gross_rate']:.3f}/{ref['gross_rate']:.3f}"
        )
    print(f"fresh loc_gain_db {report['loc_gain_db']:.3f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", default="default", help="spec name under studies/ or a TOML path")
    ap.add_argument("--param", action="append", default=[], help="NAME=VALUE for every variant (spec param names)")
    ap.add_argument("--variant", action="append", default=[], help="LABEL:NAME=VALUE,... (repeatable)")
    ap.add_argument("--set", action="append", default=[], help="SECTION.KEY=VALUE of the experiment, every variant")
    ap.add_argument("--epochs", type=int, default=None, help="epochs (default: the spec's)")
    ap.add_argument("--n-train", type=int, default=None, help="training scenes per epoch (default: the spec's)")
    ap.add_argument("--scenes", type=int, default=300, help="fresh scenes per SNR point")
    ap.add_argument("--seed", type=int, default=EvalConfig().seed, help="seed of the fresh scenes")
    ap.add_argument("--save", type=Path, default=None, help="write each variant's checkpoint to DIR/LABEL.pt")
    ap.add_argument("--checkpoint", type=Path, action="append", default=[], help="measure this checkpoint, no training")
    args = ap.parse_args()
    deterministic()
    if args.checkpoint:
        eval_cfg = EvalConfig(n_scenes=args.scenes, seed=args.seed, methods=("learned",), order_rules=())
        print(f"{args.scenes} fresh scenes per SNR, seed {args.seed}")
        for path in args.checkpoint:
            model, cfg, _ = load_checkpoint(path)
            _report(path.stem, str(path), model, cfg, eval_cfg, "checkpoint")
        return
    spec = load_spec(args.study)
    common = _assignments(",".join(args.param))
    variants = [v.split(":", 1) for v in args.variant or ["base:"]]
    eval_cfg = EvalConfig(n_scenes=args.scenes, seed=args.seed, methods=("learned",), order_rules=())
    cache: dict = {}
    print(f"spec {spec.name}; params {common}; set {args.set}; {args.scenes} fresh scenes per SNR, seed {args.seed}")
    for label, text in variants:
        params = {**common, **_assignments(text)}
        unknown = set(params) - set(PARAMS)
        if unknown:
            ap.error(f"unknown parameter(s) {sorted(unknown)}; known: {sorted(PARAMS)}")
        d = spec.experiment_dict(params)
        for item in args.set:  # one per flag: a value may hold commas ("calibration.betas=[0.5,0.7]")
            key, value = item.split("=", 1)
            section, field = key.split(".", 1)
            if section not in d:
                ap.error(f"--set {item}: no section {section!r}; the experiment has {sorted(d)}")
            d[section][field] = _value(value)
        if args.epochs is not None:
            d["train"]["epochs"] = args.epochs
        if args.n_train is not None:
            d["train"]["n_train"] = args.n_train
        start = time.perf_counter()
        result = train(ExperimentConfig.from_dict(d), data_cache=cache)
        trained = time.perf_counter() - start
        if args.save is not None:  # for `hpo evaluate --checkpoint DIR/LABEL.pt` on more scenes and seeds
            args.save.mkdir(parents=True, exist_ok=True)
            save_checkpoint(args.save / f"{label}.pt", result, result.cfg)
        _report(
            label,
            text or "spec as is",
            result.model,
            result.cfg,
            eval_cfg,
            f"trained in {trained:.0f} s; validation loc_gain_db {result.final.get('loc_gain_db', math.nan):.3f}",
        )


if __name__ == "__main__":
    main()
