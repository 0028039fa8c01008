"""The Optuna objective: one trial = configs from spec + suggested params, `epochs` of core.train.train.

`[study] objective` (hpo.study.spec.OBJECTIVES) picks the study's values from the validation metrics (VALUES):
    nmse          val NMSE of R_blend, dB
    localisation  angle_eff_db + 1e-3·range_eff_db: MUSIC's angle error over the CRB (core.localisation); the
                  small range term only breaks ties between trials whose angle figures agree
    multi         (val NMSE dB, angle_eff_db)
After every epoch that has the values, a single-objective trial reports them and asks Optuna's pruner; a
multi-objective one (trial.report raises there) adds them to its curve (hpo.study.pruners.CURVE_ATTR) and asks the
study's multi-objective pruner, except after the last epoch, where pruning would save nothing.

Eigengap health is a constraint in every mode: the final health gives threshold - health <= 0, which Optuna
5's TPE and GP samplers read from the trial itself. User attrs keep it readable: "eigengap_health_final" and
"feasible" as scalars, and "eigengap_health", the per-epoch curve rounded to 3 decimals. A
NonFiniteGradientError is a PRUNED trial with prune_reason "nonfinite_gradient"; any other error is a FAIL
with its fail_reason, and the worker goes on. Given an artifact store, a COMPLETE trial that beats the best so
far uploads its checkpoint (hpo.results.artifacts).

Storage round trips are the objective's share of per-trial overhead, so user attrs go in groups: provenance in
one write at the start, the final metrics in one at the end, and each epoch's health (and curve) together with
that epoch's report (hpo.storage.guard.GuardedStorage.set_trial_user_attrs). Attribute names are one key per value, as
readers (hpo report/retrain/html_report, the dashboard's table) expect.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import optuna
from optuna.artifacts import FileSystemArtifactStore

from core.localisation import KEYS as LOCALISATION_KEYS
from core.reproducibility import deterministic
from core.train import ExperimentConfig, NonFiniteGradientError, train
from hpo.provenance import placement, versions
from hpo.results.artifacts import beats_best, upload_checkpoint
from hpo.storage.guard import GuardedStorage
from hpo.study.pruners import CURVE_ATTR
from hpo.study.spec import SearchParam, StudySpec

NONFINITE = "nonfinite_gradient"  # prune_reason of a trial whose loss or gradient went NaN/inf
RANGE_TIE_WEIGHT = 1e-3  # weight of range_eff_db in the localisation value: a tie-breaker, not a trade-off


def _localisation_value(m: dict) -> float:
    return m["angle_eff_db"] + RANGE_TIE_WEIGHT * m["range_eff_db"]


# The study's values from a metrics dict (core.train), by objective; an epoch without the metric has none.
VALUES: dict[str, Callable[[dict], tuple[float, ...] | None]] = {
    "nmse": lambda m: (m["nmse_db"],),
    "localisation": lambda m: (_localisation_value(m),) if "angle_eff_db" in m else None,
    "multi": lambda m: (m["nmse_db"], m["angle_eff_db"]) if "angle_eff_db" in m else None,
}

# How each search type asks the trial for a value.
SUGGEST: dict[str, Callable[[optuna.Trial, str, SearchParam], object]] = {
    "float": lambda t, name, p: t.suggest_float(name, p.low, p.high, log=p.log, step=p.step),
    "int": lambda t, name, p: t.suggest_int(name, int(p.low), int(p.high), log=p.log, step=int(p.step or 1)),
    "categorical": lambda t, name, p: t.suggest_categorical(name, list(p.choices)),
}


@dataclass(frozen=True)
class TrialTiming:
    """Where one trial's seconds went, as the objective saw them."""

    number: int  # trial number
    total_s: float  # the objective call, start to end
    train_s: float  # inside core.train.train, epoch callbacks included
    callback_s: float  # inside the epoch callbacks: report, should_prune, user attrs (storage + pruner)


def record(trial: optuna.Trial, attrs: dict, report: tuple[int, float] | None = None) -> None:
    """Set user attrs, and report (step, value) if given, in one storage round trip where the storage allows.

    On a GuardedStorage this is one transaction; the trial's cached copy (what trial.user_attrs and the pruner
    read) is then updated the way Trial.set_user_attr and Trial.report update it. Other storages get the
    public calls, one per key.
    """
    backend = getattr(trial.storage, "_backend", trial.storage)  # under Optuna's per-study _CachedStorage
    if not isinstance(backend, GuardedStorage):
        if report is not None:
            trial.report(report[1], report[0])
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return
    backend.set_trial_user_attrs(trial._trial_id, attrs, report)
    cached = trial._cached_frozen_trial
    cached.user_attrs.update(attrs)
    if report is not None:
        cached.intermediate_values[report[0]] = report[1]


def suggest(trial: optuna.Trial, spec: StudySpec) -> dict:
    """The trial's values of the searched parameters, in spec order."""
    return {name: SUGGEST[p.type](trial, name, p) for name, p in spec.search.items()}


