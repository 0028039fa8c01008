"""What a result depends on: installed versions of this project and its numeric and storage libraries."""

from __future__ import annotations

from importlib import metadata

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
