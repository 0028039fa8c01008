"""TrainConfig's amp (bf16 autocast) and tf32 options: validated, off by default, and harmless where they do not
apply. CPU autocast runs bf16 too, so every architecture's mixed-precision forward is exercised here."""

from __future__ import annotations

import math

import pytest
import torch

from core.errors import ConfigError
from core.experiment import ExperimentConfig, TrainConfig
from core.models import MODELS
from core.train import tf32_matmuls, train


def _cfg(arch: str = "mlp", **train_kw) -> ExperimentConfig:
    return ExperimentConfig.from_dict(
        {
            "model": {"arch": arch, "width": 32, "depth": 1, "heads": 2},
            "train": {"epochs": 1, "n_train": 64, "n_val": 32, "batch_size": 32, "threads": 1, "device": "cpu"}
            | train_kw,
        }
    )


def test_mixed_precision_is_off_by_default():
    assert (TrainConfig().amp, TrainConfig().tf32) == (False, False)


@pytest.mark.parametrize("name", ["amp", "tf32"])
def test_precision_options_must_be_booleans(name):
    with pytest.raises(ConfigError, match=f"{name} must be true or false, got {name}=1"):
        TrainConfig(**{name: 1})


@pytest.mark.parametrize("arch", sorted(MODELS))
def test_every_architecture_trains_under_bf16_autocast(arch):
    result = train(_cfg(arch, amp=True))
    assert math.isfinite(result.final["train_loss"]) and math.isfinite(result.final["nmse_db"])


def test_tf32_changes_nothing_on_the_cpu():
    plain, tf32 = train(_cfg()), train(_cfg(tf32=True))
    assert plain.history == tf32.history


def test_tf32_matmuls_restores_the_previous_setting_after_an_error():
    before = torch.backends.cuda.matmul.fp32_precision
    with pytest.raises(RuntimeError, match="inside"), tf32_matmuls(True):
        assert torch.backends.cuda.matmul.fp32_precision == "tf32"
        raise RuntimeError("inside")
    assert torch.backends.cuda.matmul.fp32_precision == before
