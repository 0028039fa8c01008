"""Plain-data views of stored studies for `hpo studies`, `hpo best` and `hpo export` (JSON-ready dicts)."""

from __future__ import annotations

import csv
import io
import json
import re

import optuna
from optuna.trial import FrozenTrial

from hpo.results.tally import tally
from hpo.study import ranking

STUDY_COUNTS = ("complete", "pruned", "nan_pruned", "failed", "running", "best")  # study_rows' Tally columns


def _attr_order(name: str) -> tuple:
    """Sort key of a user attr: per-SNR attrs ("gross_rate@-5", "nmse_db@[-10,0)") follow their name in SNR order,
    where the storage's lexical order put @5 after @20."""
    prefix, _, point = name.partition("@")
    number = re.search(r"-?\d+(?:\.\d+)?", point)
    return prefix, bool(point), float(number.group()) if number else 0.0, point


def trial_dict(t: FrozenTrial) -> dict:
    """Every stored fact of one trial; datetimes as ISO strings, intermediate values keyed by epoch."""
    duration = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else None
    return {
        "number": t.number,
        "state": t.state.name,
        "values": t.values,
        "params": t.params,
        "user_attrs": dict(sorted(t.user_attrs.items(), key=lambda item: _attr_order(item[0]))),
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
        t, directions = tally(study), [d.name.lower() for d in study.directions]
        head = {"study": name, "spec": study.user_attrs.get("spec"), "directions": directions}
        rows.append({**head, **{k: getattr(t, k) for k in STUDY_COUNTS}})
    return rows


def best(study: optuna.Study, trials: list[FrozenTrial] | None = None) -> dict:
    """The best COMPLETE trials (hpo.study.ranking.leaders) of `trials` (default: the study's, read now) as trial
    dicts, and the values' names.

    Single objective: {"best": trial dict, "feasible": bool}, the best infeasible trial when none is feasible.
    Multi objective: {"pareto_front": [trial dicts], "feasible": bool}, the front of the feasible trials, or of
    all complete ones when none is feasible, ordered by the first value. "metric_names" is None for studies
    created before the names were set.
    """
    head = {"study": study.study_name, "metric_names": study.metric_names}
    trials = study.get_trials(deepcopy=False) if trials is None else trials
    chosen, feasible = ranking.leaders(trials, study.directions)
    if len(study.directions) > 1:
        return {**head, "feasible": feasible, "pareto_front": [trial_dict(t) for t in chosen]}
    if not chosen:
        return {**head, "best": None}
    return {**head, "feasible": feasible, "best": trial_dict(chosen[0])}


def named_values(summary: dict, trial: dict) -> str:
    """A trial's values with their names from best()'s summary: "val_nmse_db=-12.345 loc_gain_db=1.210"."""
    names = summary.get("metric_names") or [f"value_{i}" for i in range(len(trial["values"]))]
    return " ".join(f"{n}={v:.3f}" for n, v in zip(names, trial["values"], strict=True))


def trials(study: optuna.Study) -> list[dict]:
    """Every trial of the study, in number order, each with the names of its values ("metric_names")."""
    names = study.metric_names or [f"value_{i}" for i in range(len(study.directions))]
    return [{**trial_dict(t), "metric_names": names} for t in study.get_trials(deepcopy=False)]


def to_json(rows: list[dict]) -> str:
    return json.dumps(rows, indent=2, default=str)


def to_csv(rows: list[dict]) -> str:
    """One row per trial; a column per value, named by its metric, then params_*, user_attrs_* and constraints_*
    columns; nested values as JSON."""
    flat, first = [], ("number", "state", "datetime_start", "datetime_complete", "duration_s")
    for r in rows:
        row = {k: r[k] for k in first}
        row |= dict(zip(r["metric_names"], r["values"] or [None] * len(r["metric_names"]), strict=True))
        for group in ("params", "user_attrs", "constraints"):
            for k, v in r[group].items():
                row[f"{group}_{k}"] = json.dumps(v) if isinstance(v, (dict, list)) else v
        row["intermediate_values"] = json.dumps(r["intermediate_values"])
        flat.append(row)
    columns = list(dict.fromkeys([*first, *(k for row in flat for k in row)]))  # a study without trials: the header
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    return buf.getvalue()


EXPORTERS = {"json": to_json, "csv": to_csv}
