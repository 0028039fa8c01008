"""Which trials are best, for every command, display and upload (docs/design.md §7, "Ranking").

Feasible: every constraint <= 0 (Optuna's convention: threshold - health). Values are signed by the study's
directions (sign * value: lower is better). Multi objective: the Pareto front, ordered by its values in turn;
its first trial is "the best".
"""

from __future__ import annotations

from collections.abc import Sequence

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState


def is_feasible(constraints: dict) -> bool:
    """A trial meets the study's constraints (Optuna's convention: each value <= 0, e.g. threshold − health)."""
    return all(v <= 0 for v in constraints.values())


def signed(values: Sequence[float], directions: Sequence[StudyDirection]) -> list[float]:
    """The values signed by direction (a maximised one negated), so that lower is always better."""
    return [v if d == StudyDirection.MINIMIZE else -v for d, v in zip(directions, values, strict=True)]


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """a dominates b, both 'lower is better' in every entry: a <= b everywhere and a < b somewhere."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def ranked(trials: Sequence[FrozenTrial], directions: Sequence[StudyDirection]) -> list[FrozenTrial]:
    """The COMPLETE trials, feasible ones first, then by their signed values; ties keep trial order."""
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    return sorted(done, key=lambda t: (not is_feasible(t.constraints), signed(t.values, directions)))


def front(trials: Sequence[FrozenTrial], directions: Sequence[StudyDirection]) -> list[FrozenTrial]:
    """The trials no other of them dominates, ordered by their signed values."""
    values = {t.number: signed(t.values, directions) for t in trials}
    kept = [t for t in trials if not any(dominates(values[o.number], values[t.number]) for o in trials)]
    return sorted(kept, key=lambda t: values[t.number])


def leaders(trials: Sequence[FrozenTrial], directions: Sequence[StudyDirection]) -> tuple[list[FrozenTrial], bool]:
    """The best COMPLETE trials and whether they are feasible.

    Single objective: [the best trial] ([] without a complete trial); multi objective: the Pareto front. Both
    come from the feasible trials, or from every complete one when none is feasible (then the flag is False).
    """
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    feasible = [t for t in done if is_feasible(t.constraints)]
    pool = feasible or done
    if len(directions) > 1:
        return front(pool, directions), bool(feasible)
    return ranked(pool, directions)[:1], bool(feasible)


def best(trials: Sequence[FrozenTrial], directions: Sequence[StudyDirection]) -> FrozenTrial | None:
    """The first of leaders(): the best trial, or on a Pareto front the one with the lowest first value."""
    chosen, _ = leaders(trials, directions)
    return chosen[0] if chosen else None


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """best() of the study's trials: the trial `hpo best` names (on a Pareto front, the lowest first value)."""
    return best(study.get_trials(deepcopy=False), study.directions)


def beats_best(study: optuna.Study, values: Sequence[float], feasible: bool = True) -> bool:
    """Whether a trial with these values (and feasibility) beats every COMPLETE trial of the study so far.

    Single objective: it ranks before each of them. Multi objective: none of them dominates it.
    """
    directions, mine = study.directions, signed(values, study.directions)
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(directions) == 1:
        return all((not feasible, mine) < (not is_feasible(t.constraints), signed(t.values, directions)) for t in done)
    return not any(dominates(signed(t.values, directions), mine) for t in done)
