"""Evaluation of localisation (DESIGN §5, §6): scoring by optimal assignment, and the SNR sweep of a
trained model against classic MUSIC, the oracle and the CRB.

Every method runs MUSIC (core.music) in the whitened measurement domain (core.measurement): C (B, M, M) with
steering vectors b = T a, T = W H; for H = I that is MUSIC on the covariance itself. Two run DML instead: the
classic `dml`, and the learned pipeline where its PipelineConfig.estimator says so (core.estimators).

    learned      C = T R_blend Tᴴ         the trained pipeline, with its own estimator
    classic      C = W (Y Yᴴ/L) W         THE baseline: what a practitioner runs on the snapshots
    dml          the classic C, estimated by deterministic ML (core.dml) instead of MUSIC: the classic baseline
                 that survives coherent sources and L < K; "beats classic" means beating the better of the two
    music_samp   C = T R_samp Tᴴ          a diagnostic (R_samp is the network's input, not a method)
    oracle       C = T R_true Tᴴ          the same path on the true covariance: refinement precision

Every SNR point draws the same scenes (K, angles, ranges, H, source and noise draws) at its own σ², so the
curves compare like with like across SNR and the CRB falls monotonically with SNR.

The report's schema (version 2), and which C each order rule reads, are in docs/design.md §5.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import torch
from pydantic import AfterValidator, Field

from core.configs import Config
from core.covariance import PipelineConfig, pipeline
from core.crb import scene_crb
from core.errors import ConfigError, CovblendError
from core.estimators import ESTIMATORS
from core.grid import Grid, GridConfig, build_grid
from core.localisation import SNR_GRID_DB
from core.measurement import classic_covariance, falls_back, localised, operator, to_measurement
from core.metrics import clipped_angle_errors, matched_errors, nmse_db
from core.music import ORDER_RULES, MusicResult, mdl_order, model_order
from core.scenario import MAX_SEED, Db, ScenarioConfig, SceneBatch, check_drawable, generate
from core.snr import manifold

SCHEMA_NAME = "covblend-hpo/evaluation"


@dataclass(frozen=True)
class Scores:
    angle_rmse_deg: float  # over matched pairs, degrees; nan when nothing matched
    range_rmse_m: float  # over matched pairs, metres; nan when nothing matched
    angle_err_deg: np.ndarray  # (P,) estimate − truth of every matched pair, degrees
    range_err_m: np.ndarray  # (P,) estimate − truth of every matched pair, metres


def _rmse(d: np.ndarray) -> float:
    return float(np.sqrt(np.mean(d**2))) if d.size else math.nan


UNMATCHED = (math.inf, math.inf)  # matched_errors' miss: marks a truth left without an estimate, a gross error


def score(
    est_theta: torch.Tensor,
    est_r: torch.Tensor,
    est_mask: torch.Tensor,
    true_theta: torch.Tensor,
    true_r: torch.Tensor,
    true_mask: torch.Tensor,
) -> Scores:
    """Match estimates to truths per scene by optimal assignment on angle (core.metrics.matched_errors, the
    objective's own matching), then take RMSEs over the matched pairs.

    All inputs (B, K) tensors: radians, metres, bool, with no more estimate slots than truth slots. Angles identify
    sources: they are at least the minimum separation apart, whereas range resolution is coarse. When K̂ ≠ K only
    min(K̂, K) pairs count; the order error is reported as K accuracy.
    """
    return _paired(*matched_errors(est_theta, est_r, est_mask, true_theta, true_r, true_mask, UNMATCHED), true_mask)


def _paired(err_t: torch.Tensor, err_r: torch.Tensor, true_mask: torch.Tensor) -> Scores:
    """Scores over the matched pairs of matched_errors' per-truth errors (B, K_max), taken with the UNMATCHED miss."""
    paired = true_mask.to(err_t.device) & ~err_t.isinf()
    d_t, d_r = (e[paired].cpu().numpy() for e in (err_t, err_r))
    return Scores(_rmse(d_t), _rmse(d_r), d_t, d_r)


# ---------------------------------------------------------------- SNR sweep of a trained model

SCHEMA_VERSION = 3
SNR_DEFINITION = "SNR = p_k/σ² per element and per source, in dB (10 dB means σ² = 0.1 for p_k = 1)"
METHODS: tuple[str, ...] = ("learned", "classic", "dml", "music_samp", "oracle")  # see the module docstring
# methods scored with estimated K as well; DML's K̂ would be classic MUSIC's (the same rules on the same C), and a
# DML run costs several MUSIC runs
ORDER_METHODS: tuple[str, ...] = ("learned", "classic", "music_samp", "oracle")
NMSE_METHODS: tuple[str, ...] = ("learned", "music_samp")  # N×N covariances with an NMSE against R_true
ORDER_RULE_NAMES: tuple[str, ...] = tuple(ORDER_RULES)  # the K̂ rules of core.music, in its order
# The localiser (core.estimators) each method runs; "learned" runs its PipelineConfig.estimator
ESTIMATOR_OF = {"classic": "music", "dml": "dml", "music_samp": "music", "oracle": "music"}
# The classic method of each PipelineConfig.estimator: what the objective, and the report's loc_gain_db, compare with
CLASSIC_OF = {ESTIMATOR_OF[name]: name for name in ("classic", "dml")}


def _subset_of(names: tuple[str, ...], empty_ok: bool) -> AfterValidator:
    """A field check: a subset of names, put in names' order (the report's order, whatever order was asked)."""

    def check(chosen: tuple[str, ...]) -> tuple[str, ...]:
        if not set(chosen) <= set(names) or not (chosen or empty_ok):
            raise ValueError(f"must be a {'' if empty_ok else 'non-empty '}subset of {names}")
        return tuple(name for name in names if name in chosen)

    return AfterValidator(check)


def _distinct(points: tuple[float, ...]) -> tuple[float, ...]:
    """A field check: each SNR point once (a repeated one is a second row of the same scenes in every table)."""
    repeated = sorted({p for p in points if points.count(p) > 1})
    if repeated:
        raise ValueError(f"must list each SNR point once ({', '.join(f'{p:g}' for p in repeated)} repeated)")
    return points


class EvalConfig(Config):
    # SNR points, dB, p_k/σ², each within a scenario's SNR bounds (beyond them σ² leaves float32's range)
    snr_grid_db: Annotated[tuple[Db, ...], AfterValidator(_distinct)] = Field(SNR_GRID_DB, min_length=1)
    n_scenes: int = Field(500, ge=1, le=100_000)  # scenes per SNR point, drawn at once (100,000 at N = 16: ~1 GB)
    snapshots: int | None = Field(None, ge=1)  # L; None keeps the checkpoint scenario's L
    num_sources: int | None = Field(None, ge=1)  # K of every scene (<= K_max); None draws K ~ U{1..K_max}
    # fresh scenes: a stream that training, validation, calibration and retraining do not use (their seeds are
    # the spec's seed and val_seed, and core.localisation.derived_seed of val_seed)
    seed: int = Field(7_000_001, ge=0, le=MAX_SEED)
    chunk: int = Field(256, ge=1)  # scenes per model forward, bounds memory
    grid: GridConfig = GridConfig()  # MUSIC search grid
    # which methods to run (a study's figure needs learned and classic only)
    methods: Annotated[tuple[str, ...], _subset_of(METHODS, empty_ok=False)] = METHODS
    # K̂ rules to score; () for true-K results only
    order_rules: Annotated[tuple[str, ...], _subset_of(ORDER_RULE_NAMES, empty_ok=True)] = ORDER_RULE_NAMES


def _nan_to_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


BOOTSTRAP = 400  # resamples for the 95% intervals of the true-K RMSEs


def _rmse_ci95(err: np.ndarray, seed: int) -> list[float] | None:
    """Percentile-bootstrap 95% interval of the RMSE of the matched errors err (P,), resampled over sources."""
    if err.size < 2:
        return None
    idx = np.random.default_rng(seed).integers(0, err.size, (BOOTSTRAP, err.size))
    lo, hi = np.percentile(np.sqrt(np.mean(err[idx] ** 2, axis=1)), [2.5, 97.5])
    return [float(lo), float(hi)]


def localisation_scores(est: MusicResult, batch: SceneBatch, grid: Grid, ci: bool = False) -> dict:
    """Plain RMSEs over the matched pairs, and (DESIGN §6) the gross-error rate and the angle RMSE with each
    error capped at the resolution half-width, over every true source (a missed one is a gross error)."""
    err_t, err_r = matched_errors(est.theta, est.r, est.mask, batch.theta, batch.r, batch.mask, UNMATCHED)
    s = _paired(err_t, err_r, batch.mask)  # the plain errors and the clipped ones share this one pairing
    out = {"angle_rmse_deg": _nan_to_none(s.angle_rmse_deg), "range_rmse_m": _nan_to_none(s.range_rmse_m)}
    clipped, gross = clipped_angle_errors(err_t, batch.theta, grid.array)  # a missed truth's inf caps as gross
    real = batch.mask
    out["angle_rmse_clipped_deg"] = _nan_to_none(clipped[real].square().mean().sqrt().item())
    out["gross_rate"] = _nan_to_none(gross[real].double().mean().item())
    if ci:  # a fixed resampling seed: the same report from the same scenes
        out |= {"angle_rmse_ci95": _rmse_ci95(s.angle_err_deg, 0), "range_rmse_ci95": _rmse_ci95(s.range_err_m, 1)}
    return out


def _ratio(x: float | None, bound: float | None) -> float | None:
    return None if x is None or not bound else x / bound


def _mdl_order(C: torch.Tensor, k_max: int, snapshots: int) -> torch.Tensor:
    """Wax–Kailath K̂ (B,) from a whitened measurement covariance C (B, M, M)."""
    return mdl_order(torch.linalg.eigvalsh(C.to(torch.complex128)).flip(-1), k_max, snapshots)


def _rerun(
    estimate: Callable, cov: torch.Tensor, grid: Grid, T, base: MusicResult, k: torch.Tensor, redo: torch.Tensor
) -> MusicResult:
    """base (B scenes), with the scenes `redo` (B,) bool estimated again on cov with the model order k (B,); the
    others keep base's estimate, which is theirs: a scene's estimate depends on its own C and order alone. A DML
    run costs several MUSIC runs, so the K̂ rules run again only where K̂ ≠ K, and the learned pipeline only where
    β < 1 (elsewhere its C is the classic one, core.measurement.localised, whose estimate its fallback holds)."""
    fields = {f: getattr(base, f).clone() for f in ("theta", "r", "mask", "eigvals")}
    if bool(redo.any()):
        again = estimate(cov[redo], grid, base.theta.shape[1], k=k[redo], T=None if T is None else T[redo])
        for f, whole in fields.items():
            whole[redo] = getattr(again, f)
    return MusicResult(k_hat=k, **fields)


def evaluate_point(
    model, batch: SceneBatch, scenario: ScenarioConfig, pipe: PipelineConfig, grid: Grid, cfg: EvalConfig
) -> dict:
    """All metrics of one SNR point (one row of the report) on a generated batch: cfg.methods, cfg.order_rules."""
    k_max, snaps, chunk = scenario.scene.k_max, batch.Y.shape[-1], cfg.chunk
    mf = manifold(scenario, pipe.snr_estimate)
    covs = [
        pipeline(model, batch.Y[i : i + chunk], batch.H[i : i + chunk], pipe, mf) for i in range(0, len(batch), chunk)
    ]
    R_blend, R_samp = torch.cat([c.R_blend for c in covs]), torch.cat([c.R_samp for c in covs])
    beta = torch.cat([c.beta for c in covs])  # (B,) per scene
    T = operator(batch.H)
    measured = {
        "learned": lambda: localised(R_blend, beta, batch.Y, batch.H, T),
        "classic": lambda: classic_covariance(batch.Y, batch.H),
        "music_samp": lambda: to_measurement(R_samp, T),
        "oracle": lambda: to_measurement(batch.R_true, T),
    }
    measured["dml"] = measured["classic"]  # DML estimates from the classic C
    square = {"learned": R_blend, "music_samp": R_samp}  # the N×N covariances an NMSE is defined for
    bound = scene_crb(batch, scenario.array)
    crb = {"angle_rmse_deg": _nan_to_none(bound.angle_rmse_deg), "range_rmse_m": _nan_to_none(bound.range_rmse_m)}
    k_data = None  # MDL is valid only where the noise is white: the data methods share the classic C's K̂
    methods, at_true = {}, {}
    fallback = CLASSIC_OF[pipe.estimator]  # the learned pipeline at β = 1
    for name in sorted(cfg.methods, key=lambda name: name == "learned"):  # learned last, to reuse its fallback's
        cov, estimate = measured[name](), ESTIMATORS[pipe.estimator if name == "learned" else ESTIMATOR_OF[name]]
        if name == "learned" and fallback in at_true:
            redo = ~falls_back(beta, len(batch)).to(cov.device)
            at_true_k = _rerun(estimate, cov, grid, T, at_true[fallback], batch.K, redo)
        else:
            at_true_k = estimate(cov, grid, k_max, k=batch.K, T=T)
        at_true[name] = at_true_k
        loc = localisation_scores(at_true_k, batch, grid, ci=True)
        methods[name] = {
            **loc,
            "angle_crb_ratio": _ratio(loc["angle_rmse_deg"], crb["angle_rmse_deg"]),
            "range_crb_ratio": _ratio(loc["range_rmse_m"], crb["range_rmse_m"]),
        }
        if name in square:
            methods[name]["nmse_db"] = _nan_to_none(nmse_db(square[name], batch.R_true))
        if not cfg.order_rules or name not in ORDER_METHODS:
            continue
        if name != "oracle" and k_data is None:
            k_data = _mdl_order(measured["classic"](), k_max, snaps)
        k_mdl = _mdl_order(cov, k_max, snaps) if name == "oracle" else k_data
        # the estimator's own eigengap rule on C (the eigenvalues it returned); MDL's K̂ from above
        k_hat = {"eigengap": model_order(at_true_k.eigvals, k_max, None, "eigengap", snaps), "mdl": k_mdl}
        by_rule = {
            rule: _rerun(estimate, cov, grid, T, at_true_k, k_hat[rule], k_hat[rule] != batch.K)
            for rule in cfg.order_rules
        }
        methods[name]["k_accuracy"] = {rule: (e.k_hat == batch.K).double().mean().item() for rule, e in by_rule.items()}
        methods[name]["estimated_k"] = {rule: localisation_scores(e, batch, grid) for rule, e in by_rule.items()}
    mean_beta = beta.double().mean().item()
    return {"methods": {name: methods[name] for name in cfg.methods}, "crb": crb, "mean_beta": mean_beta}


def evaluation_scenario(scenario: ScenarioConfig, cfg: EvalConfig) -> ScenarioConfig:
    """The model's scenario with the evaluation's L; a ConfigError if cfg.num_sources does not fit its K_max or a
    point's scenes and snapshots exceed what one draw holds (core.scenario.MAX_DRAWN)."""
    k_max, num_sources = scenario.scene.k_max, cfg.num_sources
    if num_sources is not None and num_sources > k_max:
        raise ConfigError(f"num_sources must be an integer in [1, {k_max}] for this scenario, got {num_sources=}")
    check_drawable(cfg.n_scenes, cfg.snapshots or scenario.measurement.snapshots)
    if cfg.snapshots is None:
        return scenario
    return scenario.replace(measurement=scenario.measurement.replace(snapshots=cfg.snapshots))


def evaluate(
    model,
    scenario: ScenarioConfig,
    pipe: PipelineConfig,
    cfg: EvalConfig | None = None,
    *,
    device: torch.device | str | None = None,
    on_point: Callable[[int, float], None] | None = None,
) -> dict:
    """Sweep the SNR grid on fresh scenes of the model's own scenario; returns the report (docs/design.md §5).

    model: the trained network (R_samp, H) -> (A_angle, A_range); it is put in eval mode. on_point(i, snr)
    is called after each SNR point (progress bars).
    """
    cfg = cfg or EvalConfig()
    scenario = evaluation_scenario(scenario, cfg)
    device = device if device is not None else next((p.device for p in model.parameters()), torch.device("cpu"))
    grid = build_grid(scenario, cfg.grid, device=device)
    model.eval()
    rows = []
    with torch.no_grad():
        for i, snr in enumerate(cfg.snr_grid_db):
            # One seed for every point: the same scenes at each SNR (see the module docstring).
            batch = generate(
                scenario, cfg.n_scenes, seed=cfg.seed, device=device, snr_db=float(snr), num_sources=cfg.num_sources
            )
            rows.append({"snr_db": float(snr), **evaluate_point(model, batch, scenario, pipe, grid, cfg)})
            if on_point is not None:
                on_point(i, float(snr))
    return {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "snr_definition": SNR_DEFINITION,
        "config": cfg.model_dump(),
        "scenario": scenario.model_dump(),
        "pipeline": pipe.model_dump(),
        "rows": rows,
        "loc_gain_db": _nan_to_none(loc_gain_db(rows, (CLASSIC_OF[pipe.estimator],))),
        "loc_gain_reference": CLASSIC_OF[pipe.estimator],  # the method loc_gain_db's 0 dB is
        "loc_gain_vs_best_classic_db": _nan_to_none(loc_gain_db(rows, ("classic", "dml"))),
    }


def loc_gain_db(rows: list[dict], baselines: tuple[str, ...] = ("classic",)) -> float:
    """The search objective (DESIGN §6) on a report's rows: mean over SNR points and {clipped angle, range} of
    10·log10(MSE_baseline / MSE_learned), the baseline the best of `baselines` at each point and coordinate
    (classic MUSIC for the objective; ("classic", "dml") for "beats classic" claims where sources are coherent
    or snapshots few); nan without the methods or with a missing RMSE."""
    gains = []
    for row in rows:
        learned = row["methods"].get("learned")
        refs = [row["methods"].get(name) for name in baselines]
        if learned is None or not refs or None in refs:
            return math.nan
        for key in ("angle_rmse_clipped_deg", "range_rmse_m"):
            if not (learned[key] and all(ref[key] for ref in refs)):
                return math.nan
            gains.append(20 * math.log10(min(ref[key] for ref in refs) / learned[key]))
    return sum(gains) / len(gains) if gains else math.nan


def check_schema(report: dict) -> None:
    """Raise CovblendError naming the first missing or mistyped entry of a report (e.g. one read from JSON)."""

    def need(d, key, kind, where):
        if not isinstance(d, dict) or key not in d or not isinstance(d[key], kind):
            raise CovblendError(f"evaluation report: {where}{key} missing or not {kind}")
        return d[key]

    def need_all(d, keys, kind, where):
        for key in keys:
            need(d, key, kind, where)

    if need(report, "schema_version", int, "") != SCHEMA_VERSION or report.get("schema") != SCHEMA_NAME:
        raise CovblendError(f"evaluation report: expected {SCHEMA_NAME} version {SCHEMA_VERSION}")
    num = (int, float, type(None))
    need(report, "loc_gain_db", num, "")
    config = need(report, "config", dict, "")
    methods, rules = config.get("methods", METHODS), config.get("order_rules", ORDER_RULE_NAMES)
    if "dml" in methods:
        need(report, "loc_gain_vs_best_classic_db", num, "")
    rmses = ("angle_rmse_deg", "range_rmse_m")
    for i, row in enumerate(need(report, "rows", list, "")):
        at = f"rows[{i}]."
        need_all(row, ("snr_db", "mean_beta"), (int, float), at)
        need_all(need(row, "crb", dict, at), rmses, num, at + "crb.")
        for name in methods:
            m = need(need(row, "methods", dict, at), name, dict, at + "methods.")
            where = f"{at}methods.{name}."
            keys = (*rmses, "angle_rmse_clipped_deg", "gross_rate", "angle_crb_ratio", "range_crb_ratio")
            need_all(m, (*keys, "nmse_db") if name in NMSE_METHODS else keys, num, where)
            need_all(m, ("angle_rmse_ci95", "range_rmse_ci95"), (list, type(None)), where)
            for rule in rules if name in ORDER_METHODS else ():
                need(need(m, "k_accuracy", dict, where), rule, float, where + "k_accuracy.")
                est = need(need(m, "estimated_k", dict, where), rule, dict, where + "estimated_k.")
                need_all(est, rmses, num, f"{where}estimated_k.{rule}.")
