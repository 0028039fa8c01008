"""Study specs: studies/NAME.toml, parsed and validated into frozen configs before any storage is opened.

The sections (SpecFile) are the core configs with their defaults and bounds, and [fixed] / [search.<param>] set
flat parameter names that PARAMS maps onto ExperimentConfig fields (docs/design.md §7, "One config schema").
`extends = "OTHER"` inherits OTHER.toml from the same folder. Every error is a one-line SpecError.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, model_validator

from core.calibration import CalibrationConfig
from core.configs import Config, one_of
from core.errors import ConfigError
from core.experiment import MAX_EPOCHS, ExperimentConfig, TrainConfig
from core.localisation import MAX_SCENES_PER_POINT, LocalisationConfig
from core.scenario import ScenarioConfig
from core.train import resolve_device
from hpo.study.pruners import Rungs
from hpo.study.registry import MAX_SEED, PRUNER_SETTINGS, SAMPLERS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

STUDIES_DIR_ENV = "HPO_STUDIES_DIR"
MAX_TRIALS = 100_000  # a study's budget; more rows than the dashboard and the samplers handle well

# The ExperimentConfig fields a trial may set, by section, in the order errors list them. [fixed] and [search]
# name them flat: by the field's name, or by its alias. The flat names are stored in trials and specs: keep them.
PARAM_FIELDS: dict[str, tuple[str, ...]] = {
    "train": ("lr", "weight_decay", "batch_size", "grad_clip", "cosine", "amp", "tf32"),
    "pipeline": (
        *("beta", "blend", "beta_min", "tikhonov_alpha", "range_weight", "noise_floor", "estimator", "order"),
        *("snr_estimate", "beta_bins_db"),
    ),
    "model": ("arch", "width", "depth", "dropout", "heads"),
    "loss": (
        *("lam_nmse", "lam_gap", "lam_sub", "lam_peak", "lam_pred"),
        *("gap_margin", "target", "projector", "subspace_scale"),
    ),
}
ALIASES = {"tikhonov_alpha": "alpha", "range_weight": "rho", "target": "loss_target"}  # field -> flat name
# Flat parameter name -> (ExperimentConfig section, field).
PARAMS: dict[str, tuple[str, str]] = {
    ALIASES.get(field, field): (section, field) for section, fields in PARAM_FIELDS.items() for field in fields
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
    # loc_gain_db (core.localisation): learned MUSIC's MSE gain over classic MUSIC, dB, 0 = classic
    "localisation": ObjectiveMode(("loc_gain_db",), ("maximize",), SINGLE_PRUNERS),
    # both: the dashboard shows their Pareto front; Optuna cannot prune it, hpo.study.pruners can
    "multi": ObjectiveMode(("val_nmse_db", "loc_gain_db"), ("minimize", "maximize"), ("mo-asha", "none")),
}
# What each value means, for every table, plot and report that shows one (an older study's names show as they are).
METRIC_LABELS = {
    "val_nmse_db": "val_nmse_db (dB; lower is better)",
    "loc_gain_db": "loc_gain_db (dB; classic = 0)",
}


def metric_label(name: str) -> str:
    """A metric's name with its unit and reference, e.g. for loc_gain_db that the classic method (the pipeline's
    estimator, MUSIC or DML, on the snapshots) scores 0 dB."""
    return METRIC_LABELS.get(name, name)


OBJECTIVE_ALIASES = {"single": "nmse"}  # the name before "localisation" existed; stored specs keep working


class SpecError(ConfigError):
    """A study spec is unreadable or invalid; the message is one line naming file, key and value."""


# [data] and [train] hold the TrainConfig settings a study fixes for every trial; the others are parameters.
DataSection = TrainConfig.section("data", ("n_train", "n_val", "seed", "val_seed", "fresh_data"))


class TrainSection(TrainConfig.section("train", ("epochs", "threads", "device"))):
    final_epochs: int = Field(
        50, ge=1, le=MAX_EPOCHS
    )  # epochs when the study's best trials are retrained (hpo retrain)


class LocalisationSection(LocalisationConfig):
    # validation scenes per SNR point `hpo retrain` ranks trials and seeds on: a search's 64 could not tell one
    # `quick` trial's two seeds apart (+0.352 / +0.362 dB) where 500 could (+0.752 / +0.449; fresh +0.67 to +0.79
    # against +0.41 to +0.57, docs/results.md), for a few % of a retrain
    final_scenes: int = Field(500, ge=1, le=MAX_SCENES_PER_POINT)


class SearchParam(Config):
    type: Literal["float", "int", "categorical"]  # how the trial suggests a value
    low: float | None = None  # lower bound (float/int)
    high: float | None = None  # upper bound, inclusive (float/int)
    log: bool = False  # sample uniformly in log space; needs low > 0
    step: float | None = Field(None, gt=0)  # discretisation step (float/int); not with log
    choices: tuple[str | int | float | bool, ...] | None = Field(None, min_length=1)  # the values of a categorical

    @model_validator(mode="after")
    def _a_range_or_choices(self) -> SearchParam:
        if self.type == "categorical":
            if self.low is not None or self.high is not None or self.step is not None or self.log:
                raise ConfigError(f"a categorical takes only choices, got low={self.low!r} high={self.high!r}")
            if self.choices is None:
                raise ConfigError.at("choices", None, "must be a non-empty list of scalars")
            return self
        if self.choices is not None:
            raise ConfigError.at("choices", self.choices, "belong to categoricals only")
        for key in ("low", "high", "step"):
            value = getattr(self, key)
            if value is None and key != "step":
                raise ConfigError.at(key, value, f"is required for a {self.type} range")
            if self.type == "int" and value is not None and value % 1:
                raise ConfigError.at(key, value, "must be an integer")
        if self.low > self.high:
            raise ConfigError(f"low must be <= high, got low={self.low!r} high={self.high!r}")
        if self.log and (self.low <= 0 or self.step is not None):
            raise ConfigError(f"log = true needs low > 0 and no step, got low={self.low!r} step={self.step!r}")
        return self

    def corners(self) -> tuple:
        """The values whose validity stands for the whole range: the bounds, or every choice."""
        if self.type == "categorical":
            return self.choices
        cast = int if self.type == "int" else float
        return (cast(self.low), cast(self.high))


class SamplerSpec(Config):
    name: Annotated[str, one_of(lambda: SAMPLERS)] = "tpe"  # a key of hpo.study.registry.SAMPLERS
    seed: int | None = Field(None, ge=0, le=MAX_SEED)  # sampler seed; `hpo run --seed` overrides it
    n_startup_trials: int = Field(10, ge=0)  # random trials before the model-based samplers take over (tpe, gp, cmaes)


class PrunerSpec(Config):
    name: Annotated[str, one_of(lambda: PRUNER_SETTINGS)] = "median"  # a key of hpo.study.registry.PRUNERS
    n_startup_trials: int = Field(5, ge=0)  # median: trials that are never pruned
    n_warmup_steps: int = Field(2, ge=0)  # median: epochs before pruning starts within a trial
    min_resource: int = Field(1, ge=1)  # hyperband / successive-halving: epochs of the smallest rung
    reduction_factor: int = Field(3, ge=2)  # hyperband / successive-halving / mo-asha: rung promotion ratio
    dominated_fraction: float = Field(0.5, ge=0, lt=1)  # mo-asha: prune when more than this share of peers dominate

    @model_validator(mode="before")
    @classmethod
    def _only_its_pruners_settings(cls, table: Any) -> Any:
        name = table.get("name", cls.model_fields["name"].default) if isinstance(table, dict) else None
        if name not in tuple(PRUNER_SETTINGS):
            return table  # not a table, or not a pruner: the field checks say which
        for key, value in table.items():
            if key != "name" and key in cls.model_fields and key not in PRUNER_SETTINGS[name]:
                raise ConfigError.at(key, value, f"is not a setting of the {name!r} pruner")
        return table

    @model_validator(mode="after")
    def _mo_asha_bounds(self) -> PrunerSpec:
        if self.name == "mo-asha":  # its own bounds (n_startup_trials >= 1) live on Rungs; check them with the file
            Rungs(**{key: getattr(self, key) for key in PRUNER_SETTINGS["mo-asha"]})
        return self


def _objective_alias(name: Any) -> Any:
    return OBJECTIVE_ALIASES.get(name, name) if isinstance(name, str) else name


class StudySettings(Config):
    # a key of OBJECTIVES ("single" is read as "nmse"); health is a constraint in all
    objective: Annotated[str, BeforeValidator(_objective_alias), one_of(lambda: OBJECTIVES)] = "nmse"
    n_trials: int = Field(50, ge=1, le=MAX_TRIALS)  # the study's total budget of trials, across runs and workers
    health_threshold: float = Field(0.5, ge=0, le=1)  # eigengap health a trial must reach to count as feasible
    description: str = ""  # one line shown by `hpo studies`
    # scenes per SNR point of the study figure (the best trial's RMSE vs SNR, made as a run ends): 200 keep
    # classic MUSIC's range curve from crossing the CRB by chance (`python benchmarks/music.py --spread`)
    figure_scenes: int = Field(200, ge=1, le=100_000)

    @property
    def directions(self) -> list[str]:
        return list(OBJECTIVES[self.objective].directions)

    @property
    def metric_names(self) -> list[str]:
        """The names of the study's values, for the dashboard (no "Objective 0")."""
        return list(OBJECTIVES[self.objective].metrics)


