"""Training (one plain AdamW loop, phases labelled, no trainer framework), validation and checkpoints.

Every R_blend here comes from core.covariance.pipeline, the function inference uses too.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from core.calibration import CalibrationSet, calibration_set, fit_table
from core.covariance import Measured, measure, pipeline, pipeline_on
from core.errors import CheckpointError, ConfigError, CovblendError
from core.experiment import ExperimentConfig
from core.localisation import Reference, localisation_metrics, reference
from core.losses import total_loss
from core.metrics import validation_metrics
from core.models import build_model
from core.optim import AdamW
from core.scenario import SceneBatch, generate
from core.snr import manifold

EpochCallback = Callable[[int, dict[str, float]], None]
StepCallback = Callable[[int, int], None]  # (epoch, step), before each optimiser step


class NonFiniteGradientError(CovblendError):
    """A loss or gradient went NaN/inf; the optimiser step was not taken."""

    def __init__(self, epoch: int, step: int, parameter: str) -> None:
        super().__init__(f"non-finite loss or gradient at epoch {epoch}, step {step}, first in {parameter!r}")
        self.epoch, self.step, self.parameter = epoch, step, parameter


@dataclass
class TrainResult:
    model: nn.Module  # trained, in eval mode
    cfg: ExperimentConfig  # the config it was trained with
    history: list[dict[str, float]] = field(default_factory=list)  # one metrics dict per epoch
    final: dict[str, float] = field(default_factory=dict)  # metrics of the last epoch


def resolve_device(name: str) -> torch.device:
    """ "auto" -> cuda when available, else cpu; "cuda" without a CUDA device is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for, but torch sees no CUDA device")
    return torch.device(name)


@contextmanager
def tf32_matmuls(enabled: bool) -> Iterator[None]:
    """TF32 for float32 CUDA matmuls inside the block when enabled; the previous setting comes back after.

    Disabled, it touches nothing. Only torch's new precision API is used: mixing it with the legacy
    allow_tf32 flag makes torch raise."""
    if not enabled:
        yield
        return
    matmul = torch.backends.cuda.matmul
    before = matmul.fp32_precision
    matmul.fp32_precision = "tf32"
    try:
        yield
    finally:
        matmul.fp32_precision = before


def _data_seed(seed: int, epoch: int) -> int:
    # A hash keeps per-epoch training seeds apart from each other and from any validation seed.
    digest = hashlib.sha256(f"train/{seed}/{epoch}".encode()).digest()
    return int.from_bytes(digest[:7], "little")


def _cached(cache: dict | None, key: tuple, make: Callable[[], object]):
    """cache[key], made by make() and stored on first use; make() every time without a cache."""
    if cache is None:
        return make()
    if key not in cache:
        cache[key] = make()
    return cache[key]


def _dataset(cfg: ExperimentConfig, n: int, seed: int, device: torch.device, cache: dict | None) -> SceneBatch:
    return _cached(cache, (cfg.scenario, n, seed, str(device)), lambda: generate(cfg.scenario, n, seed, device=device))


def _measured(cfg: ExperimentConfig, data: SceneBatch, seed: int | None, cache: dict | None) -> Measured:
    """measure() of a training set: cached with the fixed set of `seed`, made anew for fresh scenes (seed None).

    One entry per set, replaced when α changes: a study that searches α on fixed data would otherwise keep one
    copy of R_samp per trial (64 MB each for `hybrid`)."""
    alpha, mf = cfg.pipeline.tikhonov_alpha, manifold(cfg.scenario, cfg.pipeline.snr_estimate)
    key = ("measured", cfg.scenario, len(data), seed, str(data.Y.device))
    x = None if cache is None or seed is None else cache.get(key)
    if x is None or x.tikhonov_alpha != alpha or (mf is None) != (x.manifold_snr_db is None):
        x = measure(data.Y, data.H, alpha, mf)
        if cache is not None and seed is not None:
            cache[key] = x
    return x


