"""What an `hpo` process costs before and after its work: importing the CLI, and the interpreter's exit with the
heap as it is and frozen (gc.freeze, what hpo.cli.main and every worker process do before they exit).

    python benchmarks/process_cost.py [--repeats 5]

Prints the median and range of each over fresh processes. The test suite starts about 80 such processes
(`hpo` commands and their spawned workers), so each second here is about a minute of the suite's CPU.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

# The child prints the wall clock after its imports and again as its last statement; the parent notes when the
# process is gone. Exit = gone - last statement: the interpreter's teardown.
CHILD = """
import time
t0 = time.time()
import hpo.cli
t1 = time.time()
{freeze}
print(t0, t1, time.time(), flush=True)
"""


def one(freeze: bool) -> tuple[float, float]:
    """(import seconds, exit seconds) of one fresh process importing hpo.cli."""
    code = CHILD.format(freeze="import gc; gc.freeze()" if freeze else "")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    gone = time.time()
    t0, t1, last = map(float, done.stdout.split())
    return t1 - t0, gone - last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes per figure (default 5)")
    args = parser.parse_args()
    if args.repeats < 1:
        sys.exit(f"error: --repeats must be >= 1, got {args.repeats}")
    runs = {freeze: [one(freeze) for _ in range(args.repeats)] for freeze in (False, True)}

    def figure(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} s [{min(values):.2f}-{max(values):.2f}]"

    print(f"import hpo.cli: {figure([imp for imp, _ in runs[False] + runs[True]])}")
    print(f"exit, heap as it is: {figure([ex for _, ex in runs[False]])}")
    print(f"exit, heap frozen:   {figure([ex for _, ex in runs[True]])}")


if __name__ == "__main__":
    main()
