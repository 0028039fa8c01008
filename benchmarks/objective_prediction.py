"""Does the search predict the evaluation? Spearman ρ between each trial's loc_gain_db and the same quantity
measured by `hpo evaluate` on fresh scenes the search never saw.

    python benchmarks/objective_prediction.py --study quick [--storage URL] [--scenes 500] [--seed 7000001] [--jobs 2]

Every COMPLETE trial of the study is trained again from its params exactly as the objective trained it (the
spec's experiment, its seed and validation seed: training is deterministic for a fixed thread count, and the
script prints the retrained value beside the stored one to show it), then evaluated with core.evaluation on
--scenes fresh scenes per SNR point (learned and classic, true K). The report's loc_gain_db is the objective's
formula on those scenes (core.evaluation.loc_gain_db). Target: ρ >= 0.8 over >= 8 complete trials.
--jobs N trains N trials at once in N processes, each with the trial's own thread count (a study's workers ran
one thread each on 2 cores: --jobs 2 halves the wall time and leaves every value as it is).
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

import optuna
from scipy.stats import spearmanr

from core.evaluation import EvalConfig, evaluate
from core.experiment import ExperimentConfig
from core.reproducibility import deterministic
from core.train import train
from hpo.storage import open_existing_study
from hpo.study.stored_spec import spec_of

TARGET = 0.8

_CACHE: dict = {}  # per process: the datasets and references every trial of the study shares


def retrain_and_evaluate(d: dict, eval_cfg: EvalConfig) -> tuple[float, float, float]:
    """(retrained value, fresh loc_gain_db, wall s) of one trial's experiment dict."""
    start = time.perf_counter()
    result = train(ExperimentConfig.from_dict(d), data_cache=_CACHE)
    report = evaluate(result.model, result.cfg.scenario, result.cfg.pipeline, eval_cfg)
    return result.final["loc_gain_db"], report["loc_gain_db"], time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", required=True, help="study name in the storage")
    ap.add_argument("--storage", default=None, help="storage URL (default: HPO_STORAGE, else sqlite:///hpo.db)")
    ap.add_argument("--scenes", type=int, default=500, help="fresh scenes per SNR point")
    ap.add_argument("--seed", type=int, default=EvalConfig().seed, help="seed of the fresh scenes")
    ap.add_argument("--jobs", type=int, default=1, help="trials trained at once, one process each")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study, _ = open_existing_study(args.storage, args.study)
    spec = spec_of(study)
    if "loc_gain_db" not in spec.study.metric_names:
        raise SystemExit(f"study {args.study!r} does not optimise loc_gain_db (objective {spec.study.objective!r})")
    value = spec.study.metric_names.index("loc_gain_db")  # multi: (NMSE, loc_gain_db)
    done = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    eval_cfg = EvalConfig(n_scenes=args.scenes, seed=args.seed, methods=("learned", "classic"), order_rules=())
    searched, fresh = [], []
    print(
        f"study {args.study}: {len(done)} complete trials; {args.scenes} fresh scenes per SNR point, seed {args.seed}"
    )
    print(" trial   search loc_gain_db   retrained   fresh loc_gain_db   s")
    dicts = []
    for t in done:
        d = spec.experiment_dict(t.params)
        d["train"]["threads"] = t.user_attrs.get("threads", spec.train.threads)
        dicts.append(d)
    context = multiprocessing.get_context("spawn")  # a fresh torch per process: fork after torch can deadlock
    with ProcessPoolExecutor(args.jobs, mp_context=context, initializer=deterministic) as pool:
        results = pool.map(retrain_and_evaluate, dicts, [eval_cfg] * len(dicts))
        for t, (again, gain, wall) in zip(done, results, strict=True):
            searched.append(t.values[value])
            fresh.append(gain)
            print(f"{t.number:6d} {t.values[value]:20.3f} {again:11.3f} {gain:19.3f} {wall:5.0f}", flush=True)
    rho = spearmanr(searched, fresh).statistic if len(done) > 1 else float("nan")
    # ρ of untied ranks is 1 − 6·Σd²/(n(n²−1)), a ratio of integers: round off the float's last bits before comparing
    verdict = "met" if round(rho, 9) >= TARGET and len(done) >= 8 else "NOT met"
    print(f"Spearman ρ = {rho:.3f} over {len(done)} trials (target >= {TARGET} over >= 8: {verdict})")


if __name__ == "__main__":
    main()
