"""How long one stop signal takes on a frozen database server; prints figures, asserts nothing.

A private PostgreSQL 15 (tests/pgserver.py: initdb and pg_ctl, as the postgres user) serves `hpo run` of a small
spec whose trials are long; once every worker is inside a trial the server is frozen (SIGSTOP: it accepts TCP but
never answers) and `hpo run` gets one SIGTERM. Printed per case: seconds from the signal to the exit, the exit
code and the last line. The `hpo run` processes see the default timeouts unless --call-timeout and
--connect-timeout are given (HPO_CALL_TIMEOUT_S, HPO_CONNECT_TIMEOUT_S).

Usage: .venv/bin/python benchmarks/frozen_stop.py [--workers 1 2] [--repeats 3] [--call-timeout S]
       [--connect-timeout S]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.hpo.conftest import TINY_SPEC  # noqa: E402 (the repository root is not on the script's path)
from tests.pgserver import PrivatePostgres  # noqa: E402

HPO = str(Path(sys.executable).parent / "hpo")
SPEC = TINY_SPEC.replace("n_trials = 3", "n_trials = 50").replace("epochs = 2", "epochs = 500")  # long trials


def running_with_epochs(url: str) -> int:
    """Trials of the study that are RUNNING and have reported an epoch (0 while the server cannot be read)."""
    try:
        study = optuna.load_study(study_name="frozen", storage=url)
    except Exception:  # not created yet
        return 0
    return sum(bool(t.intermediate_values) for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,)))


def one_stop(pg: PrivatePostgres, workers: int, folder: Path, env: dict) -> tuple[float, int, str]:
    """(seconds from SIGTERM to exit, exit code, last stderr line) of one `hpo run` stopped on the frozen server."""
    cmd = [HPO, "run", "--study", str(folder / "frozen.toml"), "--storage", pg.url, "--json", "--workers", str(workers)]
    proc = subprocess.Popen(cmd, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while running_with_epochs(pg.url) < workers:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"hpo run did not start its trials: {proc.stderr.read()[-2000:]}")
            time.sleep(0.3)
        pg.freeze()
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=600)
        return time.monotonic() - start, proc.returncode, (err.strip().splitlines() or [""])[-1]
    finally:
        proc.kill()
        pg.thaw()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="--workers of each case")
    parser.add_argument("--repeats", type=int, default=3, help="stops per case")
    parser.add_argument("--call-timeout", type=int, help="HPO_CALL_TIMEOUT_S of hpo run (default: its own)")
    parser.add_argument("--connect-timeout", type=int, help="HPO_CONNECT_TIMEOUT_S of hpo run (default: its own)")
    args = parser.parse_args()
    why = PrivatePostgres.available()
    if why:
        raise SystemExit(f"error: no private PostgreSQL here: {why}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPO_")}
    for name, value in (("HPO_CALL_TIMEOUT_S", args.call_timeout), ("HPO_CONNECT_TIMEOUT_S", args.connect_timeout)):
        if value is not None:
            env[name] = str(value)
    timeouts = ", ".join(f"{k}={v}" for k, v in env.items() if k.startswith("HPO_")) or "default timeouts"
    print(f"one SIGTERM on a frozen private PostgreSQL 15; {timeouts}")
    for workers in args.workers:
        for repeat in range(args.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp)
                (folder / "frozen.toml").write_text(SPEC)
                env["HPO_ARTIFACTS"] = str(folder / "artifacts")
                pg = PrivatePostgres().start()
                try:
                    seconds, code, line = one_stop(pg, workers, folder, env)
                finally:
                    pg.stop()
            print(f"--workers {workers}, run {repeat + 1}: {seconds:.1f} s, exit {code}: {line}")


if __name__ == "__main__":
    main()