class StudySpec(Config):
    name: str  # the file's stem; the default study name in storage
    path: Path  # the TOML file it came from
    scenario: ScenarioConfig  # [scenario.*]
    train: TrainConfig  # [data] and [train]: the training settings every trial shares
    final_epochs: int  # [train] final_epochs: epochs when the best trials are retrained
    localisation: LocalisationConfig  # [localisation]
    final_scenes: int  # [localisation] final_scenes: scenes per SNR point the retrain ranks on (none if n_scenes = 0)
    calibration: CalibrationConfig  # [calibration]: the calibrated blend's table
    fixed: dict  # parameter name -> value, for parameters not searched
    search: dict[str, SearchParam]  # parameter name -> its range, in file order: the search space
    sampler: SamplerSpec
    pruner: PrunerSpec
    study: StudySettings
    digest: str  # sha256 of the resolved spec (after extends), comments and order ignored
    table: dict = Field(default_factory=dict, repr=False)  # the resolved TOML table, as stored

    @model_validator(mode="after")
    def _sections_agree(self) -> StudySpec:
        """The rules between sections: parameters are known and either fixed or searched, the pruner can prune
        the objective, CMA-ES only runs single-objective, and a localisation objective has scenes to score."""
        known = f"unknown parameter; known: {', '.join(PARAMS)}"
        for name, value in self.fixed.items():
            if name not in PARAMS:
                raise ConfigError.at(f"fixed.{name}", value, known)
        for name in self.search:
            if name not in PARAMS:
                raise ConfigError.at(f"search.{name}", self.table.get("search", {}).get(name), known)
            if name in self.fixed:
                raise ConfigError.at(f"search.{name}", self.fixed[name], "also in [fixed]; keep one")
        mode = OBJECTIVES[self.study.objective]
        if self.pruner.name not in mode.pruners:
            reason = f"cannot prune objective {self.study.objective!r}; use one of {mode.pruners}"
            raise ConfigError.at("pruner.name", self.pruner.name, reason)
        if len(mode.directions) > 1 and self.sampler.name == "cmaes":
            raise ConfigError.at("sampler.name", self.sampler.name, "CMA-ES is single-objective only")
        if "loc_gain_db" in mode.metrics and self.localisation.n_scenes == 0:
            reason = f"objective {self.study.objective!r} needs the localisation metric"
            raise ConfigError.at("localisation.n_scenes", 0, reason)
        return self

    def experiment_dict(self, params: dict) -> dict:
        """The ExperimentConfig.from_dict input for one trial: fixed values overlaid by the trial's params."""
        train = {**self.train.to_dict(), "device": str(resolve_device(self.train.device))}
        d: dict = {"scenario": self.scenario.to_dict(), "pipeline": {}, "model": {}, "loss": {}, "train": train}
        d["localisation"] = self.localisation.to_dict()
        d["calibration"] = self.calibration.to_dict()
        for name, value in {**self.fixed, **params}.items():
            section, key = PARAMS[name]
            d[section][key] = value
        return d


