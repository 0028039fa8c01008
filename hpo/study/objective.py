"""The Optuna objective: one trial = configs from spec + suggested params, `epochs` of core.train.train.

The objectives (VALUES) and the health constraint: docs/design.md §7, "Objectives". A single-objective trial
reports each epoch's values to Optuna's pruner; a multi-objective one (trial.report raises there) adds them to
its curve (hpo.study.pruners.CURVE_ATTR) for the study's own pruner.

Storage round trips are the objective's share of per-trial overhead, so user attrs go in groups: provenance at
the start, the final metrics at the end, each epoch's health (and curve) with that epoch's report
(hpo.storage.guard.record). One key per value, as readers (hpo report/retrain, the dashboard's table) expect.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import optuna
from optuna.artifacts import FileSystemArtifactStore

from core.experiment import ExperimentConfig
from core.localisation import keys as localisation_keys
from core.reproducibility import deterministic
from core.train import NonFiniteGradientError, TrainResult, train
from hpo.provenance import placement, versions
from hpo.storage import internals
from hpo.storage.artifacts import upload_checkpoint
from hpo.storage.guard import INTERRUPTED, record
from hpo.study import ranking
from hpo.study.hooks import NO_HOOKS, TrialHooks
from hpo.study.pruners import CURVE_ATTR
from hpo.study.spec import SearchParam, StudySpec

NONFINITE = "nonfinite_gradient"  # prune_reason of a trial whose loss or gradient went NaN/inf

# The study's values from a metrics dict (core.train), by objective; an epoch without the metric has none.
# localisation: loc_gain_db, learned MUSIC's MSE gain over classic MUSIC on the same scenes (core.localisation).
VALUES: dict[str, Callable[[dict], tuple[float, ...] | None]] = {
    "nmse": lambda m: (m["nmse_db"],),
    "localisation": lambda m: (m["loc_gain_db"],) if "loc_gain_db" in m else None,
    "multi": lambda m: (m["nmse_db"], m["loc_gain_db"]) if "loc_gain_db" in m else None,
}

# How each search type asks the trial for a value.
SUGGEST: dict[str, Callable[[optuna.Trial, str, SearchParam], object]] = {
    "float": lambda t, name, p: t.suggest_float(name, p.low, p.high, log=p.log, step=p.step),
    "int": lambda t, name, p: t.suggest_int(name, int(p.low), int(p.high), log=p.log, step=int(p.step or 1)),
    "categorical": lambda t, name, p: t.suggest_categorical(name, list(p.choices)),
}


def suggest(trial: optuna.Trial, spec: StudySpec) -> dict:
    """The trial's values of the searched parameters, in spec order."""
    return {name: SUGGEST[p.type](trial, name, p) for name, p in spec.search.items()}


class Objective:
    """Callable objective for study.optimize. Keeps a per-process data cache shared by its trials.

    artifacts, when given, receives the checkpoints of trials that beat the best so far. A call's hooks (run_worker
    gives its own) hear every epoch and step of that trial.
    """

    def __init__(self, spec: StudySpec, artifacts: FileSystemArtifactStore | None = None) -> None:
        self.spec = spec
        self.artifacts = artifacts
        self.data_cache: dict = {}  # core.train reuses generated datasets across trials through it
        self._versions = versions()
        deterministic()  # the same torch settings as `hpo retrain`, so a trial's value can be reproduced

    def __call__(self, trial: optuna.Trial, hooks: TrialHooks = NO_HOOKS) -> float | tuple[float, float]:
        try:
            return self._run(trial, hooks)
        except NonFiniteGradientError as e:
            record(trial, {"prune_reason": NONFINITE, "epoch": e.epoch, "step": e.step, "parameter": e.parameter})
            raise optuna.TrialPruned(f"non-finite gradient at epoch {e.epoch} step {e.step} in {e.parameter}") from e
        except optuna.TrialPruned:
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("fail_reason", INTERRUPTED)
            raise
        except Exception as e:
            # Any failure, a programming error included, is recorded, then re-raised so Optuna marks the trial
            # FAIL; the runner catches it and goes on. Without the reason a FAIL would say nothing.
            trial.set_user_attr("fail_reason", f"{type(e).__name__}: {e}"[:500])
            raise

    def train(
        self, cfg: ExperimentConfig, on_epoch: Callable[[int, dict], None], on_step: Callable[[int, int], None] | None
    ) -> TrainResult:
        """core.train.train with this process's data cache (benchmarks time it by overriding)."""
        return train(cfg, on_epoch=on_epoch, data_cache=self.data_cache, on_step=on_step)

    def _run(self, trial: optuna.Trial, hooks: TrialHooks) -> float | tuple[float, float]:
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
            health.append(round(float(metrics["eigengap_health"]), 3))
            if hooks.on_epoch:
                hooks.on_epoch(trial.number, epoch, metrics)
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
                shown = ", ".join(f"{n}={v:.2f}" for n, v in zip(spec.study.metric_names, values, strict=True))
                raise optuna.TrialPruned(f"pruned at epoch {epoch} with {shown}")

        def should_prune(trial: optuna.Trial, epoch: int, n_values: int) -> bool:
            if epoch == spec.train.epochs - 1:
                return False  # training is done: pruning saves nothing, and the value is as real as a complete one's
            if n_values == 1:
                return trial.should_prune()
            # Optuna refuses should_prune here; the study's pruner (hpo.study.pruners) reads the curve instead.
            return trial.study.pruner.prune(trial.study, internals.latest(trial))

        start = time.perf_counter()
        result = self.train(cfg, on_epoch, hooks.on_step)
        train_s = time.perf_counter() - start
        final = result.final
        nmse, nmse_samp, h = float(final["nmse_db"]), float(final["nmse_samp_db"]), float(final["eigengap_health"])
        constraint = spec.study.health_threshold - h  # <= 0: the trial reaches the study's eigengap health
        feasible = ranking.is_feasible({"eigengap_health": constraint})
        metrics = {
            "nmse_db": nmse,
            "nmse_samp_db": nmse_samp,
            "gain_db": nmse_samp - nmse,  # > 0: R_blend beats R_samp
            "eigengap_health_final": h,
            "feasible": feasible,  # eigengap health >= the study's health_threshold
            "mean_gap": float(final["mean_gap"]),
            **{key: float(final[key]) for key in localisation_keys() if key in final},
            **({"beta_table": list(result.cfg.pipeline.beta_table)} if result.cfg.pipeline.beta_table else {}),
            "train_s": round(train_s, 3),
        }
        values = values_of(final)
        if values is None or not all(math.isfinite(v) for v in values):
            record(trial, {**metrics, "prune_reason": "nonfinite_metric"})
            raise optuna.TrialPruned(f"final {spec.study.metric_names} is {values}")
        record(trial, metrics)
        trial.set_constraint("eigengap_health", constraint)
        if self.artifacts is not None and ranking.beats_best(trial.study, values, feasible):
            upload_checkpoint(trial, result, self.artifacts)
        return values[0] if len(values) == 1 else values
