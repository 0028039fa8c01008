"""Rich rendering of a run: the live progress bar and counts table, and the tables shared by the CLI."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from hpo.console import Bar, say, terminal_may_be_gone
from hpo.results.tally import Tally, tally_trials
from hpo.run.pace import duration, eta_seconds, trial_seconds
from hpo.run.runner import RunInterrupted, RunWatcher
from hpo.storage.guard import budget_used
from hpo.study.spec import metric_label

TALLY_REFRESH_S = 5.0  # within a trial, the counts are re-read from storage at most this often (its first epoch always)
EPOCH_METRICS = ("nmse_db", "loc_gain_db")  # shown in the epoch text when an epoch reports them
DEFAULT_METRIC = "nmse_db"  # the first objective of studies created before metric names were set


def fmt(value, digits: int = 3) -> str:
    """Numbers rounded for tables; None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.{digits}f}"
    return str(value)


def metric_name(study: optuna.Study) -> str:
    """The name of the study's first objective (Study.metric_names), else nmse_db."""
    names = study.metric_names
    return names[0] if names else DEFAULT_METRIC


def tally_table(t: Tally, metric: str = DEFAULT_METRIC) -> Group:
    """The counts by state (prune reasons in the caption), then the best trial: its value, its NMSE gain over
    R_samp and its final eigengap health (marked infeasible when no trial reaches the health threshold)."""
    counts = Table("complete", "pruned", "NaN-pruned", "failed", "running", "waiting")
    counts.add_row(*(str(v) for v in (t.complete, t.pruned, t.nan_pruned, t.failed, t.running, t.waiting)))
    if t.prune_reasons:
        counts.caption = "pruned because: " + ", ".join(f"{r} {n}" for r, n in t.prune_reasons.items())
    best = Table(
        "best trial" if t.best_feasible else "best trial (infeasible)",
        metric_label(metric),
        "NMSE gain over R_samp",
        "eigengap health",
    )
    if t.best_number is None:
        best.add_row("-", "-", "-", "-")
    else:
        gain = "-" if t.best_gain_db is None else f"{t.best_gain_db:+.2f} dB"
        best.add_row(f"#{t.best_number}", f"{t.best:.3f}", gain, fmt(t.best_health, 2))
    return Group(counts, best)


def params_table(params: dict, title: str | None = None, heading: str = "parameter") -> Table:
    """Two columns, `heading` and value, one row per key."""
    table = Table(heading, "value", title=title)
    for k, v in params.items():
        table.add_row(k, fmt(v, 4))
    return table


@contextmanager
def step(console: Console, text: str) -> Iterator[None]:
    """Say what a long step after the trials is doing: a spinner with a running clock on a terminal, one line
    otherwise (logs, pipes)."""
    if not console.is_terminal:
        say(text, console)
        yield
        return
    spinner = Bar(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console)
    with spinner:  # not transient: the line stays, with the time the step took
        task = spinner.add_task(text, total=None)
        yield
        spinner.update(task, total=1, completed=1)  # the spinner stops


