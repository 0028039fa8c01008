"""Retrain a study's top trials over several seeds to the full budget, and pick the winner by its MEAN.

A search trial is one seed at a short budget, so its value mixes the params' merit with seed luck. Each
chosen trial is retrained with seeds trial_seed, trial_seed+1, ... (trial_seed: the `seed` user attr the
objective recorded). The winner is the best MEAN of the study's own values (its objective: loc_gain_db, NMSE or
both; hpo.study.ranking) over the seeds, re-measured on validation scenes the search never saw: every retrain
validates on a seed of its own (RETRAIN_PURPOSE), apart from the search's validation and calibration scenes
and from `hpo evaluate`'s.

Layout of the output folder:
    runs/trial-NNNN/seed-S.json   one finished seed: its config, final metrics, evaluation report, wall time
    runs/trial-NNNN/seed-S.pt     its checkpoint (core.train.save_checkpoint)
    checkpoint.pt                 the winner's best seed on the retrain's validation scenes (the study's first value)
    evaluation.json, .png         `hpo evaluate`'s report and plot of checkpoint.pt
    provenance.json               spec, params, seeds, versions, git commit, device, determinism, wall time
A seed's JSON is written last and atomically; a rerun skips every seed whose JSON matches its config and
evaluation settings, so an interrupted retrain goes on where it stopped.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial

from core.errors import CovblendError
from core.evaluation import EvalConfig, evaluate
from core.experiment import ExperimentConfig
from core.localisation import derived_seed
from core.reproducibility import deterministic, git_commit
from core.train import NonFiniteGradientError, save_checkpoint, train
from hpo.paths import prepare_folder
from hpo.provenance import versions
from hpo.results.checkpoint_eval import plot_report
from hpo.storage import internals
from hpo.storage.guard import GuardedStorage
from hpo.study import ranking
from hpo.study.objective import VALUES
from hpo.study.spec import StudySpec

MEAN_PREFIX, STD_PREFIX = "retrain_mean_", "retrain_std_"  # + a metric name: user attrs of a retrained trial
SEEDS_ATTR, EPOCHS_ATTR = "retrain_seeds", "retrain_epochs"
MAX_SEEDS = 100  # seeds per trial; each is a full training run, so more is a typo rather than a plan
RETRAIN_PURPOSE = "retrain"  # the retrain's validation seed is derived_seed(the spec's val_seed, this)
FILES = ("checkpoint.pt", "provenance.json", "evaluation.json", "evaluation.png")


class RetrainError(CovblendError):
    """Nothing to retrain (no such trial, no complete trial) or no trial survived retraining."""


@dataclass(frozen=True)
class TrialSummary:
    """One retrained trial: per-seed final values of the study's objective, NMSE, health and MUSIC accuracy."""

    number: int  # the study's trial number
    params: dict  # its searched params
    search_values: tuple[float, ...]  # its values in the search (its seed, the search's epochs)
    seeds: tuple[int, ...]  # the seeds retrained, in order
    values: tuple[tuple[float, ...], ...]  # per seed, the study's values on fresh validation scenes; nan: diverged
    nmse_db: tuple[float, ...]  # final val NMSE per seed, dB; nan where training diverged
    health: tuple[float, ...]  # final eigengap health per seed, in [0, 1]; nan where training diverged
    angle_rmse_deg: dict[float, float | None] = field(default_factory=dict)  # SNR dB -> seed-mean, oracle K
    range_rmse_m: dict[float, float | None] = field(default_factory=dict)  # SNR dB -> seed-mean, metres

    @property
    def diverged(self) -> int:
        return sum(not all(math.isfinite(v) for v in vs) for vs in self.values)

    @property
    def mean_values(self) -> tuple[float, ...]:
        """Mean over seeds of each value; nan when any seed diverged, so an unstable trial cannot win."""
        if self.diverged:
            return tuple(math.nan for _ in self.values[0])
        return tuple(statistics.fmean(column) for column in zip(*self.values, strict=True))

    @property
    def std_values(self) -> tuple[float, ...] | None:
        """Sample standard deviation over seeds of each value; None with one seed or a diverged seed."""
        if len(self.values) < 2 or self.diverged:
            return None
        return tuple(statistics.stdev(column) for column in zip(*self.values, strict=True))

    @property
    def mean_health(self) -> float:
        return statistics.fmean(self.health) if not self.diverged else math.nan

    def record(self) -> dict:
        """The summary as `hpo retrain --json` prints it: its fields, then the means and stds over seeds."""
        return asdict(self) | {"mean_values": self.mean_values, "std_values": self.std_values}


def metric_names(study: optuna.Study, spec: StudySpec) -> list[str]:
    """The names of the study's values: as stored in the study, else the spec's."""
    return study.metric_names or spec.study.metric_names


