"""`hpo version`: the versions a result depends on (hpo.provenance)."""

from __future__ import annotations

import json

from rich.table import Table

from hpo.cli.common import AsJson
from hpo.console import out
from hpo.provenance import versions


def version(as_json: AsJson = False) -> None:
    """Show the versions of covblend-hpo and of the libraries its results depend on."""
    found = versions()
    if as_json:
        out.print_json(json.dumps(found))
        return
    table = Table("package", "version")
    for name, v in found.items():
        table.add_row(name, v)
    out.print(table)