class StudyWatch(RunWatcher):
    """The study's counts and pace as a run sees them; LiveDisplay and LogLines render them.

    The counts come from the study (every worker's trials), re-read when a trial starts or ends, at the first
    epoch of each trial (the trial exists only once study.optimize has created it) and then at most every
    TALLY_REFRESH_S, so `running` is live without a storage read per epoch. `clock` is for tests.
    """

    def __init__(
        self,
        console: Console,
        n_trials: int,
        epochs: int,
        clock: Callable[[], float] = time.monotonic,
        *,
        workers: int = 0,
    ) -> None:
        self.console = console
        self.n_trials = n_trials
        self.epochs = epochs
        self.clock = clock
        self.workers = workers  # the worker processes a watching parent (hpo run --workers) started; 0: it trains
        self.study: optuna.Study | None = None
        self.metric = DEFAULT_METRIC
        self.tally: Tally | None = None
        self.used = 0  # trials of the budget used (finished, running or failed)
        self.per_trial: float | None = None  # median seconds of the study's finished trials
        self.not_started = n_trials  # trials of the budget nobody has started
        # workers a watching parent (hpo run --workers) saw alive at its last poll: the ETA divides by them, not by
        # the trials the storage shows running, which drop by one whenever a worker is between trials (a 32m ETA
        # read 1h00m at such a moment)
        self.alive = 0
        self.started = clock()
        self.trial_start = self.started
        self.refreshed = -math.inf  # clock() of the last read of the study

    def __enter__(self) -> StudyWatch:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def _refresh(self, study: optuna.Study) -> list[FrozenTrial]:
        """Re-read the study: progress, counts, measured s/trial; returns its trials."""
        if self.study is not study:
            self.study, self.metric = study, metric_name(study)
        trials = study.get_trials(deepcopy=False)
        self.used = budget_used(trials)
        self.tally = tally_trials(trials, study.directions)
        self.per_trial = trial_seconds(trials)
        self.not_started = max(0, self.n_trials - self.used) + self.tally.waiting
        self.refreshed = self.clock()
        self._counted()
        return trials

    def _counted(self) -> None:
        """Called after every re-read of the study."""

    def pace(self, left_in_trial: float | None = None, per_epoch: float | None = None) -> str:
        """'23 s/trial, ETA 4m10s' from the study's finished trials; before any, estimated from `per_epoch`.

        left_in_trial: the fraction of this process's running trial still to do (None: none runs here).
        Other running trials (other workers) count as half done; they run in parallel with this one.
        """
        per_trial, mark = self.per_trial, ""
        if per_trial is None and per_epoch is not None:
            per_trial, mark = per_epoch * self.epochs, "~"  # an estimate from the first trial's epochs
        if per_trial is None:
            return ""
        running = self.tally.running if self.tally else 0
        own = 0 if left_in_trial is None else 1
        others = max(0, running - own)
        left = eta_seconds(
            per_trial, self.not_started, (left_in_trial or 0.0) + 0.5 * others, max(1, running, self.alive)
        )
        eta = f", ETA {mark}{duration(left)}" if left > 0 else ""
        return f"{mark}{duration(per_trial)}/trial{eta}"

    def trial_started(self, study: optuna.Study) -> None:
        self.trial_start = self.clock()
        self._refresh(study)