def _checked_gradients(loss: torch.Tensor, model: nn.Module) -> tuple[str | None, torch.Tensor]:
    """(name of the first parameter whose gradient is NaN/inf, "loss" if only the loss is, else None; the gradients'
    total 2-norm, which clipping reuses)."""
    # One reduction and one device-to-host sync for the common all-finite case, not one per parameter (on a GPU
    # each sync stalls the queue): a NaN/inf gradient makes the norm non-finite, and the per-parameter loop only
    # runs then. A norm that overflows from finite gradients finds no bad parameter and clips as torch's would.
    norm = nn.utils.get_total_norm([p.grad for p in model.parameters() if p.grad is not None])
    if torch.isfinite(torch.stack([loss.detach().double(), norm.double()])).all():
        return None, norm
    for name, p in model.named_parameters():
        if p.grad is not None and not torch.isfinite(p.grad).all():
            return name, norm
    return None if torch.isfinite(loss) else "loss", norm


def _blends(model: nn.Module, cfg: ExperimentConfig, batch: SceneBatch, device) -> tuple[torch.Tensor, ...]:
    """(R_blend, R_samp, β) of every scene of batch through covariance.pipeline, in training batches, no gradients."""
    out, mf = [], manifold(cfg.scenario, cfg.pipeline.snr_estimate)
    with torch.no_grad():
        for start in range(0, len(batch), cfg.train.batch_size):
            chunk = batch[start : start + cfg.train.batch_size].to(device)
            cov = pipeline(model, chunk.Y, chunk.H, cfg.pipeline, mf)
            out.append((cov.R_blend, cov.R_samp, cov.beta))
    return tuple(torch.cat(parts) for parts in zip(*out, strict=True))


def validate(
    model: nn.Module, cfg: ExperimentConfig, batch: SceneBatch, loc: Reference | None = None
) -> dict[str, float]:
    """Validation metrics of the model's R_blend on batch, through covariance.pipeline, without gradients.

    Keys as core.metrics.validation_metrics: nmse_db, nmse_samp_db, eigengap_health, mean_gap, and the
    same per SNR bucket (SNR = p_k/σ², dB) as "nmse_db@[lo,hi)" etc. With loc (core.localisation.reference),
    also core.localisation.keys(): loc_gain_db and its per-SNR-point parts, on loc's own scenes.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    R_blend, R_samp, _ = _blends(model, cfg, batch, device)
    b = batch.to(device)
    k_max, margin = cfg.scenario.scene.k_max, cfg.loss.gap_margin
    metrics = validation_metrics(R_blend, R_samp, b.R_true, b.K, b.snr_db, k_max, margin)
    if loc is not None:
        R_loc, _, beta = _blends(model, cfg, loc.scenes, device)
        metrics.update(localisation_metrics(R_loc, loc, beta))
    model.train(was_training)
    return metrics


def _reference(cfg: ExperimentConfig, device: torch.device, cache: dict | None) -> Reference | None:
    """The localisation set of the validation seed and the classic method's errors on it, cached like the datasets."""
    lc, estimator = cfg.localisation, cfg.pipeline.estimator
    if lc.n_scenes == 0:
        return None
    key = ("localisation", cfg.scenario, cfg.train.val_seed, lc.n_scenes, estimator, str(device))
    return _cached(cache, key, lambda: reference(cfg.scenario, cfg.train.val_seed, lc, estimator, device))


def _calibration(cfg: ExperimentConfig, device: torch.device, cache: dict | None) -> CalibrationSet | None:
    """The calibration set (its own seed, derived from val_seed) of a calibrated blend, cached; None otherwise."""
    if not cfg.pipeline.calibrated:
        return None
    cc, estimator = cfg.calibration, cfg.pipeline.estimator
    key = ("calibration", cfg.scenario, cfg.train.val_seed, cc.n_scenes, estimator, str(device))
    return _cached(cache, key, lambda: calibration_set(cfg.scenario, cc, cfg.train.val_seed, estimator, device))


