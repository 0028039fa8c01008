"""What /proc says about the processes a test started: their state and their spawned workers."""

from __future__ import annotations

from pathlib import Path


def stat_fields(stat: Path) -> list[str]:
    """The fields of a /proc/PID/stat file after the command name (which may hold spaces): state, ppid, ..."""
    return stat.read_text().rsplit(")", 1)[1].split()


def state(pid: int) -> str:
    """A process's state letter: "T" stopped, "R" running, "S" sleeping, "Z" a zombie, ..."""
    return stat_fields(Path("/proc") / str(pid) / "stat")[0]


def gone(pid: int) -> bool:
    """Whether pid has exited (a zombie counts: an orphan's reaper may be slow, or absent in a container)."""
    try:
        return state(pid) == "Z"
    except (OSError, IndexError):
        return True


def worker_pids(parent: int) -> list[int]:
    """The spawned worker processes of `parent` (multiprocessing's resource tracker left out)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat_fields(stat)[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
        if ppid == parent and b"spawn_main" in cmdline:
            pids.append(int(stat.parent.name))
    return sorted(pids)
