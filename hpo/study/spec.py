"""Study specs: studies/NAME.toml, parsed and validated into frozen dataclasses before any storage is opened.

A spec has the sections [scenario.*], [data], [train], [localisation], [fixed], [search.<param>], [sampler],
[pruner] and [study], and may start with `extends = "OTHER"` to inherit OTHER.toml from the same folder. Parameters are
flat names (lr, beta, arch, ...) that PARAMS maps onto ExperimentConfig fields. Every error is a SpecError
whose one-line message names the file, the key and the value.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.experiment import ExperimentConfig
from core.scenario import ScenarioConfig
from core.train import resolve_device
from hpo.study.registry import PRUNER_SETTINGS
from hpo.study.registry import SAMPLER_NAMES as SAMPLERS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

STUDIES_DIR_ENV = "HPO_STUDIES_DIR"

# Flat parameter name -> (ExperimentConfig section, field). One name per parameter; [fixed] and [search] use it.
PARAMS: dict[str, tuple[str, str]] = {
    "lr": ("train", "lr"),
    "weight_decay": ("train", "weight_decay"),
    "batch_size": ("train", "batch_size"),
    "grad_clip": ("train", "grad_clip"),
    "cosine": ("train", "cosine"),
    "amp": ("train", "amp"),
    "tf32": ("train", "tf32"),
    "beta": ("pipeline", "beta"),
    "blend": ("pipeline", "blend"),  # "fixed" β | "adaptive" per-scene β from the model's gate (DESIGN §3)
    "beta_min": ("pipeline", "beta_min"),  # the adaptive β's floor
    "alpha": ("pipeline", "tikhonov_alpha"),
    "rho": ("pipeline", "range_weight"),
    "arch": ("model", "arch"),
    "width": ("model", "width"),
    "depth": ("model", "depth"),
    "dropout": ("model", "dropout"),
    "heads": ("model", "heads"),
    "lam_nmse": ("loss", "lam_nmse"),
    "lam_gap": ("loss", "lam_gap"),
    "lam_sub": ("loss", "lam_sub"),
    "lam_peak": ("loss", "lam_peak"),  # MUSIC's first-order angle error at the truth, log scale (core.losses)
    "gap_margin": ("loss", "gap_margin"),
    "loss_target": ("loss", "target"),
    "projector": ("loss", "projector"),
    "subspace_scale": ("loss", "subspace_scale"),  # "linear" | "log" null spectrum in the subspace loss
}


@dataclass(frozen=True)
class ObjectiveMode:
    """What a `[study] objective` optimises: the study's values, named for the dashboard, and their pruners."""

    metrics: tuple[str, ...]  # names of the values, in order (study.set_metric_names)
    directions: tuple[str, ...]  # "minimize" | "maximize", one per value
    pruners: tuple[str, ...]  # the PRUNER_SETTINGS names that can prune it


SINGLE_PRUNERS = ("median", "hyperband", "successive-halving", "none")  # Optuna's: they read trial.report
OBJECTIVES: dict[str, ObjectiveMode] = {
    # validation NMSE of R_blend against R_true, dB
    "nmse": ObjectiveMode(("val_nmse_db",), ("minimize",), SINGLE_PRUNERS),
    # angle_eff_db of MUSIC on R_blend (core.localisation), plus 1e-3·range_eff_db to break ties by range
    "localisation": ObjectiveMode(("angle_eff_db",), ("minimize",), SINGLE_PRUNERS),
    # both: the dashboard shows their Pareto front; Optuna cannot prune it, hpo.study.pruners can
    "multi": ObjectiveMode(("val_nmse_db", "angle_eff_db"), ("minimize", "minimize"), ("mo-asha", "none")),
}
OBJECTIVE_ALIASES = {"single": "nmse"}  # the name before "localisation" existed; stored specs keep working
SECTIONS = (
    "extends", "scenario", "data", "train", "localisation", "fixed", "search", "sampler", "pruner", "study",
)  # fmt: skip


