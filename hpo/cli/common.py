"""What every `hpo` command shares: the app's one-line error rule (OneLineErrors) and the options that recur."""

from __future__ import annotations

from typing import Annotated

import optuna
import typer
from typer.core import TyperGroup

from core.errors import ConfigError, CovblendError
from core.evaluation import EvalConfig
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
# The evaluation options of `hpo evaluate` and `hpo retrain`; SnrGrid is text for parse_snr_grid.
SnrGrid = Annotated[str, typer.Option("--snr-grid", help="Comma-separated evaluation SNRs in dB, SNR = p_k/σ².")]
Scenes = Annotated[int, typer.Option("--scenes", help="Evaluation scenes per SNR point.")]
EVAL_DEFAULTS = EvalConfig()
DEFAULT_GRID = ",".join(f"{s:g}" for s in EVAL_DEFAULTS.snr_grid_db)


# click's UsageError (an unknown option or command, a missing option), which typer does not export; its BadParameter
# derives from it whether typer vendors click or depends on it
UsageError = typer.BadParameter.__base__


class OneLineErrors(TyperGroup):
    """Typer's command group, with hpo's one-line error rule (docs/design.md §7) around every command it runs."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:  # hpo's own options (`hpo --bogus`); a command's are parsed inside invoke
            return super().make_context(info_name, args, parent=parent, **extra)
        except UsageError as e:
            raise _one_line(e) from None

    def resolve_command(self, ctx, args):
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None and (empty := _given_empty(command, rest)):
            option, required = empty
            advice = "give it a value" if required else "give it a value, or leave it out for its default"
            raise CovblendError(f"{option} is empty (an unset variable?): {advice}")
        return name, command, rest

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Stopped as e:
            with console.terminal_may_be_gone():  # a closed terminal (SIGHUP) takes the line, not the exit code
                console.say(f"stopped: {e}")
            raise typer.Exit(console.EXIT_INTERRUPTED) from None
        except CovblendError as e:
            console.error(str(e))
            raise typer.Exit(console.EXIT_ERROR) from None
        except typer.BadParameter as e:  # typer's own checks: min=, choices, types
            console.error(_naming_the_value(e))
            raise typer.Exit(console.EXIT_ERROR) from None
        except UsageError as e:  # click's boxed usage and message, five lines, as one
            raise _one_line(e) from None
        except BrokenPipeError:  # the reader went away (`| head`): click's main exits 1 quietly, as `seq | head` does
            raise
        except OSError as e:  # the machine's, not hpo's (a full disk: the write itself fails, without a file name)
            console.error(f"{e.filename}: {e.strerror}" if e.filename and e.strerror else e.strerror or str(e))
            raise typer.Exit(console.EXIT_SYSTEM) from None


def _given_empty(command, args: list[str]) -> tuple[str, bool] | None:
    """(option, whether it is required) of the first of `command`'s valued options that `args` give an empty value
    ("--storage ''", "--storage="): an unset shell variable, which would otherwise mean the option's default,
    another database or the current folder."""
    valued = {opt: p.required for p in command.params if getattr(p, "is_flag", None) is False for opt in p.opts}
    for before, arg in zip(args, args[1:], strict=False):
        if arg == "" and before in valued:
            return before, valued[before]
    return next(((a[:-1], valued[a[:-1]]) for a in args if a.endswith("=") and a[:-1] in valued), None)


def _one_line(e: UsageError) -> typer.Exit:
    """Say a usage error in one line that names the command's --help; the Exit to raise."""
    text = e.format_message()
    if e.ctx is not None:
        text = f"{text if text.endswith(('.', '?')) else text + '.'} See '{e.ctx.command_path} --help'."
    console.error(text)
    return typer.Exit(console.EXIT_ERROR)


def _naming_the_value(e: typer.BadParameter) -> str:
    """typer's message for a bad option value, ending with the value given (its range messages leave it out)."""
    errors = getattr(e.__cause__, "errors", None)  # typer checks values with pydantic, whose error keeps the input
    if errors is None or e.param is None or not e.param.opts:
        return e.format_message()
    text = e.format_message().rstrip(".").replace("Value error, ", "", 1)  # pydantic's prefix to a validator's words
    return f"{text}, got {e.param.opts[0]}={errors()[0]['input']}"


def load(storage: str | None, study: str) -> optuna.Study:
    """The named existing study, opened without creating anything."""
    return open_existing_study(storage, study)[0]


def parse_snr_grid(text: str) -> tuple[float, ...]:
    """'-10,-5,0' -> (-10.0, -5.0, 0.0); text that is not numbers is a ConfigError naming it (EvalConfig, which
    gets the grid, refuses nan and inf)."""
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise ConfigError(f"--snr-grid must be comma-separated numbers in dB, got {text!r}") from None
