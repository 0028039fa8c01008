"""What every `hpo` command shares: the app's one-line error rule and the options that recur.

OneLineErrors is the one place errors become output: a CovblendError (bad spec, URL, study or option) or a
bad option value is one "error: ..." line on stderr and exit code 2; a command stopped by a signal prints one
"stopped: ..." line and exits 130.
"""

from __future__ import annotations

from typing import Annotated

import optuna
import typer
from typer.core import TyperGroup

from core.errors import CovblendError
from hpo import console
from hpo.run.signals import Stopped
from hpo.storage import STORAGE_HELP, open_existing_study

ARTIFACTS_HELP = "Artifact directory (best checkpoints); default $HPO_ARTIFACTS, else ./artifacts."

# --storage and --artifacts fall back to $HPO_STORAGE and $HPO_ARTIFACTS in hpo.storage and hpo.storage.artifacts,
# not through typer's envvar=: `hpo run` must know whether the URL came from the environment, to print
# "$HPO_STORAGE" in its next steps rather than a URL with a password.
Storage = Annotated[str | None, typer.Option("--storage", help=STORAGE_HELP)]
Artifacts = Annotated[str | None, typer.Option("--artifacts", help=ARTIFACTS_HELP)]
StudyName = Annotated[str, typer.Option("--study", help="Study name in storage.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


class OneLineErrors(TyperGroup):
    """Typer's command group, with hpo's error rule (module docstring) around every command it runs."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Stopped as e:
            console.say(f"stopped: {e}")
            raise typer.Exit(console.EXIT_INTERRUPTED) from None
        except CovblendError as e:
            console.error(str(e))
            raise typer.Exit(console.EXIT_ERROR) from None
        except typer.BadParameter as e:  # typer's own checks: min=, choices, types
            console.error(_naming_the_value(e))
            raise typer.Exit(console.EXIT_ERROR) from None


def _naming_the_value(e: typer.BadParameter) -> str:
    """typer's message for a bad option value, ending with the value given (its range messages leave it out)."""
    errors = getattr(e.__cause__, "errors", None)  # typer checks values with pydantic, whose error keeps the input
    if errors is None or e.param is None or not e.param.opts:
        return e.format_message()
    return f"{e.format_message().rstrip('.')}, got {e.param.opts[0]}={errors()[0]['input']}"


def load(storage: str | None, study: str) -> optuna.Study:
    """The named existing study, opened without creating anything."""
    return open_existing_study(storage, study)[0]
