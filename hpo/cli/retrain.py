"""`hpo retrain --study NAME --out DIR`: the top trials over several seeds, a table, and the winner by the mean
of the study's own objective on fresh validation scenes.

The work is hpo.results.retrain.retrain; this module parses options, shows progress and prints the Rich table.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Annotated

import optuna
import typer
from rich import box
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.evaluation import SNR_DEFINITION, EvalConfig
from core.localisation import MAX_SCENES_PER_POINT
from hpo.cli.common import DEFAULT_GRID, EVAL_DEFAULTS, Scenes, SnrGrid, Storage, StudyName, parse_snr_grid
from hpo.cli.evaluate import TABLE_WIDTH, short
from hpo.console import bar, console_of_width, out, say, warn
from hpo.results.retrain import (
    FILES,
    MAX_SEEDS,
    RetrainWatcher,
    TrialSummary,
    metric_names,
    retrain,
    top_trials,
    warnings_for,
)
from hpo.results.views import to_json
from hpo.run.display import EPOCH_METRICS, valued
from hpo.run.pace import duration
from hpo.run.signals import stopping_with
from hpo.storage import open_existing_study
from hpo.study.spec import load_spec, metric_label
from hpo.study.stored_spec import spec_of


class SeedProgress(RetrainWatcher):
    """One bar over every (trial, seed) run; its text names the running seed and epoch. Where stderr is not a
    terminal (CI, `| tee`, a batch job's log) the bar shows nothing, so each finished seed is one plain line."""

    def __init__(self, progress: Progress, total: int, names: list[str]) -> None:
        self.progress = progress
        self.task = progress.add_task("", total=total)
        self.total, self.done, self.names = total, 0, names
        self.label = ""

    def seed_started(self, number: int, seed: int, index: int, total: int) -> None:
        self.label = f"trial {number} seed {seed}"
        self.progress.update(self.task, description=f"{self.label}: training")

    def epoch(self, epoch: int, metrics: dict) -> None:
        shown = " ".join(f"{k}={metrics[k]:.2f}" for k in EPOCH_METRICS if k in metrics)
        self.progress.update(self.task, description=f"{self.label}: epoch {epoch} {shown}")

    def seed_finished(self, record: dict, skipped: bool) -> None:
        self.done += 1
        if record.get("values") is None:
            values = f"diverged: {record['diverged']}" if record.get("diverged") else "no value"
        else:
            values = ", ".join(valued(n, v) for n, v in zip(self.names, record["values"], strict=False))
        took = "already done" if skipped else f"trained in {duration(record.get('train_s', 0.0))}"
        text = f"trial {record['trial']} seed {record['seed']}: {values} · {took} · {self.done}/{self.total} seeds"
        self.progress.update(self.task, advance=1, description=text)
        if not self.progress.console.is_terminal:
            say(text, self.progress.console)


def summary_table(summaries: list[TrialSummary], best: TrialSummary, epochs: int, names: list[str]) -> Table:
    """One row per trial: its search values, then mean ± std over seeds of the study's values (names) on fresh
    validation scenes, the val NMSE and the health."""
    table = Table(
        title=f"Retrained {epochs} epochs per seed; the winner (★) has the best mean {', '.join(names)}",
        caption="search: the trial's values in the search (its seed, the search's epochs, the search's scenes); "
        + "; ".join(metric_label(n) for n in names),
    )
    # the seeds' ids, not their count: a lone seed 0 under "seeds" reads as none
    for name in ("trial", "search", "seed ids", *(f"{n} mean ± std" for n in names), "val NMSE dB", "health"):
        table.add_column(name, justify="right")
    for t in summaries:
        if t.diverged:
            means = [f"{t.diverged} seed(s) diverged"] * len(names)
        else:
            std = t.std_values or (None,) * len(names)
            means = [
                f"{m:.3f}" + ("" if sd is None else f" ± {sd:.3f}") for m, sd in zip(t.mean_values, std, strict=True)
            ]
        nmse = short(statistics.fmean(t.nmse_db), 3) if not t.diverged else "-"
        search = ", ".join(f"{v:.3f}" for v in t.search_values)
        star = "★ " if t is best else ""
        row = [f"{star}{t.number}", search, ",".join(map(str, t.seeds)), *means, nmse, short(t.mean_health)]
        table.add_row(*row, style="bold green" if t is best else None)
    return table


def accuracy_table(summaries: list[TrialSummary], best: TrialSummary) -> Table:
    """One row per trial: angle / range RMSE of the pipeline (its estimator on R_blend, true K) at each evaluation
    SNR, seed means."""
    snrs = sorted({s for t in summaries for s in t.angle_rmse_deg})
    table = Table(
        title="Learned pipeline, true K: angle RMSE (deg) / range RMSE (m) per SNR (dB)",
        box=box.SIMPLE_HEAD,  # no vertical rules and shared padding: seven SNR columns fit TABLE_WIDTH
        collapse_padding=True,
    )
    table.add_column("trial", justify="right", no_wrap=True, min_width=5)
    for snr in snrs:
        table.add_column(f"{snr:g}", justify="right", no_wrap=True)
    for t in summaries:
        cells = [f"{short(t.angle_rmse_deg.get(s), 2)}/{short(t.range_rmse_m.get(s), 2)}" for s in snrs]
        table.add_row(f"{'★ ' if t is best else ''}{t.number}", *cells, style="bold green" if t is best else None)
    return table


def retrain_command(
    study: StudyName,
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder; rerun with the same one to resume.")],
    top: Annotated[int, typer.Option("--top", min=1, help="Retrain this many best COMPLETE trials.")] = 3,
    seeds: Annotated[
        int, typer.Option("--seeds", min=1, max=MAX_SEEDS, help="Seeds per trial: the trial's seed and the next ones.")
    ] = 3,
    epochs: Annotated[
        int | None, typer.Option("--epochs", min=1, help="Epochs per seed; default the spec's final_epochs.")
    ] = None,
    val_scenes: Annotated[
        int | None,
        typer.Option(
            "--val-scenes",
            min=1,
            max=MAX_SCENES_PER_POINT,
            help="Validation scenes per SNR point the trials and seeds are ranked on (loc_gain_db); default the "
            "spec's \\[localisation] final_scenes (500 unless set): the search's few cannot separate trials or seeds "
            "a few tenths of a dB apart.",
        ),
    ] = None,
    trial: Annotated[int | None, typer.Option("--trial", help="Retrain only this trial number.")] = None,
    storage: Storage = None,
    spec_name: Annotated[
        str | None, typer.Option("--spec", help="Spec name or .toml path; default the one stored in the study.")
    ] = None,
    snr_grid: SnrGrid = DEFAULT_GRID,
    scenes: Scenes = EVAL_DEFAULTS.n_scenes,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the trials' summaries and the winner as JSON instead of tables.")
    ] = False,
) -> None:
    """Retrain the study's top trials over several seeds; pick the winner by the mean of the study's objective on
    fresh validation scenes; write its best seed's checkpoint and its files to --out.

    Ctrl-C, SIGTERM or a closed terminal stops it (exit 130) and keeps the finished seeds: the same command goes on
    from them."""
    eval_cfg = EvalConfig(snr_grid_db=parse_snr_grid(snr_grid), n_scenes=scenes)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    the_study, opened = open_existing_study(storage, study)
    spec = load_spec(spec_name) if spec_name else spec_of(the_study)
    chosen = top_trials(the_study, top, trial)
    for note in warnings_for(the_study, chosen, spec):
        warn(note)
    names = metric_names(the_study, spec)
    columns = (TextColumn("[bold]seeds"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    progress = bar(*columns, TextColumn("{task.description}"))
    # Ctrl-C, SIGTERM and a closed terminal (SIGHUP): the running seed is dropped, the finished ones kept
    with stopping_with(f"finished seeds are kept in {out_dir}; run the same command to go on"), progress:
        result = retrain(
            the_study, opened, spec, out_dir, top=top, seeds=seeds, epochs=epochs, val_scenes=val_scenes,
            number=trial, eval_cfg=eval_cfg, watcher=SeedProgress(progress, len(chosen) * seeds, names),
        )  # fmt: skip
    best = result.winner
    if as_json:
        out.print_json(to_json(result.record() | {"out": str(out_dir)}))
        return
    wide = console_of_width(TABLE_WIDTH)
    wide.print(summary_table(result.summaries, best, result.provenance["epochs"], names))
    wide.print(accuracy_table(result.summaries, best))
    say(SNR_DEFINITION, out)  # a line of its own: as the table's caption it wrapped to the table's width
    shown = ", ".join(f"{n} {v:.3f}" for n, v in zip(names, best.mean_values, strict=True))
    say(
        f"winner: trial {best.number}, mean {shown} over seeds {list(best.seeds)} on fresh validation scenes; "
        f"checkpoint of seed {result.provenance['checkpoint_seed']} (its best seed on these validation scenes)",
        out,
    )
    say(f"trained {result.trained} seed(s), reused {result.skipped}; in {out_dir}: {', '.join(FILES)}", out)
