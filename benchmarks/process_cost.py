"""What an `hpo` process costs before and after its work: importing the CLI, an optimiser's first step (torch.optim's
AdamW, which imports torch._dynamo then, against core.optim's, which training uses), and the interpreter's exit with
the heap as it is and frozen (gc.freeze, what hpo.cli.main and every worker process do before they exit).

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

# The child times an AdamW's construction and first step on a small network, after the imports that training has.
FIRST_STEP = """
import time
import torch, hpo.cli, core.optim
net = torch.nn.Linear(64, 64)
net(torch.ones(64)).sum().backward()
t0 = time.process_time()
{step}
print(time.process_time() - t0, flush=True)
"""
STEPS = {
    "torch.optim.AdamW": "torch.optim.AdamW(net.parameters(), lr=1e-3).step()",
    "core.optim.AdamW": "core.optim.AdamW(net.parameters()).step(1e-3)",
}


def first_step(step: str) -> float:
    """CPU seconds of one fresh process's first optimiser construction and step."""
    code = FIRST_STEP.format(step=step)
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


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
    steps = {name: [] for name in STEPS}
    for _ in range(args.repeats):  # alternating, so that the machine's drift hits both alike
        for name, step in STEPS.items():
            steps[name].append(first_step(step))

    def figure(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} s [{min(values):.2f}-{max(values):.2f}]"

    print(f"import hpo.cli: {figure([imp for imp, _ in runs[False] + runs[True]])}")
    for name, values in steps.items():
        print(f"first step, {name + ' (CPU)':<24} {figure(values)}")
    print(f"exit, heap as it is: {figure([ex for _, ex in runs[False]])}")
    print(f"exit, heap frozen:   {figure([ex for _, ex in runs[True]])}")


if __name__ == "__main__":
    main()
