"""Wall time of core.evaluation.evaluate (what `hpo evaluate` runs) for each spec's scenario and pipeline.

    python benchmarks/evaluate_sweep.py       # coherent (DML) and quick (MUSIC), 100 scenes per SNR
    python benchmarks/evaluate_sweep.py --study starved --scenes 500

The model is the spec's untrained network (its output does not change the estimators' cost); every method and
every K̂ rule runs, on the default SNR grid, with the given torch threads.
"""

from __future__ import annotations

import argparse
import time

import torch

from core.evaluation import EvalConfig, evaluate
from core.experiment import ExperimentConfig
from core.models import build_model
from hpo.study.spec import load_spec


def evaluation_seconds(study: str, scenes: int) -> tuple[float, list[float]]:
    """(wall seconds of one evaluate(), the learned pipeline's MDL K̂ accuracy per SNR point)."""
    spec = load_spec(study)
    params = {name: param.corners()[0] for name, param in spec.search.items()}  # any point of the search space
    cfg = ExperimentConfig.from_dict(spec.experiment_dict(params))
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.scenario).eval()
    start = time.perf_counter()
    report = evaluate(model, cfg.scenario, cfg.pipeline, EvalConfig(n_scenes=scenes))
    accuracy = [row["methods"]["learned"]["k_accuracy"]["mdl"] for row in report["rows"]]
    return time.perf_counter() - start, accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", action="append", help="spec name or path (repeatable; default coherent, quick)")
    parser.add_argument("--scenes", type=int, default=100, help="scenes per SNR point (default 100)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for study in args.study or ["coherent", "quick"]:
        seconds, accuracy = evaluation_seconds(study, args.scenes)
        shown = ", ".join(f"{a:.2f}" for a in accuracy)
        print(f"{study}: {seconds:.1f} s for 7 SNRs x {args.scenes} scenes; learned MDL K-hat accuracy {shown}")


if __name__ == "__main__":
    main()
