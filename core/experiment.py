"""TrainConfig and ExperimentConfig: every setting of one training run, as one frozen, serialisable value.

to_dict() and from_dict() are Config's (core.configs): missing sections and keys take their defaults, so
checkpoints written before a setting existed still load (DESIGN §7).
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field, model_validator

from core.calibration import CalibrationConfig
from core.configs import Config
from core.covariance import PipelineConfig
from core.localisation import LocalisationConfig
from core.losses import LossConfig
from core.models import ModelConfig
from core.scenario import MAX_SEED, ScenarioConfig, check_drawable

# Upper bounds: far above any study here (quick: 8k scenes, 10 epochs, batch 256), far below what would fail
# every trial allocating terabytes or start thousands of threads (issue 23).
MAX_SCENES = 1_000_000  # n_train and n_val: a million scenes' snapshots and covariances are gigabytes already
MAX_EPOCHS = 10_000
MAX_BATCH = 65_536
MAX_THREADS = 256  # torch threads of one process; a fixed cap, so a spec is valid on every host alike

Device = Literal["auto", "cpu", "cuda"]
DEVICES: tuple[str, ...] = get_args(Device)


class TrainConfig(Config):
    epochs: int = Field(10, ge=1, le=MAX_EPOCHS)  # passes; with fresh_data each epoch sees n_train new scenes
    batch_size: int = Field(256, ge=1, le=MAX_BATCH)  # scenes per optimiser step
    lr: float = Field(1e-3, gt=0)  # AdamW peak learning rate
    weight_decay: float = Field(1e-4, ge=0)  # AdamW decoupled weight decay
    cosine: bool = True  # cosine-anneal the learning rate to 0 over all steps
    grad_clip: float = Field(1.0, ge=0)  # max global gradient norm; 0 disables clipping
    n_train: int = Field(16384, ge=1, le=MAX_SCENES)  # scenes per epoch
    n_val: int = Field(2048, ge=1, le=MAX_SCENES)  # fixed validation scenes
    fresh_data: bool = True  # draw new training scenes every epoch (validation stays fixed)
    seed: int = Field(0, ge=0, le=MAX_SEED)  # model init + training data
    val_seed: int = Field(1_000_003, ge=0, le=MAX_SEED)  # validation data
    threads: int | None = Field(None, ge=1, le=MAX_THREADS)  # torch.set_num_threads; None leaves torch's default
    device: Device = "auto"  # "auto" (cuda if available) | "cpu" | "cuda"
    amp: bool = False  # bf16 autocast of the training forward (the network; losses stay float32); for GPUs
    tf32: bool = False  # TF32 tensor cores for float32 CUDA matmuls while training; no effect on CPU


class ExperimentConfig(Config):
    scenario: ScenarioConfig = ScenarioConfig()  # array, measurement, scenes
    pipeline: PipelineConfig = PipelineConfig()  # β, α, ρ of the one pipeline
    model: ModelConfig = ModelConfig()  # architecture and size
    loss: LossConfig = LossConfig()  # loss weights and target
    train: TrainConfig = TrainConfig()  # optimiser, budget, data, seeds, device
    localisation: LocalisationConfig = LocalisationConfig()  # the search objective, loc_gain_db (DESIGN §6)
    calibration: CalibrationConfig = CalibrationConfig()  # the calibrated blend's β table (DESIGN §3)

    @model_validator(mode="after")
    def _data_fits_a_draw(self) -> ExperimentConfig:
        """The training and validation sets, each drawn at once, within core.scenario.MAX_DRAWN: a spec that would
        fail every trial in the allocator is refused when it is read."""
        for name in ("n_train", "n_val"):
            check_drawable(getattr(self.train, name), self.scenario.measurement.snapshots, f"train.{name}")
        return self