def top_trials(study: optuna.Study, top: int, number: int | None = None) -> list[FrozenTrial]:
    """Trial `number` if given (it must be COMPLETE), else the `top` COMPLETE trials in hpo.study.ranking's
    order: feasible ones first (eigengap-health constraint met), then by value."""
    trials = study.get_trials(deepcopy=False)
    done = ranking.ranked(trials, study.directions)
    if number is not None:
        chosen = [t for t in done if t.number == number]
        if not chosen:
            states = {t.number: t.state.name for t in trials}
            have = states.get(number, "not in the study")
            raise RetrainError(f"trial {number} of study {study.study_name!r} is not COMPLETE ({have})")
        return chosen
    if not done:
        raise RetrainError(f"study {study.study_name!r} has no COMPLETE trial to retrain")
    return done[:top]


def seeds_of(trial: FrozenTrial, spec: StudySpec, n: int) -> list[int]:
    """The trial's recorded seed and the n-1 after it."""
    base = int(trial.user_attrs.get("seed", spec.train.seed))
    return [base + i for i in range(n)]


def trial_config(
    spec: StudySpec, trial: FrozenTrial, seed: int, epochs: int, val_scenes: int | None = None
) -> ExperimentConfig:
    """The trial's experiment (spec + its params) with `epochs` and training seed `seed`, on the thread count
    the trial ran with (parallel reductions round differently with another count); val_scenes: the localisation
    scenes per SNR point the seeds are ranked on, default the spec's final_scenes (none where its search scored
    none)."""
    d = spec.experiment_dict(trial.params)
    threads = trial.user_attrs.get("threads", spec.train.threads)
    val_seed = derived_seed(spec.train.val_seed, RETRAIN_PURPOSE)  # fresh validation scenes (module docstring)
    d["train"].update(epochs=epochs, seed=seed, threads=threads, val_seed=val_seed)
    if spec.localisation.n_scenes or val_scenes:  # more than the search's few: they cannot rank near-equal seeds
        d["localisation"]["n_scenes"] = val_scenes or spec.final_scenes
    return ExperimentConfig.from_dict(d)


def _write_json(path: Path, data: dict) -> None:
    """Write atomically: a crash leaves the old file or none, never half of one."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    os.replace(tmp, path)


def seed_paths(out: Path, number: int, seed: int) -> tuple[Path, Path]:
    """(record JSON, checkpoint) of one seed of one trial under out/runs/."""
    folder = out / "runs" / f"trial-{number:04d}"
    return folder / f"seed-{seed}.json", folder / f"seed-{seed}.pt"


def load_record(path: Path, cfg: ExperimentConfig, eval_cfg: EvalConfig) -> dict | None:
    """A finished seed's record when it was made with this config and evaluation settings, else None."""
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    same = record.get("config") == cfg.to_dict() and record.get("eval_config") == eval_cfg.model_dump(mode="json")
    return record if same else None


def run_seed(
    out: Path, number: int, cfg: ExperimentConfig, eval_cfg: EvalConfig, objective: str, cache: dict, on_epoch=None
) -> dict:
    """Train one seed, save its checkpoint, evaluate it, then write its record (last, atomically); "values" are
    the study's objective's values of the final epoch (hpo.study.objective.VALUES[objective])."""
    record_path, ckpt = seed_paths(out, number, cfg.train.seed)
    record_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    record = {
        "trial": number,
        "seed": cfg.train.seed,
        "config": cfg.to_dict(),
        "eval_config": eval_cfg.model_dump(mode="json"),
    }
    try:
        result = train(cfg, on_epoch=on_epoch, data_cache=cache)
    except NonFiniteGradientError as e:
        # A diverged seed is a result too: recorded, so a rerun does not try it again.
        failed = {"nmse_db": math.nan, "eigengap_health": math.nan, "values": None, "diverged": str(e)}
        record.update(failed, train_s=time.perf_counter() - start)
        _write_json(record_path, record)
        return record
    train_s = time.perf_counter() - start
    save_checkpoint(ckpt, result, result.cfg)  # result.cfg: with the calibrated blend's final table
    t0 = time.perf_counter()
    report = evaluate(result.model, result.cfg.scenario, result.cfg.pipeline, eval_cfg)
    values = VALUES[objective](result.final)
    record.update(
        values=None if values is None else [float(v) for v in values],
        nmse_db=float(result.final["nmse_db"]),
        eigengap_health=float(result.final["eigengap_health"]),
        final=result.final,
        checkpoint=ckpt.name,
        evaluation=report,
        train_s=train_s,
        eval_s=time.perf_counter() - t0,
        device=str(next(result.model.parameters()).device),
    )
    _write_json(record_path, record)
    return record


