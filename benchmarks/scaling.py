"""Scaling of parallel workers on PostgreSQL; prints figures, asserts nothing.

1. trials/hour of `hpo run --study quick` with 1 and 2 workers (each on a fresh database), and their ratio;
2. storage operations/s and p50/p99 latency of report and should_prune with 8 and 16 processes of the
   trivial Probe objective;
3. 16 processes x 50 trivial trials: lost / duplicated / stuck trials.

Usage: .venv/bin/python benchmarks/scaling.py [--url postgresql+psycopg://postgres@127.0.0.1:5432/test]
       [--quick-trials 24] [--skip-quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
import sqlalchemy as sa
from optuna.trial import TrialState
from probe import probe_main

from hpo.run.processes import supervise
from hpo.storage import open_storage
from hpo.storage.guard import budget_used

HPO = str(Path(sys.executable).parent / "hpo")


@contextmanager
def fresh_database(url: str) -> Iterator[str]:
    """The URL of a new database on url's server, dropped afterwards with any connection still open to it."""
    name = f"hpo_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.engine.make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def quick_rate(url: str, workers: int, n_trials: int) -> tuple[float, float]:
    """Trials/hour of `hpo run --study quick --workers W` on a fresh database: (whole command, steady state).

    The whole command includes start-up (imports, spawning, data) and the end-of-run study plots; the steady
    state counts trials between the first trial's start and the last trial's end.
    """
    with fresh_database(url) as db, tempfile.TemporaryDirectory() as tmp:
        cmd = [HPO, "run", "--study", "quick", "--storage", db, "--n-trials", str(n_trials), "--json"]
        cmd += ["--workers", str(workers), "--artifacts", tmp]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=Path(__file__).resolve().parents[1])
        whole = n_trials / (time.perf_counter() - t0) * 3600
        trials = optuna.load_study(study_name="quick", storage=db).trials
    span = max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)
    return whole, len(trials) / span.total_seconds() * 3600


def probe_run(url: str, processes: int, n_trials: int, steps: int) -> dict:
    """Probe workers on a fresh database: ops/s, latencies (ms), lost/duplicated/stuck counts."""
    with fresh_database(url) as db, tempfile.TemporaryDirectory() as tmp:
        optuna.create_study(study_name="probe", storage=open_storage(db))
        outs = [str(Path(tmp) / f"{i}.json") for i in range(processes)]
        t0 = time.perf_counter()
        codes, _ = supervise(probe_main, [(db, "probe", n_trials, steps, 0.0, o) for o in outs])
        wall = time.perf_counter() - t0
        lat = {"report": [], "should_prune": []}
        for o in outs:
            if Path(o).exists():
                for k, v in json.loads(Path(o).read_text()).items():
                    lat[k] += v
        trials = optuna.load_study(study_name="probe", storage=db).trials
    numbers = [t.number for t in trials]
    ops = len(lat["report"]) + len(lat["should_prune"])
    pct = {k: (1e3 * statistics.median(v), 1e3 * statistics.quantiles(v, n=100)[98]) for k, v in lat.items() if v}
    return {
        "codes": codes,
        "ops_per_s": ops / wall,
        "latency_ms": pct,
        "lost": max(0, n_trials - budget_used(trials)),
        "duplicated": len(numbers) - len(set(numbers)) + max(0, budget_used(trials) - n_trials),
        "stuck": sum(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--quick-trials", type=int, default=24, help="trials per quick run (default 24)")
    ap.add_argument("--skip-quick", action="store_true")
    args = ap.parse_args()
    if not args.skip_quick:
        rates = [quick_rate(args.url, w, args.quick_trials) for w in (1, 2)]
        for k, label in enumerate(("whole command", "steady state")):
            one, two = rates[0][k], rates[1][k]
            n = args.quick_trials
            print(f"quick, {n} trials, {label}: 1 worker {one:.0f} trials/h, 2 workers {two:.0f}, x{two / one:.2f}")
    for processes in (8, 16):
        r = probe_run(args.url, processes, 20 * processes, steps=5)
        lat = ", ".join(f"{k} p50 {p50:.1f} ms p99 {p99:.1f} ms" for k, (p50, p99) in r["latency_ms"].items())
        print(f"{processes} processes: {r['ops_per_s']:.0f} report+should_prune ops/s; {lat}")
    r = probe_run(args.url, 16, 16 * 50, steps=1)
    print(f"16 processes x 50 trivial trials: lost {r['lost']}, duplicated {r['duplicated']}, stuck {r['stuck']}")


if __name__ == "__main__":
    main()
