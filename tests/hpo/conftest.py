"""Tiny study specs for fast hpo tests: a few dozen scenes, two epochs, a small MLP."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from hpo.run.runner import run_worker
from hpo.storage import open_storage
from hpo.study.create import create_or_join
from hpo.study.objective import Objective
from hpo.study.spec import load_spec

TINY_SPEC = """
[study]
n_trials = 3
health_threshold = 0.0
figure_scenes = 8

[data]
n_train = 128
n_val = 64

[train]
epochs = 2
threads = 1

[localisation]
n_scenes = 8
final_scenes = 8

[fixed]
arch = "mlp"
width = 32
depth = 2
batch_size = 64

[search.lr]
type = "float"
low = 1e-3
high = 1e-2
log = true

[search.beta]
type = "float"
low = 0.2
high = 0.4

[sampler]
name = "random"
seed = 0

[pruner]
name = "none"
"""


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(tmp_path, monkeypatch):
    """`hpo run` stores best checkpoints under $HPO_ARTIFACTS (default ./artifacts): keep them out of the repo."""
    monkeypatch.setenv("HPO_ARTIFACTS", str(tmp_path / "artifacts"))


def trials_training(url: str, study: str = "tiny") -> int:
    """How many trials of `study` at url have reported an epoch (0 before the study exists): a run to signal is
    under way once they do."""
    try:
        return sum(bool(t.intermediate_values) for t in optuna.load_study(study_name=study, storage=url).trials)
    except KeyError:  # not created yet
        return 0


def write_spec(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.fixture
def tiny_spec(tmp_path) -> Path:
    """A valid spec whose trials take about a second."""
    return write_spec(tmp_path, "tiny", TINY_SPEC)


@pytest.fixture
def searched(tiny_spec, tmp_path) -> str:
    """A finished tiny study (3 trials) and its storage URL."""
    spec, url = load_spec(tiny_spec), f"sqlite:///{tmp_path / 'hpo.db'}"
    study, _ = create_or_join(spec, open_storage(url))
    run_worker(spec, study, 3, objective=Objective(spec))
    return url


@pytest.fixture
def nan_spec(tmp_path) -> Path:
    """The tiny spec with an absurd learning rate: one AdamW step overflows the weights, and the next
    loss and gradient are non-finite."""
    text = TINY_SPEC.replace("[fixed]\n", "[fixed]\nlr = 1e30\n")
    text = text.replace('[search.lr]\ntype = "float"\nlow = 1e-3\nhigh = 1e-2\nlog = true\n', "")
    return write_spec(tmp_path, "nan", text)