class SpecFile(Config):
    """The top level of one spec file: `extends` and its sections, each checked by its own config later."""

    extends: str | None = None  # the study whose spec this one overrides
    scenario: dict = {}
    data: dict = {}
    train: dict = {}
    localisation: dict = {}
    calibration: dict = {}
    fixed: dict = {}
    search: dict = {}
    sampler: dict = {}
    pruner: dict = {}
    study: dict = {}


class _Open(Config):
    """A section as far as SpecNeeds looks: its other keys are checked by the section's own config."""

    model_config = ConfigDict(extra="allow")


class _StudyNeeds(_Open):
    n_trials: Any


class _DataNeeds(_Open):
    n_train: Any
    n_val: Any


class _TrainNeeds(_Open):
    epochs: Any


class SpecNeeds(_Open):
    """What a spec file must state, itself or through `extends`: what the study costs (its trials, scenes and
    epochs) and what it searches. Defaults stand in for everything else, but a study of 50 default-sized trials
    that search nothing is never what was meant: an empty or truncated file is refused, not run."""

    study: _StudyNeeds
    data: _DataNeeds
    train: _TrainNeeds
    search: dict = Field(min_length=1)


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
        available = sorted(p.stem for p in path.parent.glob("*.toml") if p.is_file()) if path.parent.is_dir() else []
        raise SpecError(f"{path}: no such study spec (available: {', '.join(available) or 'none'})")
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SpecError(f"{path}: not valid TOML: {e}") from e
    try:
        SpecFile.from_dict(raw)
    except ConfigError as e:
        raise SpecError(f"{path}: {e.key} = {e.value!r}: {e.reason}") from e
    parent_name = raw.pop("extends", None)
    if parent_name is None:
        return raw
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


