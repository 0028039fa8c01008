"""Where hpo writes for people: `out` (results, tables, JSON) and `err` (progress, warnings, errors), both Rich.

Messages that carry names, paths or values print verbatim (no Rich markup or highlighting), each on one line
however wide the terminal. EXIT_* are the exit codes of hpo.cli.common.OneLineErrors (docs/design.md §7).
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import Progress, ProgressColumn
from rich.text import Text

EXIT_ERROR = 2  # a CovblendError: bad spec, URL, option or study
EXIT_SYSTEM = 1  # the machine refused a file operation: a full disk, a read-only or unreadable file
EXIT_INTERRUPTED = 130  # stopped by Ctrl-C, SIGTERM or SIGHUP (128 + SIGINT, as shells report it)

# No markup anywhere: names, paths, values and messages print as they are. Rich would read "[/]" in a study name as
# a tag and raise, or drop "[red]" and colour the rest; the little styling hpo does is passed as styles, not tags.
out = Console(markup=False)
err = Console(stderr=True, markup=False)


def say(text: str | Text, console: Console = err) -> None:
    """One line as given (no markup; a Text keeps its styles), never wrapped, on stderr unless another console is
    named."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def shown(text: str) -> str:
    """`text` with each character a terminal would act on rather than show (newlines and other controls,
    right-to-left overrides, zero-width spaces: whatever str.isprintable refuses) written as its escape, e.g.
    \\u202e; for names hpo did not choose, such as studies created by other tools."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def warn(text: str) -> None:
    say(f"warning: {text}")


def warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    """warnings.showwarning in hpo's processes: a library's warning (Optuna's "too few trials" for importances) as
    hpo's one line, "warning: TEXT", not Python's two lines of its file, line number and source."""
    warn(" ".join(str(message).split()))


def error(text: str, source: str | None = None) -> None:
    """ "error: TEXT", or "SOURCE: error: TEXT" when a worker process reports it."""
    say(f"{source}: error: {text}" if source else f"error: {text}")


def console_of_width(width: int) -> Console:
    """`out` on a terminal, which squeezes a wider table to its own width; elsewhere (a pipe or a file, where
    Rich assumes 80 columns) a console `width` columns wide, so the table arrives whole."""
    return out if out.is_terminal else Console(width=width, markup=False)


@contextmanager
def terminal_may_be_gone() -> Iterator[None]:
    """Let an EIO go: the terminal has gone (SIGHUP, whose stop is under way) and nothing is left to draw on."""
    try:
        yield
    except OSError as e:
        if e.errno != errno.EIO:
            raise


class Bar(Progress):
    """Rich's Progress, whose end on a terminal that has gone is no error (terminal_may_be_gone)."""

    def __exit__(self, *exc) -> None:
        with terminal_may_be_gone():
            super().__exit__(*exc)


def bar(*columns: ProgressColumn | str) -> Bar:
    """A transient progress bar on stderr (Rich's default columns unless given), on a terminal only: elsewhere
    (CI, `| tee`, a batch job's log) Rich would still leave a blank line where it stopped."""
    return Bar(*columns, console=err, transient=True, disable=not err.is_terminal)


def data(text: str) -> None:
    """Machine-readable text (CSV, JSON) on stdout exactly as given, ending in one newline; Rich would expand its
    tabs."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")  # CSV ends in one already: no blank last row
