"""A study's trials counted: by state, NaN-pruned apart, prune reasons, and what its best trial says.

The best trial is hpo.study.ranking's; `hpo studies`, `hpo run --json` and the live display read it here.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from hpo.study import ranking
from hpo.study.objective import NONFINITE


@dataclass(frozen=True)
class Tally:
    """Trial counts of a study, its best value so far, and what the best trial says about itself."""

    complete: int
    pruned: int  # pruned by the pruner (or a non-finite metric)
    nan_pruned: int  # pruned for a non-finite loss or gradient
    failed: int
    running: int
    waiting: int  # queued, e.g. retries of stale trials
    best: float | None  # the best trial's (first) value: hpo.study.ranking.best
    best_number: int | None
    best_gain_db: float | None = None  # the best trial's NMSE gain over R_samp, dB (> 0: R_blend is better)
    best_health: float | None = None  # the best trial's final eigengap health, in [0, 1]
    prune_reasons: dict[str, int] = field(default_factory=dict)  # PRUNED trials per prune_reason, most first
    best_feasible: bool = True  # False: no trial meets the constraints, so the best infeasible one stands in


# The objective's names for the validation NMSE of R_blend, newest first (older studies used the first one).
NMSE_ATTRS = ("nmse_db", "val_nmse_db")


def _number(value) -> float | None:
    """A finite float from a stored attr value, else None (bool, str and NaN are no numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def gain_over_samp(attrs: dict) -> float | None:
    """NMSE gain of R_blend over R_samp in dB from a trial's user attrs: gain_db, else nmse_samp_db − NMSE."""
    if "gain_db" in attrs:
        return _number(attrs["gain_db"])
    samp = _number(attrs.get("nmse_samp_db"))
    nmse = next((v for v in (_number(attrs.get(k)) for k in NMSE_ATTRS) if v is not None), None)
    return None if samp is None or nmse is None else samp - nmse


def final_health(attrs: dict) -> float | None:
    """A trial's final eigengap health from its user attrs, however it was stored.

    eigengap_health_final (a number) wins; else eigengap_health, either a number (the final value) or the
    per-epoch list (its last entry is the final value).
    """
    for key in ("eigengap_health_final", "eigengap_health"):
        value = attrs.get(key)
        if isinstance(value, list):
            value = value[-1] if value else None
        found = _number(value)
        if found is not None:
            return found
    return None


def tally(study: optuna.Study) -> Tally:
    """tally_trials of the study's trials, from one read."""
    return tally_trials(study.get_trials(deepcopy=False), study.directions)


def tally_trials(trials: Sequence[FrozenTrial], directions: Sequence[StudyDirection]) -> Tally:
    """Counts by state, NaN-pruned apart, prune reasons, and the best trial's value, gain and health."""
    count = {s: 0 for s in TrialState}
    reasons: Counter[str] = Counter()
    for t in trials:
        count[t.state] += 1
        if t.state == TrialState.PRUNED:
            reasons[t.user_attrs.get("prune_reason") or "other"] += 1
    nan = reasons[NONFINITE]
    best = ranking.best(trials, directions)
    return Tally(
        complete=count[TrialState.COMPLETE],
        pruned=count[TrialState.PRUNED] - nan,
        nan_pruned=nan,
        failed=count[TrialState.FAIL],
        running=count[TrialState.RUNNING],
        waiting=count[TrialState.WAITING],
        best=best.values[0] if best else None,
        best_number=best.number if best else None,
        best_gain_db=gain_over_samp(best.user_attrs) if best else None,
        best_health=final_health(best.user_attrs) if best else None,
        prune_reasons=dict(reasons.most_common()),
        best_feasible=best is None or ranking.is_feasible(best.constraints),
    )