class Objective:
    """Callable objective for study.optimize. Keeps a per-process data cache shared by its trials.

    observer(trial_number, epoch, metrics), when given, sees every epoch (the live display uses it).
    artifacts, when given, receives the checkpoints of trials that beat the best so far.
    """

    def __init__(
        self,
        spec: StudySpec,
        observer: Callable[[int, int, dict], None] | None = None,
        artifacts: FileSystemArtifactStore | None = None,
    ) -> None:
        self.spec = spec
        self.observer = observer
        self.artifacts = artifacts
        self.data_cache: dict = {}  # core.train reuses generated datasets across trials through it
        self.timings: list[TrialTiming] = []
        self.current_trial_id: int | None = None  # the RUNNING trial of this process, for interrupt cleanup
        self.on_step: Callable[[int, int], None] | None = None  # core.train's step hook (run_worker's stop check)
        self._versions = versions()
        deterministic()  # the same torch settings as `hpo retrain`, so a trial's value can be reproduced

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        self.current_trial_id = trial._trial_id
        start = time.perf_counter()
        spent = {"train": 0.0, "callback": 0.0}
        try:
            return self._run(trial, spent)
        except NonFiniteGradientError as e:
            record(trial, {"prune_reason": NONFINITE, "epoch": e.epoch, "step": e.step, "parameter": e.parameter})
            raise optuna.TrialPruned(f"non-finite gradient at epoch {e.epoch} step {e.step} in {e.parameter}") from e
        except optuna.TrialPruned:
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("fail_reason", "interrupted")
            raise
        except Exception as e:
            # Any failure, a programming error included, is recorded, then re-raised so Optuna marks the trial
            # FAIL; the runner catches it and goes on. Without the reason a FAIL would say nothing.
            trial.set_user_attr("fail_reason", f"{type(e).__name__}: {e}"[:500])
            raise
        finally:
            total = time.perf_counter() - start
            self.timings.append(TrialTiming(trial.number, total, spent["train"], spent["callback"]))

    def _run(self, trial: optuna.Trial, spent: dict) -> float | tuple[float, float]:
        spec = self.spec
        params = suggest(trial, spec)
        cfg = ExperimentConfig.from_dict(spec.experiment_dict(params))
        provenance = {
            "seed": spec.train.seed,
            "val_seed": spec.train.val_seed,
            "spec": spec.name,
            "spec_hash": spec.digest,
            **placement(cfg.train.device),  # device, and the GPU of `hpo run --gpus`
            "threads": spec.train.threads,
            "versions": self._versions,
        }
        record(trial, provenance)
        values_of = VALUES[spec.study.objective]
        health: list[float] = []
        points: dict[str, list[float]] = {}  # the multi-objective curve, {"<epoch>": values}

        def on_epoch(epoch: int, metrics: dict) -> None:
            t0 = time.perf_counter()
            health.append(round(float(metrics["eigengap_health"]), 3))
            if self.observer:
                self.observer(trial.number, epoch, metrics)
            values = values_of(metrics)
            if values is not None and not all(math.isfinite(v) for v in values):
                values = None  # a non-finite value is never reported; the final check prunes the trial
            attrs: dict = {"eigengap_health": health}
            if values is not None and len(values) > 1:
                points[str(epoch)] = [round(float(v), 4) for v in values]
                attrs[CURVE_ATTR] = points
            single = values is not None and len(values) == 1
            record(trial, attrs, (epoch, values[0]) if single else None)
            if values is not None and should_prune(trial, epoch, len(values)):
                record(trial, {"prune_reason": "pruner", "epoch": epoch})
                spent["callback"] += time.perf_counter() - t0
                shown = ", ".join(f"{n}={v:.2f}" for n, v in zip(spec.study.metric_names, values, strict=True))
                raise optuna.TrialPruned(f"pruned at epoch {epoch} with {shown}")
            spent["callback"] += time.perf_counter() - t0

        def should_prune(trial: optuna.Trial, epoch: int, n_values: int) -> bool:
            if n_values == 1:
                return trial.should_prune()
            # Optuna refuses should_prune here; the study's pruner (hpo.study.pruners) reads the curve instead.
            last = epoch == spec.train.epochs - 1
            return not last and trial.study.pruner.prune(trial.study, trial._get_latest_trial())

        t_train = time.perf_counter()
        try:
            result = train(cfg, on_epoch=on_epoch, data_cache=self.data_cache, on_step=self.on_step)
        finally:
            spent["train"] = time.perf_counter() - t_train
        final = result.final
        nmse, nmse_samp, h = float(final["nmse_db"]), float(final["nmse_samp_db"]), float(final["eigengap_health"])
        feasible = spec.study.health_threshold - h <= 0
        metrics = {
            "nmse_db": nmse,
            "nmse_samp_db": nmse_samp,
            "gain_db": nmse_samp - nmse,  # > 0: R_blend beats R_samp
            "eigengap_health_final": h,
            "feasible": feasible,  # eigengap health >= the study's health_threshold
            "mean_gap": float(final["mean_gap"]),
            **{key: float(final[key]) for key in LOCALISATION_KEYS if key in final},
            "train_s": round(spent["train"], 3),
        }
        values = values_of(final)
        if values is None or not all(math.isfinite(v) for v in values):
            record(trial, {**metrics, "prune_reason": "nonfinite_metric"})
            raise optuna.TrialPruned(f"final {spec.study.metric_names} is {values}")
        record(trial, metrics)
        trial.set_constraint("eigengap_health", spec.study.health_threshold - h)
        if self.artifacts is not None and beats_best(trial.study, values, feasible):
            upload_checkpoint(trial, result, self.artifacts)
        return values[0] if len(values) == 1 else values
