"""TrainConfig and ExperimentConfig: every setting of one training run, as one frozen, serialisable value.

ExperimentConfig.to_dict() is plain nested dicts of numbers, strings, booleans, lists and None (JSON/TOML-able;
None values are dropped so TOML can hold it); from_dict() rejects unknown keys with a ConfigError naming them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from core.configs import build_sections
from core.covariance import PipelineConfig
from core.errors import ConfigError
from core.localisation import LocalisationConfig
from core.losses import LossConfig
from core.models import ModelConfig
from core.scenario import ScenarioConfig

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10  # passes; with fresh_data each epoch sees n_train new scenes
    batch_size: int = 256  # scenes per optimiser step
    lr: float = 1e-3  # AdamW peak learning rate
    weight_decay: float = 1e-4  # AdamW decoupled weight decay
    cosine: bool = True  # cosine-anneal the learning rate to 0 over all steps
    grad_clip: float = 1.0  # max global gradient norm; 0 disables clipping
    n_train: int = 16384  # scenes per epoch
    n_val: int = 2048  # fixed validation scenes
    fresh_data: bool = True  # draw new training scenes every epoch (validation stays fixed)
    seed: int = 0  # model init + training data
    val_seed: int = 1_000_003  # validation data
    threads: int | None = None  # torch.set_num_threads; None leaves torch's default
    device: str = "auto"  # "auto" (cuda if available) | "cpu" | "cuda"
    amp: bool = False  # bf16 autocast of the training forward (the network; losses stay float32); for GPUs
    tf32: bool = False  # TF32 tensor cores for float32 CUDA matmuls while training; no effect on CPU

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "n_train", "n_val"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, got {name}={v!r}")
        lr, wd, clip, threads = self.lr, self.weight_decay, self.grad_clip, self.threads
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ConfigError(f"lr must be positive and finite, got {lr=}")
        if not (isinstance(wd, (int, float)) and math.isfinite(wd) and wd >= 0):
            raise ConfigError(f"weight_decay must be finite and >= 0, got {wd=}")
        if not (isinstance(clip, (int, float)) and math.isfinite(clip) and clip >= 0):
            raise ConfigError(f"grad_clip must be finite and >= 0 (0 disables), got {clip=}")
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ConfigError(f"threads must be a positive integer or None, got {threads=}")
        if self.device not in DEVICES:
            raise ConfigError(f"device must be one of {DEVICES}, got device={self.device!r}")
        for name in ("amp", "tf32"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {name}={getattr(self, name)!r}")
        for name in ("seed", "val_seed"):
            if not isinstance(getattr(self, name), int):
                raise ConfigError(f"{name} must be an integer, got {name}={getattr(self, name)!r}")


_SECTIONS = {
    "pipeline": PipelineConfig,
    "model": ModelConfig,
    "loss": LossConfig,
    "train": TrainConfig,
    "localisation": LocalisationConfig,
}


def _drop_none(d):
    if isinstance(d, dict):
        return {k: _drop_none(v) for k, v in d.items() if v is not None}
    if isinstance(d, (list, tuple)):
        return [_drop_none(v) for v in d]
    return d


@dataclass(frozen=True)
class ExperimentConfig:
    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)  # array, measurement, scenes
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)  # β, α, ρ of the one pipeline
    model: ModelConfig = field(default_factory=ModelConfig)  # architecture and size
    loss: LossConfig = field(default_factory=LossConfig)  # loss weights and target
    train: TrainConfig = field(default_factory=TrainConfig)  # optimiser, budget, data, seeds, device
    localisation: LocalisationConfig = field(default_factory=LocalisationConfig)  # validation's MUSIC-vs-CRB metric

    def to_dict(self) -> dict:
        """Plain nested dict (tuples as lists, None dropped); from_dict(to_dict()) == self."""
        return _drop_none(asdict(self))

    @staticmethod
    def from_dict(d: dict) -> ExperimentConfig:
        """Build from {"scenario": …, "pipeline": …, "model": …, "loss": …, "train": …, "localisation": …};
        missing parts default (checkpoints written before a section existed still load)."""
        return ExperimentConfig(**build_sections(d, {"scenario": ScenarioConfig, **_SECTIONS}, "experiment"))
