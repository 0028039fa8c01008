"""GPU figures of issue 15, in one run of a few minutes on one GPU (the figures of the README's GPU section).

    python benchmarks/gpu.py            # on a machine with a CUDA GPU
    python benchmarks/gpu.py --smoke    # tiny sizes, on the CPU when there is no GPU: checks the script runs

Prints, GPU beside the CPU limited to 2 threads (the 2-core machine the other figures come from):
  1. a `quick` trial's wall time (studies/quick.toml, the same params on both devices, data already cached);
  2. `default`-sized training steps/s (ModelConfig defaults, the default scenario) at batch 256, 1024 and 4096,
     float32 and with amp (bf16 autocast) + tf32, through core.train.train itself (validation time subtracted);
  3. MUSIC scenes/s on the 241×64 grid for 10k scenes (eigengap order, refinement and repair);
  4. the stochastic CRB (float64) for 10k scenes;
  5. quick-study trials/hour of `hpo run --workers 4 --gpus 0` against `--workers 1 --gpus 0` (SQLite; the rate
     is measured from the trials' own start and end times, so process start-up does not count).
The last lines check the issue's targets: a training step >= 20x the 2-thread CPU at batch >= 1024, MUSIC >= 50k
scenes/s, 4 workers on one GPU >= 2x the trials/hour of one. SNR = p_k/σ² per element and per source.
Everything runs under the deterministic torch settings every trial uses (core.reproducibility.deterministic).
Figures only, never asserts; times on shared machines are noisy.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import optuna
import torch
from trial_timing import TimedObjective

from core.covariance import PipelineConfig, sample_covariance
from core.crb import scene_crb
from core.experiment import ExperimentConfig
from core.grid import build_grid
from core.music import music
from core.reproducibility import deterministic
from core.scenario import ScenarioConfig, generate
from core.train import train, validate
from hpo.study.spec import load_spec

REPO = Path(__file__).resolve().parents[1]
HPO = str(Path(sys.executable).parent / "hpo")
CPU_THREADS = 2  # the CPU baseline: the 2-core machine of the other figures

# Sizes of a full run (one GPU, a few minutes) and of --smoke (CPU, under a minute).
SIZES = {
    "full": {"batches": (256, 1024, 4096), "cpu_batches": (256, 1024), "gpu_steps": 16, "cpu_steps": 3,
             "model": {}, "scenes": 10_000, "quick_trials": 2, "workers": 4, "trials_1": 4, "trials_w": 12},
    "smoke": {"batches": (32,), "cpu_batches": (32,), "gpu_steps": 2, "cpu_steps": 2,
              "model": {"width": 32, "depth": 1}, "scenes": 64, "quick_trials": 1, "workers": 2, "trials_1": 1,
              "trials_w": 2},
}  # fmt: skip
SMOKE_SPEC = """extends = "quick"
[study]
figure_scenes = 8
[data]
n_train = 128
n_val = 64
[train]
epochs = 2
threads = 1  # a smoke run shares the cores (step 5 runs two workers; the test suite runs beside it)
[localisation]
n_scenes = 8
[calibration]
n_scenes = 128
"""


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device):
    """(fn()'s result, its wall seconds) with the device's queue drained on both sides."""
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - t0


def _spec_path(smoke: bool, folder: Path) -> Path:
    if not smoke:
        return REPO / "studies" / "quick.toml"
    (folder / "quick.toml").write_text((REPO / "studies" / "quick.toml").read_text())
    (folder / "smoke.toml").write_text(SMOKE_SPEC)
    return folder / "smoke.toml"


def quick_trial_s(spec_path: Path, device: str, trials: int) -> float:
    """Median wall seconds of `quick` trials after a first one that generates and caches the data."""
    spec = load_spec(str(spec_path))
    spec = spec.replace(train=spec.train.replace(device=device, threads=CPU_THREADS))
    objective = TimedObjective(spec)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))  # the same params on each device
    study.optimize(objective, n_trials=1 + trials)
    return statistics.median(t.total_s for t in objective.timings[1:])


def steps_per_s(device: str, batch: int, steps: int, model: dict, amp: bool = False) -> float:
    """Training steps/s of the default model (`model` overrides) at `batch`: epoch 1 of train(), less validation."""
    sizes = {"epochs": 2, "batch_size": batch, "n_train": batch * steps, "n_val": batch, "fresh_data": False}
    run = {"device": device, "threads": CPU_THREADS, "amp": amp, "tf32": amp}
    cfg = ExperimentConfig.from_dict({"model": model, "train": sizes | run})
    dev, ends, cache = torch.device(device), [], {}

    def on_epoch(epoch: int, metrics: dict) -> None:
        _sync(dev)
        ends.append(time.perf_counter())

    result = train(cfg, on_epoch, data_cache=cache)
    val = next(v for key, v in cache.items() if key[2] == cfg.train.val_seed)  # keys: (scenario, n, seed, device)
    _, val_s = _timed(lambda: validate(result.model, cfg, val), dev)
    return steps / (ends[1] - ends[0] - val_s)


def music_scenes_per_s(device: str, scenes: int) -> float:
    """Scenes/s of music() on the default 241×64 grid, eigengap order, refinement and repair."""
    scenario, dev = ScenarioConfig(), torch.device(device)
    batch = generate(scenario, scenes, seed=11, device=dev)
    R = sample_covariance(batch.Y, batch.H, PipelineConfig().tikhonov_alpha)
    grid = build_grid(scenario, device=dev)
    music(R[:64], grid, scenario.scene.k_max)  # warm-up: kernels, workspaces
    _, seconds = _timed(lambda: music(R, grid, scenario.scene.k_max), dev)
    return scenes / seconds


def crb_seconds(device: str, scenes: int) -> float:
    """Seconds of the float64 stochastic CRB of `scenes` default scenes."""
    scenario, dev = ScenarioConfig(), torch.device(device)
    batch = generate(scenario, scenes, seed=12, device=dev)
    scene_crb(batch[:64], scenario.array)
    return _timed(lambda: scene_crb(batch, scenario.array), dev)[1]


def trials_per_hour(spec_path: Path, workers: int, n_trials: int, gpus: str | None, folder: Path) -> float:
    """Finished trials per hour of `hpo run --workers W [--gpus G]`, from the first start to the last end."""
    url = f"sqlite:///{folder / f'w{workers}.db'}"
    cmd = [HPO, "run", "--study", str(spec_path), "--storage", url, "--workers", str(workers)]
    cmd += ["--n-trials", str(n_trials), "--json", "--artifacts", str(folder / "artifacts")]
    cmd += ["--gpus", gpus] if gpus else []
    subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=folder)
    trials = optuna.load_study(study_name=spec_path.stem, storage=url).trials
    start = min(t.datetime_start for t in trials)
    end = max(t.datetime_complete for t in trials if t.datetime_complete)
    return len(trials) / (end - start).total_seconds() * 3600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; runs on the CPU when there is no GPU")
    args = parser.parse_args()
    size = SIZES["smoke" if args.smoke else "full"]
    if not args.smoke and not torch.cuda.is_available():
        sys.exit("error: no CUDA GPU here; run with --smoke to check the script on the CPU")
    deterministic()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Ops without a deterministic CUDA kernel warn once per call site (warn_only); the figures are the point here.
    warnings.filterwarnings("ignore", message=".*deterministic.*")
    fast = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name(0) if fast == "cuda" else "no GPU (smoke run on the CPU)"
    print(f"device: {name}; CPU baseline: {CPU_THREADS} threads; torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spec = _spec_path(args.smoke, folder)

        trial = {d: quick_trial_s(spec, d, size["quick_trials"]) for d in dict.fromkeys((fast, "cpu"))}
        ratio = trial["cpu"] / trial[fast]
        print(f"1. quick trial: {fast} {trial[fast]:.2f} s, cpu {trial['cpu']:.2f} s, x{ratio:.1f}")

        speedups = []
        for batch in size["batches"]:
            gpu = steps_per_s(fast, batch, size["gpu_steps"], size["model"])
            mixed = steps_per_s(fast, batch, size["gpu_steps"], size["model"], amp=True)
            if batch not in size["cpu_batches"]:
                cpu = None
            elif fast == "cpu":  # a smoke run without a GPU: its "GPU" figure is the CPU one already
                cpu = gpu
            else:
                cpu = steps_per_s("cpu", batch, size["cpu_steps"], size["model"])
            vs = "cpu not run" if cpu is None else f"cpu {cpu:.2f} steps/s, x{gpu / cpu:.1f}"
            print(f"2. default training, batch {batch}: {fast} {gpu:.1f} steps/s, amp+tf32 {mixed:.1f}; {vs}")
            if cpu is not None and batch >= 1024:
                speedups.append(max(gpu, mixed) / cpu)

        rate = music_scenes_per_s(fast, size["scenes"])
        print(f"3. MUSIC 241x64, {size['scenes']} scenes (order, refinement, repair): {rate:,.0f} scenes/s on {fast}")
        print(f"4. stochastic CRB, {size['scenes']} scenes, float64: {crb_seconds(fast, size['scenes']):.3f} s")

        gpus = "0" if fast == "cuda" else None
        one = trials_per_hour(spec, 1, size["trials_1"], gpus, folder)
        many = trials_per_hour(spec, size["workers"], size["trials_w"], gpus, folder)
        where = "--gpus 0" if gpus else "CPU (no --gpus)"
        print(f"5. quick study, {where}: 1 worker {one:.0f} trials/h, {size['workers']} workers {many:.0f} trials/h,"
              f" x{many / one:.2f}")  # fmt: skip

    if not args.smoke:
        step = max(speedups, default=0.0)
        print(f"target training step >= 20x CPU at batch >= 1024: x{step:.1f} {'met' if step >= 20 else 'NOT met'}")
        print(f"target MUSIC >= 50k scenes/s: {rate:,.0f} {'met' if rate >= 50_000 else 'NOT met'}")
        print(f"target 4 workers >= 2x one: x{many / one:.2f} {'met' if many / one >= 2 else 'NOT met'}")


if __name__ == "__main__":
    main()
