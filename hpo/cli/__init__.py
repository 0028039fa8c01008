"""The `hpo` command line: one module per command group, each command a few lines over hpo/; one error rule for
all (hpo.cli.common.OneLineErrors)."""

from __future__ import annotations

import gc
import inspect
import signal
import warnings

import typer

from hpo import console
from hpo.cli.common import OneLineErrors
from hpo.cli.dashboard import dashboard
from hpo.cli.evaluate import evaluate_command
from hpo.cli.retrain import retrain_command
from hpo.cli.run import run
from hpo.cli.studies import best, export, html_report, studies
from hpo.cli.version import version
from hpo.run.signals import Suspend, handling


def paragraphs(doc: str) -> str:
    """A docstring as help text, each paragraph one line: Typer's rich help keeps the source's line breaks, which
    break its sentences wherever the terminal's width does not."""
    return "\n\n".join(" ".join(p.split()) for p in inspect.cleandoc(doc).split("\n\n"))


app = typer.Typer(
    cls=OneLineErrors,
    help="Hyperparameter optimisation for learned near-field array covariances.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
for name, command in {
    "version": version,
    "run": run,
    "studies": studies,
    "best": best,
    "export": export,
    "report": html_report,
    "dashboard": dashboard,
    "evaluate": evaluate_command,
    "retrain": retrain_command,
}.items():
    app.command(name, help=paragraphs(command.__doc__))(command)


def main() -> None:
    """The `hpo` script: the app, with the heap frozen before the interpreter tears it down, Ctrl-Z answered and
    Python's warnings said as hpo's own lines.

    The interpreter's last collection walks every object torch, SQLAlchemy and Optuna made, to free nothing
    the exit would not free anyway: 0.65 s of each `hpo` process's end, 0.12 s frozen (benchmarks/process_cost.py).
    Ctrl-Z stops any command as it would without a handler, the cursor that a live display or progress bar hides
    shown first (hpo.run.signals.Suspend; `hpo run --workers` stops its workers with it).
    """
    warnings.showwarning = console.warning_line
    try:
        with handling(Suspend(list), (signal.SIGTSTP,)):
            app()
    finally:
        gc.freeze()
