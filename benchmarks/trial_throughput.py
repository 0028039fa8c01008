"""Trials/hour of the `quick` study, and the share of trial time spent outside training.

    python benchmarks/trial_throughput.py [--trials 8] [--threads 2] [--postgres URL]

For SQLite (a temp file) and PostgreSQL (a throwaway database on the server at --postgres, default
$HPO_TEST_POSTGRES_URL or postgresql+psycopg://postgres@127.0.0.1:5432/test) it runs the same quick trials
through the real runner and prints: median trial wall time, trials/hour, the best trial's NMSE gain of R_blend
over R_samp (dB, > 0 means it learned), and the overhead share

    overhead = 1 - (time inside core.train.train, less its epoch callbacks) / (wall time of the worker loop)

i.e. storage writes and reads, sampler, pruner, budget checks and study bookkeeping. Data generation is
timed apart: it happens once per process (the objective caches datasets), so a warm-up trial runs first.
Absolute times are noisy on shared machines (the 1-minute load average is printed before and after; above
~2 on 2 cores other work competes with torch's threads), compare the two rows of one run. The last line
says which of the issue's targets the run met: median <= 15 s, overhead <= 2% on PostgreSQL, best gain > 0.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import optuna
import sqlalchemy as sa
import torch
from trial_timing import TimedObjective

from core.scenario import generate
from hpo.run.runner import RunWatcher, run_worker
from hpo.storage import open_storage
from hpo.storage.urls import mask
from hpo.study.create import create_or_join
from hpo.study.spec import load_spec

REPO = Path(__file__).resolve().parents[1]
MEDIAN_TARGET_S = 15.0  # a quick trial's median wall time on 2 cores, at most
OVERHEAD_TARGET = 0.02  # share of trial time outside training on PostgreSQL, at most


class Clock(RunWatcher):
    """Wall time of each trial, from the worker loop's point of view (ask to tell)."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.walls: list[float] = []

    def trial_started(self, study) -> None:
        self.starts.append(time.perf_counter())

    def trial_finished(self, study, trial) -> None:
        self.walls.append(time.perf_counter() - self.starts[-1])


def measure(spec, url: str, n_trials: int, objective: TimedObjective) -> dict:
    study, _ = create_or_join(spec, open_storage(url), f"bench-{uuid.uuid4().hex[:8]}")
    clock = Clock()
    objective.timings.clear()
    t0 = time.perf_counter()
    run_worker(spec, study, n_trials, watcher=clock, objective=objective)
    loop = time.perf_counter() - t0
    pure = sum(t.train_s - t.callback_s for t in objective.timings)
    states = [t.state.name for t in study.trials]
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    best = min(done, key=lambda t: t.value) if done else None
    return {
        "median_s": statistics.median(clock.walls),
        "per_hour": 3600 * n_trials / loop,
        "overhead": 1 - pure / loop,
        "overhead_ms": 1000 * (loop - pure) / n_trials,
        "callback_ms": 1000 * statistics.mean(t.callback_s for t in objective.timings),
        "complete": states.count("COMPLETE"),
        "pruned": states.count("PRUNED"),
        "best_gain_db": best.user_attrs["gain_db"] if best else float("nan"),  # > 0: R_blend beats R_samp
    }


def targets(results: dict[str, dict]) -> str:
    """One line: each target of the issue, met or missed, from the rows measured."""
    checks = [
        (f"median <= {MEDIAN_TARGET_S:.0f} s", all(r["median_s"] <= MEDIAN_TARGET_S for r in results.values())),
        ("best gain > 0 dB", all(r["best_gain_db"] > 0 for r in results.values())),
    ]
    if "postgresql" in results:
        checks.append(
            (f"PostgreSQL overhead <= {OVERHEAD_TARGET:.0%}", results["postgresql"]["overhead"] <= OVERHEAD_TARGET)
        )
    return "targets: " + ", ".join(f"{what}: {'met' if ok else 'MISSED'}" for what, ok in checks)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=8, help="timed trials per backend (default 8)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    default_pg = os.environ.get("HPO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--postgres", default=default_pg, help="server URL; a throwaway database is made on it")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    torch.set_num_threads(args.threads)
    spec = load_spec(REPO / "studies" / "quick.toml")
    print(
        f"quick: {spec.train.epochs} epochs, n_train={spec.train.n_train}, n_val={spec.train.n_val}, "
        f"threads={torch.get_num_threads()}, torch={torch.__version__}, optuna={optuna.__version__}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )

    scenario = spec.scenario
    t0 = time.perf_counter()
    generate(scenario, spec.train.n_train, seed=spec.train.seed)
    generate(scenario, spec.train.n_val, seed=spec.train.val_seed)
    print(f"data generation, once per process (cached across trials): {time.perf_counter() - t0:.3f} s")

    objective = TimedObjective(spec)
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        run_worker(spec, create_or_join(spec, open_storage(sqlite_url), "warmup")[0], 1, objective=objective)
        rows = [("sqlite", sqlite_url)]
        admin = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        db = f"hpo_bench_{uuid.uuid4().hex[:8]}"
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{db}"'))
            rows.append(("postgresql", sa.engine.make_url(args.postgres).set(database=db).render_as_string(False)))
        except sa.exc.OperationalError as e:
            print(f"PostgreSQL unavailable at {mask(args.postgres)}: {str(e.orig).splitlines()[0]}")
        head = f"{'backend':<12}{'trials':>7}{'median s':>10}{'trials/h':>10}{'overhead':>10}{'ms/trial':>10}"
        print(head + f"{'callbacks ms':>14}{'best gain dB':>14}  complete/pruned")
        results = {}
        try:
            for name, url in rows:
                r = results[name] = measure(spec, url, args.trials, objective)
                print(
                    f"{name:<12}{args.trials:>7}{r['median_s']:>10.2f}{r['per_hour']:>10.0f}{r['overhead']:>10.2%}"
                    f"{r['overhead_ms']:>10.0f}{r['callback_ms']:>14.0f}{r['best_gain_db']:>14.2f}"
                    f"  {r['complete']}/{r['pruned']}"
                )
            print(f"load average after: {os.getloadavg()[0]:.2f}")
            print(targets(results))
        finally:
            if len(rows) > 1:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
