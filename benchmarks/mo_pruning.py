"""The multi-objective pruner (hpo.study.pruners, "mo-asha") in a real study: how many trials it stops, and the front.

    python benchmarks/mo_pruning.py [--trials 16] [--storage sqlite:///mo.db] [--small]

Runs studies/pareto.toml (quick's search on (val NMSE, angle_eff_db)) through the real runner and prints each
trial's state, the epoch a pruned one stopped at, the share of trials pruned (target >= 25%) and the Pareto
front with the study's metric names, i.e. what optuna-dashboard shows for it:

    optuna-dashboard <storage>

--small shrinks the data and epochs (1024 training scenes, 256 validation, 64 localised, 8 epochs) so 16
trials fit in a few minutes on a shared 2-core machine; the search, pruner and objectives are pareto.toml's.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid

from optuna.trial import TrialState

from hpo.results.views import best, named_values
from hpo.run.runner import run_worker
from hpo.storage import open_storage
from hpo.storage.urls import mask
from hpo.study.create import create_or_join
from hpo.study.objective import Objective
from hpo.study.pruners import CURVE_ATTR
from hpo.study.spec import load_spec

TARGET = 0.25  # share of trials pruned, at least


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--storage", default="sqlite:///mo_pruning.db")
    ap.add_argument("--small", action="store_true", help="less data and fewer epochs, same search and pruner")
    args = ap.parse_args()
    spec = load_spec("pareto")
    if args.small:
        spec = spec.replace(
            train=spec.train.replace(n_train=1024, n_val=256, epochs=8),
            localisation=spec.localisation.replace(n_scenes=64),
        )
    name = f"pareto-{uuid.uuid4().hex[:6]}"
    study, _ = create_or_join(spec, open_storage(args.storage), name)
    print(f"study {name} on {mask(args.storage)}; load average {os.getloadavg()[0]:.2f}; {spec.pruner}")
    t0 = time.perf_counter()
    run_worker(spec, study, args.trials, objective=Objective(spec))
    wall = time.perf_counter() - t0
    trials = study.get_trials(deepcopy=False)
    for t in trials:
        steps = sorted(int(s) for s in t.user_attrs.get(CURVE_ATTR, {}))
        stop = f" at epoch {t.user_attrs.get('epoch')}" if t.state == TrialState.PRUNED else ""
        print(f"  #{t.number:>2} {t.state.name:<8}{stop:<12} epochs measured {len(steps)}  params {t.params}")
    pruned = sum(t.state == TrialState.PRUNED for t in trials)
    share = pruned / len(trials)
    verdict = "met" if share >= TARGET else "NOT met"
    print(
        f"{pruned} of {len(trials)} trials pruned ({100 * share:.0f}%; >= {100 * TARGET:.0f}%: {verdict}), {wall:.0f} s"
    )
    summary = best(study)
    print(f"metric names: {study.metric_names}; Pareto front (feasible: {summary['feasible']}):")
    for t in summary["pareto_front"]:
        print(f"  #{t['number']}: {named_values(summary, t)}")
    print(f"see it: optuna-dashboard {mask(args.storage)}  (study {name})")


if __name__ == "__main__":
    main()
