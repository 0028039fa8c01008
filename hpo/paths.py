"""Where commands write files: files the user did not name go to out/, which git ignores (docs/design.md §7,
"Files"). OUT_DIR is created on demand; any other folder must already exist, so a mistyped path is an error,
not a new directory tree."""

from __future__ import annotations

from pathlib import Path

from core.errors import CovblendError

OUT_DIR = Path("out")  # relative: under the directory the command runs in; in .gitignore
SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file


def default_output(name: str) -> Path:
    """out/NAME, the default path of an output file."""
    return OUT_DIR / name


def prepare_output(target: Path) -> Path:
    """`target`, ready to be written: its folder created when it is OUT_DIR, else checked to exist.

    Raises CovblendError naming the path when the folder is missing (or cannot be created), or when the target
    is a directory or an SQLite database (`hpo export --out hpo.db` would have replaced the study's own storage
    with its export): callers check before their work, so it fails at once, not after it.
    """
    _parent_ready(target)
    if target.is_dir():
        raise CovblendError(f"cannot write {target}: it is a directory")
    if _is_database(target):
        raise CovblendError(f"cannot write {target}: it is an SQLite database, which this would overwrite")
    return target


def _is_database(path: Path) -> bool:
    """Whether path is an SQLite database file (False when it cannot be read: the write then says why)."""
    try:
        with path.open("rb") as f:
            return f.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def prepare_folder(target: Path) -> Path:
    """`target`, a folder a command fills (`hpo retrain --out`), created: its parent must exist, as an output
    file's folder must (prepare_output), and it must not be a file. Raises CovblendError naming the path."""
    _parent_ready(target)
    if target.exists() and not target.is_dir():
        raise CovblendError(f"cannot write into {target}: it is a file")
    try:
        target.mkdir(exist_ok=True)
    except OSError as e:
        raise CovblendError(f"cannot create {target}: {e.strerror}") from None
    return target


def _parent_ready(target: Path) -> None:
    """Create target's folder when it is OUT_DIR; else raise CovblendError unless it exists."""
    folder = target.parent
    if folder.resolve() == OUT_DIR.resolve():
        try:
            folder.mkdir(exist_ok=True)
        except OSError as e:
            raise CovblendError(f"cannot create output folder {folder}: {e.strerror}") from None
    if not folder.is_dir():
        raise CovblendError(f"cannot write {target}: directory {folder} does not exist")
