"""Does the search predict the evaluation? Spearman ρ between each trial's loc_gain_db and the same quantity
measured by `hpo evaluate` on fresh scenes the search never saw.

    python benchmarks/objective_prediction.py --study quick [--storage URL] [--scenes 500] [--seed 7000001]

Every COMPLETE trial of the study is trained again from its params exactly as the objective trained it (the
spec's experiment, its seed and validation seed: training is deterministic for a fixed thread count, and the
script prints the retrained value beside the stored one to show it), then evaluated with core.evaluation on
--scenes fresh scenes per SNR point (learned and classic, true K). The report's loc_gain_db is the objective's
formula on those scenes (core.evaluation.loc_gain_db). Target: ρ >= 0.8 over >= 8 complete trials.
"""

from __future__ import annotations

import argparse
import time

import optuna
from scipy.stats import spearmanr

from core.evaluation import EvalConfig, evaluate
from core.experiment import ExperimentConfig
from core.reproducibility import deterministic
from core.train import train
from hpo.storage import open_existing_study
from hpo.study.stored_spec import spec_of

TARGET = 0.8


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", required=True, help="study name in the storage")
    ap.add_argument("--storage", default=None, help="storage URL (default: HPO_STORAGE, else sqlite:///hpo.db)")
    ap.add_argument("--scenes", type=int, default=500, help="fresh scenes per SNR point")
    ap.add_argument("--seed", type=int, default=EvalConfig().seed, help="seed of the fresh scenes")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    deterministic()
    study, _ = open_existing_study(args.storage, args.study)
    spec = spec_of(study)
    done = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    eval_cfg = EvalConfig(n_scenes=args.scenes, seed=args.seed, methods=("learned", "classic"), order_rules=())
    cache: dict = {}
    searched, fresh = [], []
    print(
        f"study {args.study}: {len(done)} complete trials; {args.scenes} fresh scenes per SNR point, seed {args.seed}"
    )
    print(" trial   search loc_gain_db   retrained   fresh loc_gain_db   s")
    for t in done:
        start = time.perf_counter()
        d = spec.experiment_dict(t.params)
        d["train"]["threads"] = t.user_attrs.get("threads", spec.train.threads)
        result = train(ExperimentConfig.from_dict(d), data_cache=cache)
        report = evaluate(result.model, result.cfg.scenario, result.cfg.pipeline, eval_cfg)
        searched.append(t.values[0])
        fresh.append(report["loc_gain_db"])
        again = result.final["loc_gain_db"]
        wall = time.perf_counter() - start
        print(f"{t.number:6d} {t.values[0]:20.3f} {again:11.3f} {report['loc_gain_db']:19.3f} {wall:5.0f}", flush=True)
    rho = spearmanr(searched, fresh).statistic if len(done) > 1 else float("nan")
    # ρ of untied ranks is 1 − 6·Σd²/(n(n²−1)), a ratio of integers: round off the float's last bits before comparing
    verdict = "met" if round(rho, 9) >= TARGET and len(done) >= 8 else "NOT met"
    print(f"Spearman ρ = {rho:.3f} over {len(done)} trials (target >= {TARGET} over >= 8: {verdict})")


if __name__ == "__main__":
    main()
