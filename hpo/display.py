"""Rich rendering of a run: the live progress bar and counts table, and the tables shared by the CLI."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hpo.runner import Observer, Tally, budget_used, tally


def fmt(value, digits: int = 3) -> str:
    """Numbers rounded for tables; None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.{digits}f}"
    return str(value)


def tally_table(t: Tally, title: str | None = None) -> Table:
    """One row of counts: complete, pruned, NaN-pruned, failed, running, waiting, best."""
    table = Table("complete", "pruned", "NaN-pruned", "failed", "running", "waiting", "best nmse_db", title=title)
    best = "-" if t.best is None else f"{t.best:.3f} (#{t.best_number})"
    table.add_row(*(str(v) for v in (t.complete, t.pruned, t.nan_pruned, t.failed, t.running, t.waiting)), best)
    return table


def params_table(params: dict, title: str | None = None) -> Table:
    table = Table("parameter", "value", title=title)
    for k, v in params.items():
        table.add_row(k, fmt(v, 4))
    return table


class LiveDisplay(Observer):
    """A progress bar over the study's budget, the current trial's epoch, and the counts table."""

    def __init__(self, console: Console, n_trials: int, epochs: int) -> None:
        self.console = console
        self.n_trials = n_trials
        self.epochs = epochs
        self.progress = Progress(
            TextColumn("[bold]trials"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=console,
        )
        self.task = self.progress.add_task("", total=n_trials)
        self.table = Table()
        self.live = Live(console=console, refresh_per_second=4, transient=False)

    def __enter__(self) -> LiveDisplay:
        self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.live.__exit__(*exc)
        if not self.console.is_terminal:  # Rich ends a non-terminal Live without a newline
            self.console.line()

    def _refresh(self, study: optuna.Study) -> None:
        self.progress.update(self.task, completed=min(budget_used(study.get_trials(deepcopy=False)), self.n_trials))
        self.table = tally_table(tally(study))
        self.live.update(Group(self.progress, self.table))

    def trial_started(self, study: optuna.Study) -> None:
        self._refresh(study)

    def epoch(self, trial_number: int, epoch: int, metrics: dict) -> None:
        nmse = metrics.get("nmse_db", float("nan"))
        self.progress.update(self.task, description=f"trial {trial_number}: epoch {epoch} nmse_db={nmse:.2f}")
        self.live.update(Group(self.progress, self.table))

    def trial_finished(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.progress.update(self.task, description=f"trial {trial.number}: {trial.state.name.lower()}")
        self._refresh(study)
