"""How fast a study goes: measured seconds per trial and the time left for its budget (the live display's ETA),
measured because a spec's quoted times hold on quiet cores only (DESIGN §7).
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence

from optuna.trial import FrozenTrial, TrialState

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)  # failed trials stop at an error, which says nothing of pace


def trial_seconds(trials: Sequence[FrozenTrial]) -> float | None:
    """Median wall seconds from start to end of the finished (COMPLETE or PRUNED) trials; None before any."""
    spans = [
        (t.datetime_complete - t.datetime_start).total_seconds()
        for t in trials
        if t.state in FINISHED and t.datetime_start and t.datetime_complete
    ]
    return statistics.median(spans) if spans else None


def eta_seconds(per_trial: float, not_started: int, running_left: float, parallel: int) -> float:
    """Seconds until the budget is done.

    per_trial: seconds one trial takes; not_started: trials of the budget no one has started yet; running_left:
    the fractions of running trials still to do, summed (e.g. 0.5 for one trial at half its epochs); parallel:
    trials that run at once (>= 1).
    """
    if min(per_trial, not_started, running_left) < 0 or parallel < 1:
        raise ValueError(
            f"need inputs >= 0 and parallel >= 1, got {per_trial=}, {not_started=}, {running_left=}, {parallel=}"
        )
    return per_trial * (not_started + running_left) / parallel


def duration(seconds: float) -> str:
    """Seconds for people: '8.4 s', '4m10s', '2h05m'."""
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, s = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{s:02d}s"
    hours, m = divmod(minutes, 60)
    return f"{hours}h{m:02d}m"


def load_note(load: float | None = None, cores: int | None = None) -> str | None:
    """A warning when the 1-minute load average exceeds the cores (trials then run slower than specs say)."""
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:  # not available on this platform
            return None
    cores = cores or os.cpu_count() or 1
    if load <= cores:
        return None
    return (
        f"load average {load:.1f} on {cores} cores: other processes share the CPUs, so trials run slower than "
        "the spec's estimate (the display shows the measured s/trial)"
    )
