"""What the calibrated blend's fitting rule costs a checkpoint: its shipped β table against tables fitted again
under variants of the rule, each scored on fresh scenes against classic.

    python benchmarks/calibration_rule.py CHECKPOINT [--rule final_z=2 ...] [--scenes 500] [--seeds 3]
        [--snr -10,-5,0,5,10] [--markdown]

The table is refitted on the checkpoint's own calibration scenes (core.calibration, the same stream as training)
under each variant, a CalibrationConfig override: the rule as shipped; `tolerance = 0` (a β < 1 must be shown
better in precision by one standard error of the paired difference, the rule before 2026-12-05, instead of within
1.02× classic's RMSE); and `final_z = 0` (no worse on average, no standard error). Then `hpo evaluate`'s sweep
(learned and classic, true K) on `--seeds` fresh scene draws, and per SNR the range over the seeds of the learned
pipeline's clipped angle, range, gross-error rate and plain angle over classic's, with both gross-error rates and
the mean β (benchmarks/report_ratios.py's table). Figures only: which rule ships is docs/design.md §3's decision.
"""

from __future__ import annotations

import argparse
import json

import torch
from report_ratios import FIRST_SEED, add_sweep_options, format_table, tables

from core.calibration import calibration_set, fit_table
from core.evaluation import EvalConfig, evaluate
from core.train import load_checkpoint

VARIANTS = {"as shipped": {}, "tolerance = 0": {"tolerance": 0.0}, "final_z = 0": {"final_z": 0.0}}


def tables_by_rule(checkpoint: str, variants: dict[str, dict]) -> tuple[object, object, dict[str, tuple[float, ...]]]:
    """(model, its ExperimentConfig, {variant: β table}), the shipped table first."""
    model, cfg, _ = load_checkpoint(checkpoint)
    model.eval()
    pipe = cfg.pipeline
    by_rule = {"shipped in the checkpoint": tuple(pipe.beta_table or ())}
    for name, override in variants.items():
        cc = cfg.calibration.replace(**override)
        cal = calibration_set(cfg.scenario, cc, cfg.train.val_seed, pipe.estimator)
        by_rule[name] = fit_table(model, pipe, cal, cc, final=True)
    return model, cfg, by_rule


def reports(model, cfg, table: tuple[float, ...], snrs: tuple[float, ...], scenes: int, seeds: int) -> list[dict]:
    """evaluate()'s reports (learned and classic, true K) of the model with `table`, one per scene seed."""
    pipe = cfg.pipeline.replace(beta_table=table)
    ev = EvalConfig(snr_grid_db=snrs, n_scenes=scenes, methods=("learned", "classic"), order_rules=())
    return [evaluate(model, cfg.scenario, pipe, ev.replace(seed=FIRST_SEED + s)) for s in range(seeds)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="a checkpoint with a calibrated blend (hpo best --download, hpo retrain)")
    ap.add_argument("--rule", action="append", default=[], metavar="KEY=VALUE",
                    help="a [calibration] override, VALUE as JSON (final_z=2, betas=[0.5,0.7]), "
                         "to compare with the rule as shipped (repeatable)")  # fmt: skip
    add_sweep_options(ap, snr="-10,-5,0,5,10")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    snrs = tuple(float(s) for s in args.snr.split(","))
    variants = VARIANTS
    if args.rule:
        overrides = [rule.split("=", 1) for rule in args.rule]
        variants = {"as shipped": {}} | {f"{k} = {v}": {k: json.loads(v)} for k, v in overrides}
    model, cfg, by_rule = tables_by_rule(args.checkpoint, variants)
    for name, table in by_rule.items():
        print(f"\n{name}: β table {table}; learned ÷ classic, min–max over {args.seeds} × {args.scenes} scenes")
        print(format_table([f"{s:g}" for s in snrs], tables(reports(model, cfg, table, snrs, args.scenes, args.seeds)),
                           args.markdown))  # fmt: skip


if __name__ == "__main__":
    main()
