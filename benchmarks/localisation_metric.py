"""The cost of the localisation metric (core.localisation) and of the calibrated blend's refits
(core.calibration) in a trial (`quick`'s, or another spec's), with and without each side by side.

    python benchmarks/localisation_metric.py [--repeats 2] [--threads 2] [--study quick] [--n-scenes N] [--every K]

One trial is core.train.train on the spec's (--study, default `quick`) scenario, data and epochs, at the middle
of its search space (the first choice of a categorical). The data cache is warmed first (datasets and the
classic/CRB reference are built once per process, as in a worker), and that one-time cost is printed apart. Then
trials with the metric (the spec's [localisation] settings, or --n-scenes/--every), without it (n_scenes = 0),
and without it and with a fixed blend instead of the calibrated one (no refits) take turns, so all see the same
machine load, and the script prints each median and

    share = (median with − median without) / median with          target: <= 15%
    calibration share = (median without − median fixed) / median with

Absolute times are noisy on a shared machine (the 1-minute load average is printed); the share compares
trials run back to back.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from core.experiment import ExperimentConfig
from core.localisation import SNR_GRID_DB, LocalisationConfig, reference
from core.train import train
from hpo.study.spec import load_spec

TARGET = 0.15  # the metric's share of a quick trial, at most


def middle(p) -> object:
    """The middle of a search parameter: geometric for log ranges, the first choice of a categorical."""
    if p.type == "categorical":
        return p.choices[0]
    value = (p.low * p.high) ** 0.5 if p.log else (p.low + p.high) / 2
    return round(value) if p.type == "int" else value


def trial_config(study: str, threads: int, loc: LocalisationConfig | None) -> ExperimentConfig:
    spec = load_spec(study)
    mid = {name: middle(p) for name, p in spec.search.items()}
    cfg = ExperimentConfig.from_dict(spec.experiment_dict(mid))
    cfg = cfg.replace(train=cfg.train.replace(threads=threads, device="cpu"))
    return cfg if loc is None else cfg.replace(localisation=loc)


def timed(cfg: ExperimentConfig, cache: dict) -> float:
    t0 = time.perf_counter()
    train(cfg, data_cache=cache)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2, help="trials of each kind")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--study", default="quick", help="the spec whose trial is timed (the target is quick's)")
    ap.add_argument("--n-scenes", type=int, default=None, help="subset size (default: the spec's)")
    ap.add_argument("--every", type=int, default=None, help="cadence in epochs (default: the spec's)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    base = trial_config(args.study, args.threads, None).localisation
    loc = LocalisationConfig(
        n_scenes=base.n_scenes if args.n_scenes is None else args.n_scenes,
        every=base.every if args.every is None else args.every,
    )
    with_cfg = trial_config(args.study, args.threads, loc)
    without_cfg = trial_config(args.study, args.threads, LocalisationConfig(n_scenes=0))
    fixed_cfg = without_cfg.replace(pipeline=without_cfg.pipeline.replace(blend="fixed"))
    print(f"load average before: {os.getloadavg()[0]:.2f}; {args.threads} threads; {loc}")

    cache: dict = {}
    t0 = time.perf_counter()
    train(without_cfg.replace(train=without_cfg.train.replace(epochs=1)), data_cache=cache)
    warm_data = time.perf_counter() - t0
    t0 = time.perf_counter()
    reference(with_cfg.scenario, with_cfg.train.val_seed, loc)  # what train() builds once and caches
    ref_s = time.perf_counter() - t0
    print(f"one-time per process: data, calibration set + 1 epoch {warm_data:.1f} s, reference {ref_s:.2f} s")

    walls: dict[str, list[float]] = {"with": [], "without": [], "fixed": []}
    for i in range(args.repeats):
        kinds = (("without", without_cfg), ("with", with_cfg), ("fixed", fixed_cfg))
        for name, cfg in kinds if i % 2 == 0 else kinds[::-1]:
            walls[name].append(timed(cfg, cache))
            print(f"  trial {name:>7}: {walls[name][-1]:.1f} s", flush=True)
    med = {k: statistics.median(v) for k, v in walls.items()}
    share = (med["with"] - med["without"]) / med["with"]
    print(f"calibrated blend's refits: {med['without'] - med['fixed']:.1f} s per trial, ", end="")
    print(f"share {100 * (med['without'] - med['fixed']) / med['with']:.1f}% (fixed blend: {med['fixed']:.1f} s)")
    epochs = with_cfg.train.epochs
    runs = sum(loc.due(e, epochs) for e in range(epochs))
    print(f"{args.study} trial ({epochs} epochs): median {med['without']:.1f} s without, ", end="")
    print(f"{med['with']:.1f} s with the metric")
    verdict = "met" if share <= TARGET else "NOT met"
    scenes = loc.n_scenes * len(SNR_GRID_DB)
    print(f"metric: {runs} runs of {scenes} scenes per trial, share {100 * share:.1f}% ", end="")
    print(f"(<= {100 * TARGET:.0f}%: {verdict})")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