def summarise(trial: FrozenTrial, records: list[dict]) -> TrialSummary:
    """Seed records of one trial -> its TrialSummary (RMSEs: seed means of learned MUSIC, oracle K)."""
    angle: dict[float, list[float]] = {}
    rng: dict[float, list[float]] = {}
    for r in records:
        for row in r.get("evaluation", {}).get("rows", []):
            learned = row["methods"]["learned"]
            angle.setdefault(row["snr_db"], []).append(learned["angle_rmse_deg"])
            rng.setdefault(row["snr_db"], []).append(learned["range_rmse_m"])

    def mean(values: list) -> float | None:
        return statistics.fmean(values) if values and None not in values else None

    nan = tuple(math.nan for _ in trial.values)
    return TrialSummary(
        number=trial.number,
        params=dict(trial.params),
        search_values=tuple(trial.values),
        seeds=tuple(int(r["seed"]) for r in records),
        values=tuple(tuple(r["values"]) if r.get("values") else nan for r in records),
        nmse_db=tuple(float(r["nmse_db"]) for r in records),
        health=tuple(float(r["eigengap_health"]) for r in records),
        angle_rmse_deg={s: mean(v) for s, v in angle.items()},
        range_rmse_m={s: mean(v) for s, v in rng.items()},
    )


def winner(summaries: list[TrialSummary], directions: list[optuna.study.StudyDirection]) -> TrialSummary:
    """The trial with the best MEAN of the study's values over its seeds (hpo.study.ranking.signed: on a Pareto
    front the best first value); a trial with a diverged seed cannot win."""
    eligible = [s for s in summaries if not s.diverged]
    if not eligible:
        raise RetrainError("every retrained trial diverged on at least one seed; no winner")
    return min(eligible, key=lambda s: ranking.signed(s.mean_values, directions))


def best_seed(records: list[dict], directions: list[optuna.study.StudyDirection]) -> dict:
    """The seed with the best study's first value on the retrain's validation scenes (the lower seed on a tie).

    Selection on scenes of the retrain's own seed, apart from `hpo evaluate`'s, so the evaluation of what ships stays
    unbiased. Seeds of one trial differ in what they learn, not only in luck: two seeds of one `quick` trial shipped
    tables (0.85, 0.85, 0.93, 1, ...) and (0.7, 0.7, 0.85, 1, ...), +0.50 and +0.75 dB on these scenes and +0.38 and
    +0.74 on fresh ones (docs/results.md): a typical seed would ship the weaker one half the time."""
    return min(records, key=lambda r: (ranking.signed(r["values"][:1], directions[:1]), r["seed"]))


def annotate(storage: GuardedStorage, trial: FrozenTrial, summary: TrialSummary, epochs: int, names: list[str]) -> None:
    """Store the retrain results as user attrs of the original (finished) trial, where the dashboard shows them:
    retrain_mean_<metric> and retrain_std_<metric> for each of the study's values (names), seeds, epochs."""
    std = summary.std_values or (None,) * len(names)
    attrs: dict = {SEEDS_ATTR: list(summary.seeds), EPOCHS_ATTR: epochs}
    for name, m, sd in zip(names, summary.mean_values, std, strict=True):
        attrs |= {MEAN_PREFIX + name: m if math.isfinite(m) else None, STD_PREFIX + name: sd}
    storage.annotate_trial(internals.trial_id(trial), attrs, f"retrain results on trial {trial.number}")


def write_outputs(
    out: Path, best: TrialSummary, records: list[dict], directions: list[optuna.study.StudyDirection], provenance: dict
) -> dict:
    """Copy the winner's best seed's checkpoint, write its evaluation JSON + plot and provenance.json."""
    chosen = best_seed(records, directions)
    _, ckpt = seed_paths(out, best.number, chosen["seed"])
    shutil.copyfile(ckpt, out / "checkpoint.pt")
    report = {**chosen["evaluation"], "checkpoint": str(out / "checkpoint.pt")}
    _write_json(out / "evaluation.json", report)
    plot_report(report, out / "evaluation.png")
    provenance = {**provenance, "checkpoint_seed": chosen["seed"], "checkpoint_values": chosen["values"]}
    _write_json(out / "provenance.json", provenance)
    return provenance


