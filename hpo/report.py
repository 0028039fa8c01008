"""Plain-data views of stored studies for `hpo studies`, `hpo best` and `hpo export` (JSON-ready dicts)."""

from __future__ import annotations

import csv
import io
import json

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpo.runner import tally
from hpo.spec import is_feasible


def _trial_dict(t: FrozenTrial) -> dict:
    """Every stored fact of one trial; datetimes as ISO strings, intermediate values keyed by epoch."""
    duration = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else None
    return {
        "number": t.number,
        "state": t.state.name,
        "values": t.values,
        "params": t.params,
        "user_attrs": t.user_attrs,
        "constraints": t.constraints,
        "intermediate_values": {str(k): v for k, v in sorted(t.intermediate_values.items())},
        "datetime_start": t.datetime_start.isoformat() if t.datetime_start else None,
        "datetime_complete": t.datetime_complete.isoformat() if t.datetime_complete else None,
        "duration_s": duration,
    }


def study_rows(storage: optuna.storages.BaseStorage) -> list[dict]:
    """One dict per study: name, spec, directions, counts by state and best value."""
    rows = []
    for name in sorted(optuna.get_all_study_names(storage)):
        study = optuna.load_study(study_name=name, storage=storage)
        t = tally(study)
        rows.append(
            {
                "study": name,
                "spec": study.user_attrs.get("spec"),
                "directions": [d.name.lower() for d in study.directions],
                "complete": t.complete,
                "pruned": t.pruned,
                "nan_pruned": t.nan_pruned,
                "failed": t.failed,
                "running": t.running,
                "best": t.best,
            }
        )
    return rows


def best(study: optuna.Study) -> dict:
    """Single objective: the best feasible trial ({"feasible": False, ...} best infeasible when none is).

    Multi objective: {"pareto_front": [trial dicts]}.
    """
    if len(study.directions) > 1:
        return {"study": study.study_name, "pareto_front": [_trial_dict(t) for t in study.best_trials]}
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if not done:
        return {"study": study.study_name, "best": None}
    feasible = [t for t in done if is_feasible(t.constraints)]
    chosen = min(feasible or done, key=lambda t: t.values[0])
    return {"study": study.study_name, "feasible": bool(feasible), "best": _trial_dict(chosen)}


def trials(study: optuna.Study) -> list[dict]:
    """Every trial of the study, in number order."""
    return [_trial_dict(t) for t in study.get_trials(deepcopy=False)]


def to_json(rows: list[dict]) -> str:
    return json.dumps(rows, indent=2, default=str)


def to_csv(rows: list[dict]) -> str:
    """One row per trial; params_*, user_attrs_* and values_* columns; nested values as JSON."""
    flat = []
    for r in rows:
        row = {k: r[k] for k in ("number", "state", "datetime_start", "datetime_complete", "duration_s")}
        row["values"] = json.dumps(r["values"])
        for group in ("params", "user_attrs", "constraints"):
            for k, v in r[group].items():
                row[f"{group}_{k}"] = json.dumps(v) if isinstance(v, (dict, list)) else v
        row["intermediate_values"] = json.dumps(r["intermediate_values"])
        flat.append(row)
    columns = list(dict.fromkeys(k for row in flat for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    return buf.getvalue()


EXPORTERS = {"json": to_json, "csv": to_csv}
