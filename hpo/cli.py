"""The `hpo` command line: one Typer sub-app per command group, each command a few lines over hpo/."""

from __future__ import annotations

import json
from importlib import metadata

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="Hyperparameter optimisation for learned near-field array covariances.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

PACKAGES = ("covblend-hpo", "torch", "optuna", "optuna-dashboard", "sqlalchemy", "psycopg", "numpy")


def versions() -> dict[str, str]:
    """Installed versions of this project and the libraries its results depend on."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


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
