"""The `hpo` command line: thin commands over hpo/ (spec, storage, runner, report, display).

Every CovblendError (bad spec, bad URL, unknown study, bad option) is one line on stderr and exit code 2.
Results are Rich tables, or JSON with --json for scripts.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
import typer
from rich.console import Console
from rich.table import Table

from core.errors import CovblendError
from hpo.paths import default_output, prepare_output
from hpo.provenance import versions
from hpo.run.gpus import requested_gpus
from hpo.storage import STORAGE_HELP

app = typer.Typer(
    help="Hyperparameter optimisation for learned near-field array covariances.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
ARTIFACTS_HELP = "Artifact directory (best checkpoints); default $HPO_ARTIFACTS, else ./artifacts."


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn any CovblendError into a single stderr line and exit code 2."""
    try:
        yield
    except CovblendError as e:
        err.print(f"error: {e}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _positive(name: str, value: float | None) -> None:
    if value is not None and value <= 0:
        raise CovblendError(f"{name} must be positive, got {name}={value}")


def next_steps(study: str, url: str, storage: str | None, artifacts: str | None, has_best: bool) -> list[str]:
    """The commands that follow `hpo run` on this study, ready to paste; a password never appears.

    storage and artifacts are the run's options (None: not given). A URL from $HPO_STORAGE is written as
    "$HPO_STORAGE", so the command finds the password where the run did; a URL given with --storage is masked,
    and a last line says what *** stands for.
    """
    from hpo.storage import STORAGE_ENV, mask

    where = f'"${STORAGE_ENV}"' if storage is None and os.environ.get(STORAGE_ENV) else shlex.quote(mask(url))
    opts = f"--storage {where}" + ("" if artifacts is None else f" --artifacts {shlex.quote(artifacts)}")
    name = shlex.quote(study)
    checkpoint = default_output("best.pt")
    lines = [f"hpo dashboard {opts}"]
    if has_best:
        lines += [
            f"hpo best --study {name} {opts} --download {checkpoint}",
            f"hpo evaluate --checkpoint {checkpoint} --json {default_output('eval.json')} "
            f"--plot {default_output('eval.png')}",
        ]
    lines.append(f"hpo report --study {name} {opts}")
    if "***" in where:
        lines.append(f"(*** is the storage password: put the URL in ${STORAGE_ENV} to keep it off command lines)")
    return lines


def _load(storage: str | None, study: str):
    """The named existing study, opened without creating anything."""
    from hpo.storage import open_existing_study

    return open_existing_study(storage, study)[0]


@app.command()
def version(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """Show the versions of covblend-hpo and of the libraries its results depend on."""
    found = versions()
    if as_json:
        out.print_json(json.dumps(found))
        return
    table = Table("package", "version")
    for name, v in found.items():
        table.add_row(name, v)
    out.print(table)


@app.command()
def run(
    study: str = typer.Option(..., "--study", help="Spec name in studies/ (or $HPO_STUDIES_DIR), or a .toml path."),
    storage: str | None = typer.Option(None, "--storage", help=STORAGE_HELP),
    n_trials: int | None = typer.Option(
        None, "--n-trials", help="The study's TOTAL trial budget across runs and workers; default from the spec."
    ),
    timeout: float | None = typer.Option(None, "--timeout", help="Stop starting new trials after this many seconds."),
    seed: int | None = typer.Option(
        None, "--seed", help="Sampler seed; overrides the seed in the spec's sampler section."
    ),
    study_name: str | None = typer.Option(None, "--study-name", help="Name in storage; default the spec's name."),
    as_json: bool = typer.Option(False, "--json", help="No live display; print the final summary as JSON."),
    artifacts: str | None = typer.Option(None, "--artifacts", help=ARTIFACTS_HELP),
    workers: int = typer.Option(
        1, "--workers", help="Worker processes on this host sharing the study, each with cores // W torch threads."
    ),
    create_only: bool = typer.Option(False, "--create-only", help="Create (or join) the study, run no trial."),
    gpus: str | None = typer.Option(
        None,
        "--gpus",
        envvar="HPO_GPUS",
        help="GPU indices the workers take round-robin, e.g. 0,1 (several may share one); default $HPO_GPUS.",
    ),
) -> None:
    """Create the study if missing (join it if it exists) and run trials until its budget is used.

    Ctrl-C/SIGTERM: the running trial stops before its next optimiser step (or after the validation under way).

    It is marked FAIL (interrupted) and the run exits 130; a second signal stops at once.
    """
    from core.train import resolve_device
    from hpo.results import report
    from hpo.results.artifacts import best_trial, open_store
    from hpo.results.plots import QUICK_EVAL, save_study_plots
    from hpo.run.display import LiveDisplay, params_table, step
    from hpo.run.pace import load_note
    from hpo.run.runner import Observer, RunInterrupted, create_or_join, run_worker, tally
    from hpo.storage import mask, open_storage, resolve_url
    from hpo.study.objective import Objective
    from hpo.study.spec import load_spec

    with one_line_errors():
        _positive("--n-trials", n_trials)
        _positive("--timeout", timeout)
        _positive("--workers", workers)
        if seed is not None and seed < 0:
            raise CovblendError(f"--seed must be >= 0, got --seed={seed}")
        spec = load_spec(study)  # validated before anything touches storage
        gpu_ids = requested_gpus(gpus, spec.train.device)  # so are the GPUs: a bad --gpus writes nothing
        resolve_device(spec.train.device)  # device = "cuda" without one is an error here, not a FAIL per trial
        url = resolve_url(storage)
        total = n_trials or spec.study.n_trials
        st = open_storage(url)
        optuna.logging.set_verbosity(logging.ERROR)  # the live table and fail_reason attrs say it better
        the_study, notes = create_or_join(spec, st, study_name, seed)
        for note in notes:
            err.print(f"warning: {note}", markup=False)
        if not as_json:
            out.print(f"study [bold]{the_study.study_name}[/] from {spec.path} on {mask(url)}: budget {total}")
            note = load_note()
            if note:
                err.print(f"warning: {note}", markup=False, soft_wrap=True)
        if create_only:
            return
        objective = Objective(spec, artifacts=open_store(artifacts))  # best-so-far checkpoints go there
        try:
            if workers > 1 or gpu_ids:  # a GPU is given through CUDA_VISIBLE_DEVICES, so in a worker process
                from hpo.run.workers import run_parallel

                kwargs = {"artifacts": objective.artifacts}
                view = None if as_json else out
                run_parallel(
                    spec,
                    the_study,
                    url,
                    total,
                    workers,
                    timeout=timeout,
                    seed=seed,
                    console=view,
                    objective_kwargs=kwargs,
                    gpus=gpu_ids,
                )
            elif as_json:
                run_worker(spec, the_study, total, timeout=timeout, observer=Observer(), objective=objective)
            else:
                with LiveDisplay(out, total, spec.train.epochs) as live:
                    run_worker(spec, the_study, total, timeout=timeout, observer=live, objective=objective)
        except RunInterrupted as e:
            err.print(f"stopped: {e}", markup=False)
            raise typer.Exit(130) from None
        points = f"{QUICK_EVAL.n_scenes} scenes at each of {len(QUICK_EVAL.snr_grid_db)} SNRs"
        with step(err if as_json else out, f"building the study figures: RMSE vs SNR on {points}, prune reasons"):
            try:
                save_study_plots(the_study, objective.artifacts)  # dashboard figures: RMSE vs SNR, prune reasons
            except CovblendError as e:  # e.g. the best checkpoint is not in this --artifacts store: trials stand
                err.print(f"warning: RMSE-vs-SNR figure skipped: {e}")
        summary = report.best(the_study)
        if as_json:
            out.print_json(report.to_json({"tally": vars(tally(the_study)), **summary}))
            return
        chosen = summary.get("best")
        if chosen:
            note = "" if summary["feasible"] else " (no trial meets the eigengap-health threshold)"
            out.print(f"best trial #{chosen['number']}: {report.named_values(summary, chosen)}{note}")
            out.print(params_table(chosen["params"]))
        for t in summary.get("pareto_front", []):
            out.print(f"pareto trial #{t['number']}: {report.named_values(summary, t)}")
        has_best = best_trial(the_study) is not None
        out.print("next:", style="bold")
        for line in next_steps(the_study.study_name, url, storage, artifacts, has_best):
            out.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)


@app.command()
def studies(
    storage: str | None = typer.Option(None, "--storage", help=STORAGE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the studies in the storage with trial counts and best values."""
    from hpo.results import report
    from hpo.run.display import fmt
    from hpo.storage import open_storage, resolve_url

    with one_line_errors():
        rows = report.study_rows(open_storage(resolve_url(storage), create=False, heartbeat=False))
    if as_json:
        out.print_json(report.to_json(rows))
        return
    table = Table(*rows[0].keys()) if rows else Table("study")
    for r in rows:
        table.add_row(*(fmt(v) if not isinstance(v, list) else ",".join(v) for v in r.values()))
    out.print(table)


@app.command()
def best(
    study: str = typer.Option(..., "--study", help="Study name in storage."),
    storage: str | None = typer.Option(None, "--storage", help=STORAGE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    download: str | None = typer.Option(
        None, "--download", help="Copy the best trial's checkpoint to this new file (lowest NMSE on a Pareto front)."
    ),
    artifacts: str | None = typer.Option(None, "--artifacts", help=ARTIFACTS_HELP),
) -> None:
    """The best feasible trial (single objective) or the Pareto front (multi objective)."""
    from hpo.results import report
    from hpo.run.display import fmt, params_table

    with one_line_errors():
        the_study = _load(storage, study)
        summary = report.best(the_study)
        if download is not None:
            from hpo.results.artifacts import best_trial, download_checkpoint, open_store

            trial = best_trial(the_study)
            if trial is None:
                raise CovblendError(f"study {study!r} has no complete trial, so no checkpoint to download")
            target = prepare_output(Path(download))
            download_checkpoint(the_study, trial, open_store(artifacts, create=False), target)
            err.print(f"checkpoint of trial #{trial.number} written to {download}", markup=False)
    if as_json:
        out.print_json(report.to_json(summary))
        return
    chosen = [summary["best"]] if summary.get("best") else summary.get("pareto_front", [])
    if not chosen:
        out.print(f"study {study!r} has no complete trial yet")
    for t in chosen:
        feasible = summary.get("feasible", True)
        out.print(f"trial #{t['number']}: values={t['values']}" + ("" if feasible else " (infeasible: low health)"))
        out.print(params_table(t["params"], title="params"))
        attrs = {k: fmt(v) for k, v in t["user_attrs"].items() if not isinstance(v, (dict, list))}
        out.print(params_table(attrs, title="user attrs", heading="attribute"))


@app.command()
def export(
    study: str = typer.Option(..., "--study", help="Study name in storage."),
    fmt_: str = typer.Option("json", "--format", help="csv or json."),
    out_path: str | None = typer.Option(None, "--out", help="Write to this file instead of stdout."),
    storage: str | None = typer.Option(None, "--storage", help=STORAGE_HELP),
) -> None:
    """Every trial with params, values, state, user attrs, constraints and intermediate values."""
    from hpo.results import report

    with one_line_errors():
        if fmt_ not in report.EXPORTERS:
            raise CovblendError(f"--format must be one of {sorted(report.EXPORTERS)}, got --format={fmt_!r}")
        text = report.EXPORTERS[fmt_](report.trials(_load(storage, study)))
        target = None if out_path is None else prepare_output(Path(out_path))
    if target is None:
        print(text)
    else:
        target.write_text(text)
        err.print(f"wrote {target}", markup=False)


@app.command("report")
def report_cmd(
    study: str = typer.Option(..., "--study", help="Study name in storage."),
    out_path: str = typer.Option(
        str(default_output("report.html")), "--out", help="HTML file to write (self-contained, offline)."
    ),
    storage: str | None = typer.Option(None, "--storage", help=STORAGE_HELP),
    artifacts: str | None = typer.Option(None, "--artifacts", help=ARTIFACTS_HELP),
) -> None:
    """One offline HTML page: history, importances, parallel coordinates, pruning, top 10, RMSE vs SNR."""
    from hpo.results.artifacts import open_store
    from hpo.results.html_report import write_report

    target = Path(out_path)
    with one_line_errors():
        the_study = _load(storage, study)
        write_report(the_study, open_store(artifacts), prepare_output(target))
    err.print(f"wrote {out_path}", markup=False)


@app.command()
def dashboard(
    storage: str | None = typer.Option(None, "--storage", help=STORAGE_HELP),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; anything but localhost is public."),
    port: int = typer.Option(8080, "--port", help="TCP port to listen on."),
    artifacts: str | None = typer.Option(None, "--artifacts", help=ARTIFACTS_HELP),
) -> None:
    """Start optuna-dashboard on the same storage (blocks until Ctrl-C)."""
    from hpo.results.artifacts import open_store
    from hpo.results.dashboard import serve
    from hpo.storage import mask, open_storage, resolve_url

    with one_line_errors():
        url = resolve_url(storage)
        st = open_storage(url, create=False, heartbeat=False)
        store = open_store(artifacts)  # the trial pages list and serve the checkpoints in it
    if host not in LOCAL_HOSTS:
        err.print(f"warning: binding to {host}: anyone who can reach it can edit and delete studies", markup=False)
    err.print(f"dashboard for {mask(url)} at http://{host}:{port}/", markup=False)
    try:
        serve(st, store, host=host, port=port)
    except KeyboardInterrupt:
        err.print("dashboard stopped")


from hpo.cli.evaluate import register as _register_evaluate  # noqa: E402

_register_evaluate(app)

from hpo.cli.retrain import register as _register_retrain  # noqa: E402

_register_retrain(app)