class LiveDisplay(StudyWatch):
    """A progress bar over the study's budget, the current trial's epoch with its pace and ETA, and the tables."""

    def __init__(self, *args, **kwargs) -> None:  # StudyWatch's
        super().__init__(*args, **kwargs)
        self.progress = Progress(
            TextColumn("[bold]trials"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=self.console
        )
        self.status = ""  # the line under the bar: the running trial's epoch, pace and ETA; it wraps when narrow
        self.task = self.progress.add_task("", total=self.n_trials)
        self.table = Group()
        self.live = Live(console=self.console, refresh_per_second=4, transient=False)

    def __enter__(self) -> LiveDisplay:
        self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        with terminal_may_be_gone():
            self.live.__exit__(*exc)
            if not self.console.is_terminal:  # Rich ends a non-terminal Live without a newline
                self.console.line()

    def _counted(self) -> None:
        self.progress.update(self.task, completed=min(self.used, self.n_trials))
        self.table = tally_table(self.tally, self.metric)
        self._show()

    def _show(self) -> None:
        self.live.update(Group(self.progress, Text(self.status, overflow="fold"), self.table))

    def _say(self, *parts: str) -> None:
        """Show the non-empty `parts`, joined by " · ", as the line under the bar."""
        self.status = " · ".join(p for p in parts if p)
        self._show()

    def epoch(self, trial_number: int, epoch: int, metrics: dict) -> None:
        """After epoch `epoch` (0-based) of trial `trial_number`: the epoch text, and the counts when due."""
        now, done = self.clock(), epoch + 1
        if self.study is not None and (done == 1 or now - self.refreshed >= TALLY_REFRESH_S):
            self._refresh(self.study)
        per_epoch = (now - self.trial_start) / done
        shown = [f"{k}={metrics[k]:.2f}" for k in EPOCH_METRICS if isinstance(metrics.get(k), (int, float))]
        parts = [f"trial {trial_number}: epoch {done}/{self.epochs}", *shown, f"{duration(per_epoch)}/epoch"]
        self._say(*parts, self.pace(1 - done / self.epochs, per_epoch))

    def trial_finished(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._refresh(study)
        self._say(f"trial {trial.number}: {trial.state.name.lower()}", self.pace())

    def poll(self, study: optuna.Study, alive: int, note: str) -> None:
        """A parent that only watches (hpo run --workers): re-read the study and show the workers `alive`, what
        each has (`note`: "1 thread", "2 threads on gpu0×4 gpu1×4") and the pace."""
        self.alive = alive
        self._refresh(study)
        self._say(f"{alive}/{self.workers} workers x {note}", self.pace())


class LogLines(StudyWatch):
    """What `hpo run` says where stdout is not a terminal (docker compose logs, CI, `| tee`): one plain line per
    finished trial (its number, state, value with the metric's name and reference, duration, the study's
    progress and ETA) and one per worker start and stop; no control characters, nothing per epoch."""

    def __init__(self, *args, **kwargs) -> None:  # StudyWatch's
        super().__init__(*args, **kwargs)
        self.watching = self.workers > 0  # a parent watching its workers (poll), not a worker itself
        self.reported: set[int] = set()  # trial numbers already given a line

    def __enter__(self) -> LogLines:
        if not self.watching:
            self._line(f"worker started: pid {os.getpid()}, {self.n_trials} trials in the study's budget")
        return self

    def __exit__(self, *exc) -> None:
        if not self.watching:
            kind = exc[0] if exc else None
            interrupted = kind is not None and issubclass(kind, (KeyboardInterrupt, RunInterrupted))
            stopped = "stopped by a signal" if interrupted else "stopped on an error" if kind is not None else "stopped"
            self._line(f"worker {stopped}: pid {os.getpid()}, {duration(self.clock() - self.started)}")

    def _line(self, text: str) -> None:
        say(text, self.console)

    def _trial_line(self, trial: FrozenTrial) -> str:
        # A pruned trial's value is what it reported mid-training (loc_gain_db with the table of that epoch's
        # training-time refit), not a final value: said as such, so it is not read against the complete ones.
        pruned = trial.state == TrialState.PRUNED and bool(trial.intermediate_values)
        if trial.values is not None and not pruned:
            names = (self.study.metric_names if self.study is not None else None) or [self.metric]
            value = ", ".join(valued(n, v) for n, v in zip(names, trial.values, strict=False))
        elif trial.intermediate_values:
            last = max(trial.intermediate_values)
            value = f"last reported {self.metric}={signed(trial.intermediate_values[last])} at epoch {last + 1}"
        else:
            value = str(trial.user_attrs.get("fail_reason", trial.system_attrs.get("fail_reason", "no value")))
        took = f"in {duration(trial.duration.total_seconds())}" if trial.duration is not None else ""
        best = ""
        if self.tally is not None and self.tally.best_number is not None and self.tally.best is not None:
            best = f"best #{self.tally.best_number} {signed(self.tally.best)}"
        progress = f"{min(self.used, self.n_trials)}/{self.n_trials} trials, {duration(self.clock() - self.started)}"
        parts = [f"trial {trial.number} {trial.state.name}: {value}", took, best, progress, self.pace()]
        return " · ".join(p for p in parts if p)

    def _report_finished(self, trials: list[FrozenTrial]) -> None:
        for t in trials:
            if t.state.is_finished() and t.number not in self.reported:
                self.reported.add(t.number)
                self._line(self._trial_line(t))

    def trial_finished(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._refresh(study)
        self.reported.add(trial.number)
        self._line(self._trial_line(trial))

    def poll(self, study: optuna.Study, alive: int, note: str) -> None:
        """A parent that only watches (hpo run --workers): a line per worker that started or stopped since the
        last poll, and one per trial any worker finished (LiveDisplay.poll has the arguments)."""
        for n in range(self.alive + 1, alive + 1):
            self._line(f"worker started: {n}/{self.workers} alive · {self.workers} workers x {note}")
        for n in range(self.alive - 1, alive - 1, -1):
            self._line(f"worker stopped: {n}/{self.workers} alive")
        self.alive = alive
        self._report_finished(self._refresh(study))


def signed(x: float, digits: int = 3) -> str:
    """x with its sign to `digits` decimals; a value that rounds to zero is +0, never -0.000."""
    return f"{round(x, digits) + 0.0:+.{digits}f}"


def valued(name: str, value: float) -> str:
    """'loc_gain_db=+0.588 (dB; classic = 0)': the value with its metric's unit and reference."""
    reference = metric_label(name)[len(name) :].strip()
    return f"{name}={signed(value)}" + (f" {reference}" if reference else "")


def run_view(console: Console, n_trials: int, epochs: int, *, workers: int = 0) -> LiveDisplay | LogLines:
    """The live display on a terminal, plain log lines elsewhere; `workers`: those a parent of --workers watches."""
    if console.is_terminal:
        return LiveDisplay(console, n_trials, epochs, workers=workers)
    return LogLines(console, n_trials, epochs, workers=workers)
