"""A trivial objective for load tests of the storage and the worker loop: benchmarks/scaling.py and the fault
tests (tests/hpo/storage/test_faults.py) run it in many processes, so the faults and the database, not
training, take the time.
"""

from __future__ import annotations

import json
import time

import optuna

from hpo.run.processes import publish_trial
from hpo.run.runner import run_worker
from hpo.storage import open_storage


class Probe:
    """A trivial objective for load tests: one float, `steps` report/should_prune calls, ~no compute.

    run_worker calls it as it calls hpo.study.objective.Objective, (trial, hooks); it has no epochs to tell the hooks
    of. The seconds each report and should_prune took are kept in `latencies` (storage round trips plus the pruner's
    reads).
    """

    def __init__(self, steps: int = 3, sleep_s: float = 0.0) -> None:
        self.steps = steps
        self.sleep_s = sleep_s
        self.latencies: dict[str, list[float]] = {"report": [], "should_prune": []}

    def __call__(self, trial: optuna.Trial, hooks=None) -> float:
        x = trial.suggest_float("x", -1.0, 1.0)
        for step in range(self.steps):
            time.sleep(self.sleep_s)
            t0 = time.perf_counter()
            trial.report(x * x + 1.0 / (step + 1), step)
            t1 = time.perf_counter()
            pruned = trial.should_prune()
            self.latencies["report"].append(t1 - t0)
            self.latencies["should_prune"].append(time.perf_counter() - t1)
            if pruned:
                raise optuna.TrialPruned()
        return x * x


def probe_main(
    url: str, study_name: str, n_trials: int, steps: int, sleep_s: float = 0.0, out_path: str | None = None
) -> None:
    """Body of one load-test worker: Probe trials until the study's budget is used; latencies to out_path."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(
        study_name=study_name,
        storage=open_storage(url),
        sampler=optuna.samplers.RandomSampler(),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5),
    )
    probe = Probe(steps, sleep_s)
    run_worker(None, study, n_trials, objective=probe, on_trial=publish_trial)
    if out_path:
        with open(out_path, "w") as f:
            json.dump(probe.latencies, f)
