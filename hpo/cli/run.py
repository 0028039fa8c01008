"""`hpo run`: create or join a study and use its trial budget; the work is hpo.run.launch."""

from __future__ import annotations

import os
import shlex
from typing import Annotated

import typer
from rich.text import Text

from hpo.cli.common import Artifacts, Storage
from hpo.console import err, out, say, warn
from hpo.paths import default_output
from hpo.results import views
from hpo.results.tally import tally
from hpo.run.display import params_table
from hpo.run.gpus import GPUS_ENV
from hpo.run.launch import Launch, prepare, run_trials, save_figures
from hpo.run.pace import load_note
from hpo.run.workers import WORKERS_PER_CORE, check_workers
from hpo.storage.artifacts import check_store, open_store
from hpo.storage.urls import STORAGE_ENV, mask, resolve_url
from hpo.study.registry import MAX_SEED
from hpo.study.spec import MAX_TRIALS


def run(
    study: Annotated[
        str, typer.Option("--study", help="Spec name in studies/ (or $HPO_STUDIES_DIR), or a .toml path.")
    ],
    storage: Storage = None,
    n_trials: Annotated[
        int | None,
        typer.Option(
            "--n-trials",
            min=1,
            max=MAX_TRIALS,
            help="The study's TOTAL trial budget across runs and workers; default from the spec.",
        ),
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=0, help="Stop starting new trials after this many seconds.")
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            min=0,
            max=MAX_SEED,
            help="Base sampler seed; overrides the spec's. Each process of the study samples with its own seed "
            "from it.",
        ),
    ] = None,
    study_name: Annotated[
        str | None, typer.Option("--study-name", help="Name in storage; default the spec's name.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="No live display; print the final summary as JSON.")] = False,
    artifacts: Artifacts = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            help="Worker processes on this host sharing the study, each with cores // W torch threads.",
        ),
    ] = 1,
    uncapped: Annotated[
        bool, typer.Option("--no-worker-cap", help=f"Allow --workers above {WORKERS_PER_CORE} per core of this host.")
    ] = False,
    create_only: Annotated[
        bool, typer.Option("--create-only", help="Create (or join) the study, run no trial.")
    ] = False,
    gpus: Annotated[
        str | None,
        typer.Option(
            "--gpus",
            envvar=GPUS_ENV,
            help="GPU indices the workers take round-robin, e.g. 0,1 (several may share one); default $HPO_GPUS.",
        ),
    ] = None,
) -> None:
    """Create the study if missing (join it if it exists) and run trials until its budget is used.

    Ctrl-C, SIGTERM or a closed terminal (SIGHUP; not under nohup): the running trial stops before its next
    optimiser step (or after the validation under way).

    It is marked FAIL (interrupted) and queued again with its params; exit 130. A second signal stops at once.

    Ctrl-Z suspends the run, its workers included; fg or bg continues it.
    """
    check_workers(workers, resolve_url(storage), gpus=bool(gpus), uncapped=uncapped)
    check_store(artifacts)  # before the study is created: a bad --artifacts must leave no study behind
    launch = prepare(study, storage, n_trials, seed, study_name, gpus)
    for note in launch.notes:
        warn(note)
    if not as_json:
        where = f" from {launch.spec.path} on {mask(launch.url)}: budget {launch.budget}"
        say(Text.assemble("study ", (launch.study.study_name, "bold"), where), out)
        if note := load_note():
            warn(note)
    if create_only:
        return
    store = open_store(artifacts)  # best-so-far checkpoints go there
    run_trials(launch, store, workers=workers, timeout=timeout, seed=seed, view=None if as_json else out)
    save_figures(launch.study, store, err if as_json else out)
    if as_json:
        out.print_json(views.to_json({"tally": vars(tally(launch.study)), **views.best(launch.study)}))
    else:
        show_summary(launch, storage, artifacts)


def show_summary(launch: Launch, storage: str | None, artifacts: str | None) -> None:
    """The best trial (or the Pareto front) and the commands that come next."""
    summary = views.best(launch.study)
    chosen = summary.get("best")
    if chosen:
        note = "" if summary["feasible"] else " (no trial meets the eigengap-health threshold)"
        say(f"best trial #{chosen['number']}: {views.named_values(summary, chosen)}{note}", out)
        out.print(params_table(chosen["params"]))
    for t in summary.get("pareto_front", []):
        say(f"pareto trial #{t['number']}: {views.named_values(summary, t)}", out)
    has_best = bool(chosen or summary.get("pareto_front"))  # what best_trial finds: views.best's first trial
    out.print("next:", style="bold")
    for line in next_steps(launch.study.study_name, launch.url, storage, artifacts, has_best):
        say(f"  {line}", out)


def next_steps(study: str, url: str, storage: str | None, artifacts: str | None, has_best: bool) -> list[str]:
    """The commands that follow `hpo run` on this study, ready to paste; a password never appears.

    storage and artifacts are the run's options (None: not given). A URL from $HPO_STORAGE is written as
    "$HPO_STORAGE", so the command finds the password where the run did; a URL given with --storage is masked,
    and a last line says what *** stands for.
    """
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