class SpecError(ConfigError):
    """A study spec is unreadable or invalid; the message is one line naming file, key and value."""


def _int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {name}={value!r}")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class DataSpec:
    n_train: int = 4096  # training scenes (per epoch when fresh_data)
    n_val: int = 1024  # fixed validation scenes
    seed: int = 0  # seed of the training data and of model init; the trial seed
    val_seed: int = 1  # seed of the validation set, apart from training
    fresh_data: bool = False  # draw new training scenes every epoch

    def __post_init__(self) -> None:
        _int("n_train", self.n_train, 1)
        _int("n_val", self.n_val, 1)
        _int("seed", self.seed, 0)
        _int("val_seed", self.val_seed, 0)
        if not isinstance(self.fresh_data, bool):
            raise ConfigError(f"fresh_data must be true or false, got fresh_data={self.fresh_data!r}")


@dataclass(frozen=True)
class TrainSpec:
    epochs: int = 10  # epochs per trial; one report to the pruner per epoch
    final_epochs: int = 50  # epochs when the best trials are retrained later
    threads: int = 2  # torch CPU threads of one worker
    device: str = "auto"  # "auto" (CUDA when present), "cpu" or "cuda"

    def __post_init__(self) -> None:
        _int("epochs", self.epochs, 1)
        _int("final_epochs", self.final_epochs, 1)
        _int("threads", self.threads, 1)
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device must be 'auto', 'cpu' or 'cuda', got device={self.device!r}")


@dataclass(frozen=True)
class SearchParam:
    name: str  # a key of PARAMS
    type: str  # "float", "int" or "categorical"
    low: float | None = None  # lower bound (float/int)
    high: float | None = None  # upper bound, inclusive (float/int)
    log: bool = False  # sample uniformly in log space; needs low > 0
    step: float | None = None  # discretisation step (float/int); not with log
    choices: tuple | None = None  # the values of a categorical

    def __post_init__(self) -> None:
        if self.type not in ("float", "int", "categorical"):
            raise ConfigError(f"type must be 'float', 'int' or 'categorical', got type={self.type!r}")
        if self.type == "categorical":
            if self.low is not None or self.high is not None or self.step is not None or self.log:
                raise ConfigError(f"a categorical takes only choices, got low={self.low!r} high={self.high!r}")
            ok = isinstance(self.choices, tuple) and len(self.choices) > 0
            if not ok or not all(isinstance(c, (str, int, float, bool)) for c in self.choices):
                raise ConfigError(f"choices must be a non-empty list of scalars, got choices={self.choices!r}")
            return
        if self.choices is not None:
            raise ConfigError(f"choices belong to categoricals only, got choices={self.choices!r}")
        check = (lambda v: _number(v) and float(v).is_integer()) if self.type == "int" else _number
        for key in ("low", "high"):
            if not check(getattr(self, key)):
                raise ConfigError(f"{key} must be a finite {self.type}, got {key}={getattr(self, key)!r}")
        if self.low > self.high:
            raise ConfigError(f"low must be <= high, got low={self.low!r} high={self.high!r}")
        if not isinstance(self.log, bool) or (self.log and self.low <= 0):
            raise ConfigError(f"log = true needs low > 0, got low={self.low!r} log={self.log!r}")
        if self.step is not None and (not check(self.step) or self.step <= 0 or self.log):
            raise ConfigError(f"step must be a positive {self.type} and needs log = false, got step={self.step!r}")

    def corners(self) -> tuple:
        """The values whose validity stands for the whole range: the bounds, or every choice."""
        if self.type == "categorical":
            return self.choices
        cast = int if self.type == "int" else float
        return (cast(self.low), cast(self.high))


@dataclass(frozen=True)
class SamplerSpec:
    name: str = "tpe"  # one of SAMPLERS
    seed: int | None = None  # sampler seed; `hpo run --seed` overrides it
    n_startup_trials: int = 10  # random trials before the model-based samplers take over (tpe, gp, cmaes)

    def __post_init__(self) -> None:
        if self.name not in SAMPLERS:
            raise ConfigError(f"name must be one of {SAMPLERS}, got name={self.name!r}")
        if self.seed is not None:
            _int("seed", self.seed, 0)
        _int("n_startup_trials", self.n_startup_trials, 0)