def _section(path: Path, where: str, cls: type[Config], table: Any) -> Config:
    """Build `cls` from the TOML table at `where`, turning any problem into a one-line SpecError."""
    if not isinstance(table, dict):
        raise SpecError(f"{path}: [{where}] = {table!r}: must be a table")
    try:
        return cls.from_dict(table)
    except ConfigError as e:
        if e.key is None:  # a rule between settings: its message names them
            raise SpecError(f"{path}: [{where}] {e}") from e
        raise SpecError(f"{path}: {where}.{e.key} = {e.value!r}: {e.reason}") from e


def load_spec(study: str | Path, table: dict | None = None) -> StudySpec:
    """Read and validate studies/NAME.toml (or a path); raises SpecError. Touches no storage.

    table: the resolved TOML table of that spec (StudySpec.table, e.g. as a study stored it) instead of the
    file, which then need not exist.
    """
    path = spec_path(str(study))
    from_file = table is None  # tables stored by studies were read under the rules of their day
    raw = _read(path) if from_file else copy.deepcopy(table)
    data = _section(path, "data", DataSection, raw.get("data", {}))
    train = _section(path, "train", TrainSection, raw.get("train", {}))
    localisation = _section(path, "localisation", LocalisationSection, raw.get("localisation", {}))
    sections = {
        "scenario": _section(path, "scenario", ScenarioConfig, raw.get("scenario", {})),
        "calibration": _section(path, "calibration", CalibrationConfig, raw.get("calibration", {})),
        "search": {n: _section(path, f"search.{n}", SearchParam, t) for n, t in raw.get("search", {}).items()},
        "sampler": _section(path, "sampler", SamplerSpec, raw.get("sampler", {})),
        "pruner": _section(path, "pruner", PrunerSpec, raw.get("pruner", {})),
        "study": _section(path, "study", StudySettings, raw.get("study", {})),
    }
    try:
        spec = StudySpec(
            name=path.stem,
            path=path,
            train=TrainConfig(**dict(data), **train.model_dump(exclude={"final_epochs"})),
            final_epochs=train.final_epochs,
            localisation=LocalisationConfig(**localisation.model_dump(exclude={"final_scenes"})),
            final_scenes=localisation.final_scenes,
            fixed=dict(raw.get("fixed", {})),
            digest=hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest(),
            table=raw,
            **sections,
        )
    except ConfigError as e:  # a rule between sections (StudySpec._sections_agree)
        raise SpecError(f"{path}: {e}" if e.key is None else f"{path}: {e.key} = {e.value!r}: {e.reason}") from e
    if from_file:
        _require_needs(path, raw)
    _check_corners(spec)
    return spec


def _require_needs(path: Path, raw: dict) -> None:
    """SpecNeeds of the resolved table, as one SpecError naming the first thing missing."""
    try:
        SpecNeeds.from_dict(raw)
    except ConfigError as e:
        raise SpecError(
            f"{path}: {e.key} is missing: a study spec needs [study] n_trials, [data] n_train and n_val, [train] "
            "epochs and at least one [search.<param>], stated in it or inherited through extends"
        ) from e


def _check_corners(spec: StudySpec) -> None:
    """Build the ExperimentConfig at every bound and choice of the search, so impossible ranges fail now."""
    base = {name: p.corners()[0] for name, p in spec.search.items()}
    probes = [(None, None)] + [(name, v) for name, p in spec.search.items() for v in p.corners()]
    for name, value in probes:
        params = base if name is None else {**base, name: value}
        try:
            ExperimentConfig.from_dict(spec.experiment_dict(params))
        except ConfigError as e:
            where = "fixed" if name is None else f"search.{name}"
            shown = "" if name is None else f" = {value!r}"
            raise SpecError(f"{spec.path}: {where}{shown}: {e}") from e
