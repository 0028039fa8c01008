"""Files written by an earlier release still load: a checkpoint and a study database made by main at 097f5d4.

tests/data/legacy/ holds what that code wrote for legacy.toml (3 trials, localisation objective, adaptive
blend, then `hpo retrain --top 1 --seeds 1 --epochs 1`): the retrain's checkpoint.pt and the study's SQLite
database as an SQL dump (text, so git can diff it). Changes to configs, storage or the CLI must keep reading
them, and the checkpoint must still predict what it predicted then.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import optuna
import pytest
import torch
from typer.testing import CliRunner

from core.covariance import pipeline
from core.scenario import generate
from core.train import load_checkpoint
from hpo.cli import app

LEGACY = Path(__file__).parent / "data" / "legacy"


@pytest.fixture
def legacy_storage(tmp_path) -> str:
    db = tmp_path / "legacy.db"
    with sqlite3.connect(db) as con:
        con.executescript((LEGACY / "study.sql").read_text())
    return f"sqlite:///{db}"


def test_legacy_checkpoint_loads_and_predicts_what_it_did():
    model, cfg, metrics = load_checkpoint(LEGACY / "checkpoint.pt")
    assert (cfg.pipeline.blend, cfg.model.arch, cfg.model.width, cfg.loss.lam_peak) == ("adaptive", "mlp", 16, 0.02)
    assert metrics["nmse_db"] == pytest.approx(-3.3155479715729053)
    scenes = generate(cfg.scenario, 4, seed=0)
    with torch.no_grad():
        cov = pipeline(model, scenes.Y, scenes.H, cfg.pipeline)
    # Figures printed by the code that wrote the checkpoint, for these four scenes.
    assert cov.beta.tolist() == pytest.approx([0.491309, 0.492137, 0.496656, 0.483807], abs=1e-5)
    assert cov.R_blend.abs().sum().item() == pytest.approx(383.00403, rel=1e-5)


def test_legacy_study_lists_and_reports_its_best_trial(legacy_storage):
    runner = CliRunner()
    listed = runner.invoke(app, ["studies", "--storage", legacy_storage, "--json"])
    assert listed.exit_code == 0, listed.output
    assert "legacy" in listed.output
    best = runner.invoke(app, ["best", "--study", "legacy", "--storage", legacy_storage, "--json"])
    assert best.exit_code == 0, best.output
    record = json.loads(best.output)
    assert record["metric_names"] == ["angle_eff_db"]
    assert record["best"]["number"] == 0
    assert record["best"]["user_attrs"]["retrain_seeds"] == [0]


def test_legacy_localisation_study_is_not_mixed_with_the_new_metric_but_its_database_runs_on(legacy_storage, tmp_path):
    # The legacy study measured angle_eff_db (withdrawn, DESIGN §6); its spec's objective now means loc_gain_db.
    spec = tmp_path / "legacy.toml"
    spec.write_text((LEGACY / "legacy.toml").read_text().replace("n_trials = 3", "n_trials = 4"))
    refused = CliRunner().invoke(app, ["run", "--study", str(spec), "--storage", legacy_storage, "--json"])
    assert refused.exit_code == 2 and "angle_eff_db" in refused.output and "loc_gain_db" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    assert len(optuna.load_study(study_name="legacy", storage=legacy_storage).trials) == 3
    args = ["run", "--study", str(spec), "--study-name", "legacy-again", "--storage", legacy_storage, "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    trials = optuna.load_study(study_name="legacy-again", storage=legacy_storage).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 4