@dataclass(frozen=True)
class PrunerSpec:
    name: str = "median"  # one of PRUNER_SETTINGS
    n_startup_trials: int = 5  # median: trials that are never pruned
    n_warmup_steps: int = 2  # median: epochs before pruning starts within a trial
    min_resource: int = 1  # hyperband / successive-halving: epochs of the smallest rung
    reduction_factor: int = 3  # hyperband / successive-halving / mo-asha: rung promotion ratio
    dominated_fraction: float = 0.5  # mo-asha: prune at a rung when more than this share of peers dominate

    def __post_init__(self) -> None:
        if self.name not in PRUNER_SETTINGS:
            raise ConfigError(f"name must be one of {tuple(PRUNER_SETTINGS)}, got name={self.name!r}")
        _int("n_startup_trials", self.n_startup_trials, 0)
        _int("n_warmup_steps", self.n_warmup_steps, 0)
        _int("min_resource", self.min_resource, 1)
        _int("reduction_factor", self.reduction_factor, 2)
        fraction = self.dominated_fraction
        if not (_number(fraction) and 0 <= fraction < 1):
            raise ConfigError(f"dominated_fraction must be in [0, 1), got dominated_fraction={fraction!r}")


@dataclass(frozen=True)
class StudySettings:
    objective: str = "nmse"  # a key of OBJECTIVES ("single" is read as "nmse"); health is a constraint in all
    n_trials: int = 50  # the study's total budget of trials, across runs and workers
    health_threshold: float = 0.5  # eigengap health a trial must reach to count as feasible, in [0, 1]
    description: str = ""  # one line shown by `hpo studies`

    def __post_init__(self) -> None:
        if isinstance(self.objective, str) and self.objective in OBJECTIVE_ALIASES:
            object.__setattr__(self, "objective", OBJECTIVE_ALIASES[self.objective])
        if self.objective not in OBJECTIVES:
            names = (*OBJECTIVES, *OBJECTIVE_ALIASES)
            raise ConfigError(f"objective must be one of {names}, got objective={self.objective!r}")
        _int("n_trials", self.n_trials, 1)
        if not (_number(self.health_threshold) and 0 <= self.health_threshold <= 1):
            raise ConfigError(f"health_threshold must be in [0, 1], got health_threshold={self.health_threshold!r}")
        if not isinstance(self.description, str):
            raise ConfigError(f"description must be a string, got description={self.description!r}")

    @property
    def directions(self) -> list[str]:
        return list(OBJECTIVES[self.objective].directions)

    @property
    def metric_names(self) -> list[str]:
        """The names of the study's values, for the dashboard (no "Objective 0")."""
        return list(OBJECTIVES[self.objective].metrics)


@dataclass(frozen=True)
class LocalisationSpec:
    n_scenes: int = 256  # validation scenes MUSIC localises (core.localisation); 0 turns the metric off
    every: int = 3  # epochs between two runs of the metric; the last epoch always has it

    def __post_init__(self) -> None:
        _int("n_scenes", self.n_scenes, 0)
        _int("every", self.every, 1)