def train(
    cfg: ExperimentConfig,
    on_epoch: EpochCallback | None = None,
    data_cache: dict | None = None,
    *,
    skip_nonfinite: bool = False,
    model: nn.Module | None = None,
    on_step: StepCallback | None = None,
) -> TrainResult:
    """Train cfg.model on scenes of cfg.scenario through the one pipeline; validate after every epoch.

    on_epoch(epoch, metrics) runs after each epoch (0-based) with validate()'s metrics plus "train_loss"
    and "nonfinite_steps"; whatever it raises (e.g. optuna.TrialPruned) propagates. The localisation keys
    (core.localisation.keys()) are there on the epochs cfg.localisation.due() picks, the last one always.
    data_cache: a dict kept by the caller across runs in one process; fixed datasets (validation, and
    training when not fresh_data) are stored in it keyed by (scenario, n, seed, device) and reused, and so is
    the localisation set with classic MUSIC's errors on it, and a calibrated blend's calibration set.
    The returned TrainResult.cfg carries the calibrated blend's last β table (so does every checkpoint).
    A non-finite loss or gradient raises NonFiniteGradientError before any optimiser step; with
    skip_nonfinite=True (ablation benchmarks only) the step is skipped and counted instead.
    model: continue training this model (built by build_model for cfg) instead of a fresh one.
    on_step(epoch, step) runs before each optimiser step; whatever it raises propagates, so a caller can stop
    training within one step (hpo.run.runner does on SIGTERM) rather than at the epoch's end.
    """
    tc = cfg.train
    # --- setup: threads, device, seeds, model, optimiser, schedule
    if tc.threads is not None:
        torch.set_num_threads(tc.threads)
    device = resolve_device(tc.device)
    torch.manual_seed(tc.seed)
    model = (model if model is not None else build_model(cfg.model, cfg.scenario)).to(device)
    opt = AdamW(model.parameters(), weight_decay=tc.weight_decay)
    steps_per_epoch = math.ceil(tc.n_train / tc.batch_size)
    total_steps = tc.epochs * steps_per_epoch
    # The schedule is a plain function of the global step, handed to the optimiser at each step. A
    # torch LRScheduler would warn "lr_scheduler.step() before optimizer.step()" whenever skip_nonfinite skips
    # a step, and skipped steps must still advance the schedule so a run's length does not depend on them.
    schedule = (lambda s: 0.5 * (1 + math.cos(math.pi * s / total_steps))) if tc.cosine else (lambda s: 1.0)
    val = _dataset(cfg, tc.n_val, tc.val_seed, device, data_cache)
    loc = _reference(cfg, device, data_cache)
    cal = _calibration(cfg, device, data_cache)
    shuffle = torch.Generator(device="cpu").manual_seed(tc.seed)
    history: list[dict[str, float]] = []
    nonfinite_steps = 0
    use_tf32 = tc.tf32 and device.type == "cuda"

    for epoch in range(tc.epochs):
        # --- data: fresh scenes each epoch, or one fixed set (cached) reshuffled; measured once per set
        if tc.fresh_data:
            data = generate(cfg.scenario, tc.n_train, _data_seed(tc.seed, epoch), device=device)
        else:
            data = _dataset(cfg, tc.n_train, _data_seed(tc.seed, 0), device, data_cache)
        measured = _measured(cfg, data, None if tc.fresh_data else _data_seed(tc.seed, 0), data_cache)
        order = torch.randperm(tc.n_train, generator=shuffle).to(device)

        # --- optimisation: forward through the pipeline, loss, backward, guard, clip, step
        model.train()
        loss_sum, loss_count = 0.0, 0
        for step in range(steps_per_epoch):
            if on_step is not None:
                on_step(epoch, step)
            lr = tc.lr * schedule(epoch * steps_per_epoch + step)
            idx = order[step * tc.batch_size : (step + 1) * tc.batch_size]
            batch = data[idx]
            with tf32_matmuls(use_tf32):  # forward and backward; validation stays in full float32
                # bf16 autocast (amp) covers the network: its Linear layers and attention run in bf16, the complex
                # and float64 physics is untouched (autocast casts float32 only), the losses are float32 outside.
                # bf16 has float32's exponent range, so no loss scaling is needed.
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=tc.amp):
                    cov = pipeline_on(model, measured[idx], cfg.pipeline)
                loss, _ = total_loss(cov, batch, cfg.loss, cfg.scenario.array)
                model.zero_grad(set_to_none=True)
                loss.backward()
            bad, grad_norm = _checked_gradients(loss, model)
            if bad is not None:
                if not skip_nonfinite:
                    raise NonFiniteGradientError(epoch, step, bad)
                nonfinite_steps += 1  # the weights and optimiser moments stay as they were
                continue
            if tc.grad_clip > 0:
                nn.utils.clip_grads_with_norm_(model.parameters(), tc.grad_clip, grad_norm)  # clip_grad_norm_'s bits
            opt.step(lr)
            loss_sum += loss.item()
            loss_count += 1

        # --- calibration: the calibrated blend refits its β table on its own scenes when due (DESIGN §3)
        if cal is not None and cfg.calibration.due(epoch, tc.epochs):
            model.eval()
            mf = manifold(cfg.scenario, cfg.pipeline.snr_estimate)
            table = fit_table(model, cfg.pipeline, cal, cfg.calibration, final=epoch == tc.epochs - 1, manifold=mf)
            cfg = cfg.replace(pipeline=cfg.pipeline.replace(beta_table=table))

        # --- validation on the fixed set (localisation on its own set when due), then the caller's callback
        metrics = validate(model, cfg, val, loc if cfg.localisation.due(epoch, tc.epochs) else None)
        metrics["train_loss"] = loss_sum / loss_count if loss_count else math.nan
        metrics["nonfinite_steps"] = float(nonfinite_steps)
        history.append(metrics)
        if on_epoch is not None:
            on_epoch(epoch, metrics)

    model.eval()
    return TrainResult(model=model, cfg=cfg, history=history, final=history[-1])


