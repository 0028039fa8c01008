"""`hpo studies`, `hpo best`, `hpo export` and `hpo report`: what stored studies hold, for people and scripts."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import optuna
import typer
from rich.table import Table
from rich.text import Text

from core.errors import CovblendError
from hpo.cli.common import Artifacts, AsJson, Storage, StudyName, load
from hpo.console import console_of_width, data, out, say, shown, warn
from hpo.paths import default_output, prepare_output
from hpo.results import views
from hpo.results.html_report import write_report
from hpo.run.display import fmt, params_table
from hpo.run.signals import stopping_with
from hpo.storage import open_storage
from hpo.storage.artifacts import download_checkpoint, open_store, read_store
from hpo.storage.urls import resolve_url
from hpo.study import ranking

STUDIES_WIDTH = 160  # off a terminal (logs, pipes) the table's headers and names arrive whole, not cut at 80 columns
Format = Enum("Format", [(name, name) for name in views.EXPORTERS], type=str)  # --format: views.EXPORTERS


def studies(storage: Storage = None, as_json: AsJson = False) -> None:
    """List the studies in the storage with trial counts and best values."""
    rows = views.study_rows(open_storage(resolve_url(storage), create=False, heartbeat=False))
    if as_json:
        out.print_json(views.to_json(rows))
        return
    table = Table(*rows[0].keys()) if rows else Table("study")
    for r in rows:
        cells = (fmt(v) if not isinstance(v, list) else ",".join(v) for v in r.values())
        table.add_row(*(Text(shown(cell)) for cell in cells))  # Text: no markup read from a name
    console_of_width(STUDIES_WIDTH).print(table)


def best(
    study: StudyName,
    storage: Storage = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    download: Annotated[
        str | None,
        typer.Option(
            "--download", help="Copy the best trial's checkpoint to this new file (lowest NMSE on a Pareto front)."
        ),
    ] = None,
    artifacts: Artifacts = None,
) -> None:
    """The best feasible trial (single objective) or the Pareto front (multi objective)."""
    the_study = load(storage, study)
    trials = the_study.get_trials(deepcopy=False)  # read once: the summary and the download name the same trial
    summary = views.best(the_study, trials)
    if download is not None:
        trial = ranking.best(trials, the_study.directions)
        if trial is None:
            raise CovblendError(f"study {study!r} has no complete trial, so no checkpoint to download")
        download_checkpoint(the_study, trial, open_store(artifacts, create=False), Path(download))
        say(f"checkpoint of trial #{trial.number} written to {download}")
    if as_json:
        out.print_json(views.to_json(summary))
        return
    chosen = [summary["best"]] if summary.get("best") else summary.get("pareto_front", [])
    if not chosen:
        say(f"study {study!r} has no complete trial yet", out)
    for t in chosen:
        feasible = summary.get("feasible", True)
        infeasible = "" if feasible else " (infeasible: low health)"
        say(f"trial #{t['number']}: values={t['values']}{infeasible}", out)
        out.print(params_table(t["params"], title="params"))
        attrs = {k: fmt(v) for k, v in t["user_attrs"].items() if not isinstance(v, (dict, list))}
        out.print(params_table(attrs, title="user attrs", heading="attribute"))


def export(
    study: StudyName,
    format_: Annotated[Format, typer.Option("--format", help="csv or json.")] = Format.json,
    out_path: Annotated[
        str | None, typer.Option("--out", help="Write to this file instead of stdout ('-' is stdout, as for cat).")
    ] = None,
    storage: Storage = None,
) -> None:
    """Every trial with params, values, state, user attrs, constraints and intermediate values."""
    text = views.EXPORTERS[format_.value](views.trials(load(storage, study)))
    if out_path in (None, "-"):
        data(text)
        return
    target = prepare_output(Path(out_path))
    target.write_text(text)
    say(f"wrote {target}")


def html_report(
    study: StudyName,
    out_path: Annotated[str, typer.Option("--out", help="HTML file to write (self-contained, offline).")] = str(
        default_output("report.html")
    ),
    storage: Storage = None,
    artifacts: Artifacts = None,
) -> None:
    """One offline HTML page: history, importances, parallel coordinates, pruning, top 10, RMSE vs SNR."""
    the_study = load(storage, study)  # before out/ is made: a missing study leaves nothing behind
    store = read_store(artifacts)  # only read: a report never makes an artifact folder
    target = prepare_output(Path(out_path))
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # "no complete trials" from each plot: the page says it once
    with stopping_with("nothing written (the page comes at the end); run the same command again"):
        missing = write_report(the_study, store, target)  # it may evaluate the best trial: seconds to minutes
    if missing:
        warn(f"{missing}: the report has no RMSE-vs-SNR curve")
    say(f"wrote {out_path}")