@dataclass(frozen=True)
class StudySpec:
    name: str  # the file's stem; the default study name in storage
    path: Path  # the TOML file it came from
    scenario: dict  # [scenario.*] as given; ScenarioConfig.from_dict accepts it
    data: DataSpec
    train: TrainSpec
    localisation: LocalisationSpec
    fixed: dict  # parameter name -> value, for parameters not searched
    search: tuple[SearchParam, ...]  # the search space, in file order
    sampler: SamplerSpec
    pruner: PrunerSpec
    study: StudySettings
    digest: str  # sha256 of the resolved spec (after extends), comments and order ignored
    table: dict = field(default_factory=dict, repr=False, compare=False)  # the resolved TOML table, as stored

    def experiment_dict(self, params: dict) -> dict:
        """The ExperimentConfig.from_dict input for one trial: fixed values overlaid by the trial's params."""
        d: dict = {"scenario": self.scenario, "pipeline": {}, "model": {}, "loss": {}}
        d["localisation"] = {"n_scenes": self.localisation.n_scenes, "every": self.localisation.every}
        d["train"] = {
            "epochs": self.train.epochs,
            "n_train": self.data.n_train,
            "n_val": self.data.n_val,
            "fresh_data": self.data.fresh_data,
            "seed": self.data.seed,
            "val_seed": self.data.val_seed,
            "threads": self.train.threads,
            "device": str(resolve_device(self.train.device)),
        }
        for name, value in {**self.fixed, **params}.items():
            section, key = PARAMS[name]
            d[section][key] = value
        return d


def studies_dir() -> Path:
    """HPO_STUDIES_DIR, else ./studies when it exists, else the studies/ folder beside the installed package."""
    if os.environ.get(STUDIES_DIR_ENV):
        return Path(os.environ[STUDIES_DIR_ENV])
    here = Path.cwd() / "studies"
    return here if here.is_dir() else Path(__file__).resolve().parents[2] / "studies"


def spec_path(study: str) -> Path:
    """A study name (quick) in studies_dir(), or a path to a .toml file."""
    if study.endswith(".toml") or os.sep in study:
        return Path(study)
    return studies_dir() / f"{study}.toml"


def _read(path: Path, chain: tuple[Path, ...] = ()) -> dict:
    """The TOML table of `path` with its `extends` chain merged in (child wins; [fixed]/[search] override)."""
    if path in chain:
        raise SpecError(f"{path}: extends = {path.stem!r}: circular extends")
    if not path.is_file():
        available = sorted(p.stem for p in path.parent.glob("*.toml")) if path.parent.is_dir() else []
        raise SpecError(f"{path}: no such study spec (available: {', '.join(available) or 'none'})")
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SpecError(f"{path}: not valid TOML: {e}") from e
    unknown = [k for k in raw if k not in SECTIONS]
    if unknown:
        raise SpecError(f"{path}: {unknown[0]} = {raw[unknown[0]]!r}: unknown section; allowed: {', '.join(SECTIONS)}")
    parent_name = raw.pop("extends", None)
    if parent_name is None:
        return raw
    if not isinstance(parent_name, str):
        raise SpecError(f"{path}: extends = {parent_name!r}: must be a study name")
    base = _read(path.parent / f"{parent_name}.toml", (*chain, path))
    for key, table in raw.items():
        if not isinstance(table, dict):
            base[key] = table
            continue
        inherited = base.get(key, {})
        if "name" in table and table["name"] != inherited.get("name"):
            inherited = {}  # another sampler or pruner: the parent's settings were for its own one
        merged = {**inherited, **table}
        if key == "scenario":  # one level deeper: [scenario.array] etc.
            merged = {s: {**base.get(key, {}).get(s, {}), **table.get(s, {})} for s in merged}
        base[key] = merged
    # A parameter the child fixes is no longer searched, and one it searches is no longer fixed.
    for name in raw.get("fixed", {}):
        base.get("search", {}).pop(name, None)
    for name in raw.get("search", {}):
        base.get("fixed", {}).pop(name, None)
    return base


def _section(path: Path, where: str, cls, table: Any, extra_check=None):
    """Build dataclass `cls` from a TOML table, turning every problem into a one-line SpecError."""
    if not isinstance(table, dict):
        raise SpecError(f"{path}: [{where}] = {table!r}: must be a table")
    allowed = {f.name for f in fields(cls)} - {"name"} if cls is SearchParam else {f.name for f in fields(cls)}
    for key, value in table.items():
        if key not in allowed:
            raise SpecError(f"{path}: {where}.{key} = {value!r}: unknown key; allowed: {', '.join(sorted(allowed))}")
    if extra_check:
        extra_check(table)
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    try:
        return cls(**kwargs) if cls is not SearchParam else cls(name=where.split(".", 1)[1], **kwargs)
    except ConfigError as e:
        raise SpecError(f"{path}: [{where}] {e}") from e