def save_checkpoint(path, result_or_model, cfg: ExperimentConfig, metrics: dict | None = None) -> None:
    """Write {"state_dict", "config": cfg.to_dict(), "metrics"} with torch.save; loadable with weights_only=True."""
    model = result_or_model.model if isinstance(result_or_model, TrainResult) else result_or_model
    if metrics is None and isinstance(result_or_model, TrainResult):
        metrics = result_or_model.final
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "config": cfg.to_dict(), "metrics": dict(metrics or {})}, path)


def load_checkpoint(path, map_location="cpu") -> tuple[nn.Module, ExperimentConfig, dict]:
    """(model in eval mode, its ExperimentConfig, its metrics) from save_checkpoint's file.

    Anything else (garbage, a plain pickle, a pickle that would call code, a torch file without our keys or
    with weights that do not fit its config) raises CheckpointError naming the file. weights_only=True means
    no code in the file ever runs.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about a foreign pickle protocol before refusing it
            blob = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read checkpoint: {e.strerror or type(e).__name__}") from None
    except Exception as e:  # torch.load raises many types for a foreign file; all mean the same here
        raise CheckpointError(
            f"{path}: not a covblend checkpoint (not a weights-only torch file: {type(e).__name__})"
        ) from None
    missing = {"state_dict", "config"} - set(blob) if isinstance(blob, dict) else {"state_dict", "config"}
    if missing:
        raise CheckpointError(f"{path}: not a covblend checkpoint (no {', '.join(sorted(missing))})")
    try:
        cfg = ExperimentConfig.from_dict(blob["config"])
        model = build_model(cfg.model, cfg.scenario)
        metrics = dict(blob.get("metrics", {}))
    except (CovblendError, TypeError, ValueError, KeyError, AttributeError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise CheckpointError(f"{path}: not a covblend checkpoint (config: {first})") from None
    state = blob["state_dict"]
    if isinstance(state, dict) and not any(k.startswith("gate.") for k in state):
        # Written before the adaptive blend existed: no gate, and a config that can only be blend="fixed", which
        # ignores the gate; the freshly built one stands in. Every other key must still match (strict load).
        state = {**model.gate.state_dict(prefix="gate."), **state}
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as e:
        detail = " ".join(str(e).split())[:200]  # torch names the missing or unexpected keys
        raise CheckpointError(
            f"{path}: not a covblend checkpoint (weights do not fit its {cfg.model.arch} model: {detail})"
        ) from None
    model.to(map_location).eval()
    return model, cfg, metrics
