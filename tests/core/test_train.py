"""Training: it learns, it guards against non-finite gradients, it calls back, it checkpoints."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from core.covariance import pipeline
from core.errors import CheckpointError, ConfigError
from core.localisation import keys
from core.models import build_model
from core.scenario import generate
from core.train import (
    ExperimentConfig,
    NonFiniteGradientError,
    _checked_gradients,
    load_checkpoint,
    save_checkpoint,
    train,
    validate,
)

# One thread: pytest-xdist keeps every core busy with a test already, where a second intra-op thread only spins.
TINY = {
    "scenario": {"measurement": {"snapshots": 4}},
    "model": {"arch": "mlp", "width": 64, "depth": 2},
    "train": {"epochs": 2, "n_train": 512, "n_val": 256, "batch_size": 128, "lr": 3e-3, "threads": 1, "device": "cpu"},
}


@pytest.fixture(scope="module")
def tiny_cfg():
    return ExperimentConfig.from_dict(TINY)


@pytest.fixture(scope="module")
def tiny_result(tiny_cfg):
    return train(tiny_cfg)


def test_a_tiny_run_brings_r_blend_below_r_samp(tiny_result):
    final = tiny_result.final
    assert final["nmse_db"] < final["nmse_samp_db"]


def test_training_is_deterministic(tiny_cfg, tiny_result):
    again = train(tiny_cfg)
    assert again.final["nmse_db"] == tiny_result.final["nmse_db"]


def test_epoch_callback_sees_every_epoch_and_its_exception_stops_training(tiny_cfg):
    seen = []

    class Stop(Exception):
        pass

    def on_epoch(epoch, metrics):
        seen.append((epoch, set(metrics)))
        if epoch == 0:
            raise Stop

    with pytest.raises(Stop):
        train(tiny_cfg, on_epoch=on_epoch)
    assert [e for e, _ in seen] == [0]
    assert {"nmse_db", "nmse_samp_db", "eigengap_health", "mean_gap", "train_loss"} <= seen[0][1]


def test_nonfinite_gradient_raises_and_leaves_the_weights_untouched(tiny_cfg):
    torch.manual_seed(0)
    model = build_model(tiny_cfg.model, tiny_cfg.scenario)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.register_forward_hook(lambda m, inp, out: (out[0] * math.nan, *out[1:]))  # injected NaN factor
    with pytest.raises(NonFiniteGradientError) as info:
        train(tiny_cfg, model=model)
    assert (info.value.epoch, info.value.step) == (0, 0)
    # The first parameter with a gradient: the fixed blend leaves the gate (registered first) without one.
    assert info.value.parameter == next(n for n, _ in model.named_parameters() if not n.startswith("gate."))
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_the_guard_names_a_bad_gradient_and_passes_a_norm_that_only_overflows():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    loss = torch.tensor(1.0)
    bad, norm = _checked_gradients(loss, model)
    assert bad is None and norm == torch.nn.utils.clip_grad_norm_(model.parameters(), 1e9)  # the norm clipping uses
    model[1].bias.grad[0] = math.inf
    assert _checked_gradients(loss, model)[0] == "1.bias"
    assert _checked_gradients(torch.tensor(math.nan), torch.nn.Linear(1, 1))[0] == "loss"  # no gradients at all
    for p in model.parameters():
        p.grad = torch.full_like(p, 1e30)  # finite, but their squares overflow float32
    bad, norm = _checked_gradients(loss, model)
    assert bad is None and math.isinf(norm)


def test_skip_nonfinite_counts_bad_steps_instead_of_raising(tiny_cfg):
    model = build_model(tiny_cfg.model, tiny_cfg.scenario)
    model.register_forward_hook(lambda m, inp, out: (out[0] * math.nan, *out[1:]))
    result = train(tiny_cfg, model=model, skip_nonfinite=True)
    assert result.final["nonfinite_steps"] == tiny_cfg.train.epochs * 512 / 128


def test_skipping_nonfinite_steps_emits_no_warning(tiny_cfg):
    model = build_model(tiny_cfg.model, tiny_cfg.scenario)
    model.register_forward_hook(lambda m, inp, out: (out[0] * math.nan, *out[1:]))
    one_epoch = ExperimentConfig.from_dict({**TINY, "train": {**TINY["train"], "epochs": 1}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. torch's "lr_scheduler.step() before optimizer.step()"
        train(one_epoch, model=model, skip_nonfinite=True)


def test_checkpoint_round_trips(tmp_path, tiny_cfg, tiny_result):
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, tiny_result, tiny_cfg)
    model, cfg, metrics = load_checkpoint(path)
    assert cfg == tiny_cfg
    assert metrics["nmse_db"] == tiny_result.final["nmse_db"]
    val = generate(cfg.scenario, 64, seed=9)
    assert validate(model, cfg, val) == validate(tiny_result.model, tiny_cfg, val)


def test_a_checkpoint_without_gate_parameters_still_loads(tmp_path, tiny_cfg, tiny_result):
    # What the code before the adaptive blend wrote: no gate.* keys, and no blend/beta_min in the config.
    old_state = {k: v for k, v in tiny_result.model.state_dict().items() if not k.startswith("gate.")}
    old_config = tiny_cfg.to_dict()
    old_config["pipeline"] = {k: v for k, v in old_config["pipeline"].items() if k not in ("blend", "beta_min")}
    path = tmp_path / "old.pt"
    torch.save({"state_dict": old_state, "config": old_config, "metrics": {}}, path)
    model, cfg, _ = load_checkpoint(path)
    assert cfg == tiny_cfg and cfg.pipeline.blend == "fixed"
    val = generate(cfg.scenario, 64, seed=9)
    assert validate(model, cfg, val) == validate(tiny_result.model, tiny_cfg, val)


def test_a_checkpoint_missing_other_parameters_is_refused(tmp_path, tiny_cfg, tiny_result):
    state = {k: v for k, v in tiny_result.model.state_dict().items() if not k.startswith("net.0.")}
    path = tmp_path / "broken.pt"
    torch.save({"state_dict": state, "config": tiny_cfg.to_dict(), "metrics": {}}, path)
    with pytest.raises(CheckpointError, match="net.0.weight"):
        load_checkpoint(path)


def test_adaptive_training_moves_the_gate_and_its_checkpoint_keeps_it(tmp_path, tiny_cfg):
    adaptive = ExperimentConfig.from_dict({**TINY, "pipeline": {"blend": "adaptive", "beta": 0.3, "beta_min": 0.05}})
    result = train(adaptive)
    assert all(math.isfinite(m["train_loss"]) and m["nonfinite_steps"] == 0 for m in result.history)
    val = generate(adaptive.scenario, 64, seed=9)
    with torch.no_grad():
        beta = pipeline(result.model, val.Y, val.H, adaptive.pipeline).beta
    assert ((beta >= 0.05) & (beta <= 1.0)).all() and beta.std() > 0  # one β per scene, no longer all 0.3
    path = tmp_path / "adaptive.pt"
    save_checkpoint(path, result, adaptive)
    model, cfg, _ = load_checkpoint(path)
    assert cfg.pipeline == adaptive.pipeline
    with torch.no_grad():
        assert torch.equal(pipeline(model, val.Y, val.H, cfg.pipeline).beta, beta)


def test_experiment_config_round_trips_through_a_plain_dict(tiny_cfg):
    assert ExperimentConfig.from_dict(tiny_cfg.to_dict()) == tiny_cfg


def test_unknown_experiment_key_is_named():
    with pytest.raises(ConfigError, match="learning_rate"):
        ExperimentConfig.from_dict({"train": {"learning_rate": 1.0}})


def test_data_cache_reuses_the_validation_set(tiny_cfg):
    one_epoch = ExperimentConfig.from_dict({**TINY, "train": {**TINY["train"], "epochs": 1}})
    cache: dict = {}
    train(one_epoch, data_cache=cache)
    cached = dict(cache)
    train(one_epoch, data_cache=cache)
    assert cache.keys() == cached.keys() and all(cache[k] is cached[k] for k in cached)


def test_a_searched_alpha_replaces_the_cached_measurement_of_a_fixed_set_instead_of_adding_one():
    # A study searching α on fixed training scenes must not keep one R_samp copy per trial in a worker.
    cache: dict = {}
    for alpha in (1e-2, 1e-3, 1e-4):
        cfg = ExperimentConfig.from_dict(
            {
                **TINY,
                "train": {**TINY["train"], "epochs": 1, "fresh_data": False},
                "pipeline": {"tikhonov_alpha": alpha},
            }
        )
        train(cfg, data_cache=cache)
        measured = [v for k, v in cache.items() if k[0] == "measured"]
        assert len(measured) == 1 and measured[0].tikhonov_alpha == alpha


def test_localisation_metrics_come_on_their_cadence_and_after_the_last_epoch():
    cfg = ExperimentConfig.from_dict(
        {**TINY, "train": {**TINY["train"], "epochs": 3}, "localisation": {"n_scenes": 8, "every": 2}}
    )
    seen = []
    train(cfg, on_epoch=lambda epoch, metrics: seen.append(set(keys()) <= set(metrics)))
    assert seen == [False, True, True]