def load_spec(study: str | Path, table: dict | None = None) -> StudySpec:
    """Read and validate studies/NAME.toml (or a path); raises SpecError. Touches no storage.

    table: the resolved TOML table of that spec (StudySpec.table, e.g. as a study stored it) instead of the
    file, which then need not exist.
    """
    path = spec_path(str(study))
    raw = _read(path) if table is None else copy.deepcopy(table)
    scenario = raw.get("scenario", {})
    try:
        ScenarioConfig.from_dict(scenario)
    except (ConfigError, TypeError) as e:
        raise SpecError(f"{path}: [scenario] {e}") from e
    for name, value in raw.get("fixed", {}).items():
        if name not in PARAMS:
            raise SpecError(f"{path}: fixed.{name} = {value!r}: unknown parameter; known: {', '.join(PARAMS)}")
    search_tables = raw.get("search", {})
    for name, table in search_tables.items():
        if name not in PARAMS:
            raise SpecError(f"{path}: search.{name} = {table!r}: unknown parameter; known: {', '.join(PARAMS)}")
        if name in raw.get("fixed", {}):
            raise SpecError(f"{path}: search.{name}: also in [fixed] = {raw['fixed'][name]!r}; keep one")
    search = tuple(_section(path, f"search.{n}", SearchParam, t) for n, t in search_tables.items())

    def pruner_keys(table: dict) -> None:
        name = table.get("name", PrunerSpec.name)
        for key in table:
            if key != "name" and name in PRUNER_SETTINGS and key not in PRUNER_SETTINGS[name]:
                raise SpecError(f"{path}: pruner.{key} = {table[key]!r}: not a setting of the {name!r} pruner")

    spec = StudySpec(
        name=path.stem,
        path=path,
        scenario=scenario,
        data=_section(path, "data", DataSpec, raw.get("data", {})),
        train=_section(path, "train", TrainSpec, raw.get("train", {})),
        localisation=_section(path, "localisation", LocalisationSpec, raw.get("localisation", {})),
        fixed=dict(raw.get("fixed", {})),
        search=search,
        sampler=_section(path, "sampler", SamplerSpec, raw.get("sampler", {})),
        pruner=_section(path, "pruner", PrunerSpec, raw.get("pruner", {}), pruner_keys),
        study=_section(path, "study", StudySettings, raw.get("study", {})),
        digest=hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest(),
        table=raw,
    )
    objective = OBJECTIVES[spec.study.objective]
    if spec.pruner.name not in objective.pruners:
        raise SpecError(
            f"{path}: pruner.name = {spec.pruner.name!r}: cannot prune objective {spec.study.objective!r}; "
            f"use one of {objective.pruners}"
        )
    if len(objective.directions) > 1 and spec.sampler.name == "cmaes":
        raise SpecError(f"{path}: sampler.name = 'cmaes': CMA-ES is single-objective only")
    if "angle_eff_db" in objective.metrics and spec.localisation.n_scenes == 0:
        raise SpecError(
            f"{path}: localisation.n_scenes = 0: objective {spec.study.objective!r} needs the localisation metric"
        )
    _check_corners(spec)
    return spec


def _check_corners(spec: StudySpec) -> None:
    """Build the ExperimentConfig at every bound and choice of the search, so impossible ranges fail now."""
    base = {p.name: p.corners()[0] for p in spec.search}
    probes = [(None, None)] + [(p.name, v) for p in spec.search for v in p.corners()]
    for name, value in probes:
        params = base if name is None else {**base, name: value}
        try:
            ExperimentConfig.from_dict(spec.experiment_dict(params))
        except (ConfigError, TypeError) as e:
            where = "fixed" if name is None else f"search.{name}"
            shown = "" if name is None else f" = {value!r}"
            raise SpecError(f"{spec.path}: {where}{shown}: {e}") from e