def provenance_of(
    spec: StudySpec, study: optuna.Study, best: TrialSummary, records: list[dict], every: list[dict], call_s: float
) -> dict:
    """Everything the winner's result depends on, JSON-ready. records: the winner's seeds; every: all seeds."""
    cfg = records[0]["config"]

    def wall(r: dict) -> float:
        return r.get("train_s", 0.0) + r.get("eval_s", 0.0)

    return {
        "study": study.study_name,
        "trial": best.number,
        "params": best.params,
        "seeds": list(best.seeds),
        "metric_names": metric_names(study, spec),  # the names the retrain ranked by: the study's, else the spec's
        "values": {"per_seed": [list(v) for v in best.values], "mean": best.mean_values, "std": best.std_values},
        "val_nmse_db": {"per_seed": list(best.nmse_db)},
        "validation_seed": records[0]["config"]["train"]["val_seed"],
        "search_values": list(best.search_values),
        "epochs": cfg["train"]["epochs"],
        "spec": spec.model_dump(mode="json"),
        "experiment_config": cfg,
        "versions": versions(),
        "git_commit": git_commit(),
        "device": records[0].get("device", cfg["train"]["device"]),
        "threads": cfg["train"].get("threads"),
        "determinism": deterministic(),
        # seconds of training + evaluation; seeds finished by an earlier, interrupted call keep their own time
        "wall_s": {"winner_seeds": [wall(r) for r in records], "all_seeds": sum(map(wall, every)), "this_call": call_s},
    }


class RetrainWatcher:
    """What a progress display hears from `retrain`; the base class ignores everything."""

    def seed_started(self, number: int, seed: int, index: int, total: int) -> None: ...

    def epoch(self, epoch: int, metrics: dict) -> None: ...

    def seed_finished(self, record: dict, skipped: bool) -> None: ...


@dataclass(frozen=True)
class RetrainResult:
    summaries: list[TrialSummary]  # one per retrained trial, in search rank order
    winner: TrialSummary  # best mean of the study's values
    provenance: dict  # as written to provenance.json
    trained: int  # seeds trained by this call
    skipped: int  # seeds found finished in the output folder

    def record(self) -> dict:
        """The result as `hpo retrain --json` prints it: the winner, the seeds trained and reused, every trial."""
        found = {"winner": self.winner.number, "checkpoint_seed": self.provenance["checkpoint_seed"]}
        found |= {"metric_names": self.provenance["metric_names"], "trained": self.trained, "reused": self.skipped}
        return found | {"trials": [t.record() for t in self.summaries]}


def warnings_for(study: optuna.Study, trials: list[FrozenTrial], spec: StudySpec) -> list[str]:
    """Reasons the retrain may not repeat the search: a changed spec or other package versions."""
    notes = []
    if any(t.user_attrs.get("spec_hash", spec.digest) != spec.digest for t in trials):
        notes.append(f"spec {spec.path} changed since the search ran; results may not repeat the trials' values")
    now = versions()
    for t in trials:
        then = t.user_attrs.get("versions")
        if then and then != now:
            changed = sorted(k for k in now if then.get(k) != now[k])
            notes.append(f"trial {t.number} ran with other versions of {', '.join(changed)}")
    return notes


def retrain(
    study: optuna.Study,
    storage: GuardedStorage,
    spec: StudySpec,
    out: Path,
    *,
    top: int,
    seeds: int,
    epochs: int | None = None,
    val_scenes: int | None = None,
    number: int | None = None,
    eval_cfg: EvalConfig | None = None,
    watcher: RetrainWatcher | None = None,
) -> RetrainResult:
    """Retrain the top trials (or trial `number`) with `seeds` seeds for `epochs` (default: the spec's
    final_epochs), sequentially; skip seeds already finished in `out`; store the results on the trials and
    write the winner's files (module docstring)."""
    epochs = epochs or spec.final_epochs
    eval_cfg = eval_cfg or EvalConfig()
    watcher = watcher or RetrainWatcher()
    deterministic()
    trials = top_trials(study, top, number)
    plan = [(t, s, trial_config(spec, t, s, epochs, val_scenes)) for t in trials for s in seeds_of(t, spec, seeds)]
    prepare_folder(out)  # after every config is valid: a bad --epochs leaves no folder behind
    records: dict[int, list[dict]] = {t.number: [] for t in trials}
    cache: dict = {}  # validation (and fixed training) scenes, shared by every seed of this call
    start, trained = time.perf_counter(), 0
    for index, (trial, seed, cfg) in enumerate(plan):
        record = load_record(seed_paths(out, trial.number, seed)[0], cfg, eval_cfg)
        skipped = record is not None
        if not skipped:
            watcher.seed_started(trial.number, seed, index, len(plan))
            record = run_seed(out, trial.number, cfg, eval_cfg, spec.study.objective, cache, watcher.epoch)
            trained += 1
        watcher.seed_finished(record, skipped)
        records[trial.number].append(record)
    summaries = [summarise(t, records[t.number]) for t in trials]
    names = metric_names(study, spec)
    for trial, summary in zip(trials, summaries, strict=True):
        annotate(storage, trial, summary, epochs, names)
    best = winner(summaries, study.directions)
    every = [r for rs in records.values() for r in rs]
    provenance = provenance_of(spec, study, best, records[best.number], every, time.perf_counter() - start)
    provenance = write_outputs(out, best, records[best.number], study.directions, provenance)
    return RetrainResult(summaries, best, provenance, trained, len(plan) - trained)
