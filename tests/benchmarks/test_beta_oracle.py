"""benchmarks/beta_oracle.py: a checkpoint's R_pred at fixed β against β = 1 on the same fresh scenes, beside its own
blend and its own SNR estimate, which places scenes in its table's bins."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import torch

from core.experiment import ExperimentConfig
from core.models import build_model
from core.train import save_checkpoint
from hpo.study.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]


def test_a_checkpoint_that_ships_classic_reads_one_against_beta_one_and_the_table_is_printed(
    monkeypatch, tmp_path, capsys
):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # as `python benchmarks/beta_oracle.py` runs it
    bench = importlib.import_module("beta_oracle")
    spec = load_spec("starved")
    params = {name: param.corners()[0] for name, param in spec.search.items()}
    d = spec.experiment_dict(params)
    d["pipeline"] |= {"blend": "fixed", "beta": 1.0}  # ships classic DML: the oracle's own β = 1
    cfg = ExperimentConfig.from_dict(d)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "w.pt", build_model(cfg.model, cfg.scenario).eval(), cfg)
    argv = ["beta_oracle.py", "--checkpoint", str(tmp_path / "w.pt"), "--betas", "0.5", "--scenes", "12"]
    monkeypatch.setattr(sys, "argv", [*argv, "--seeds", "1", "--snr", "0,10", "--threads", "1", "--markdown"])
    bench.main()
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1:] for line in lines if line.startswith("| ")}
    for metric in ("clipped angle", "range"):
        assert [c.strip(" |") for c in rows[f"shipped: {metric} ÷ β = 1"]] == ["1.000", "1.000"]
        assert len(rows[f"β = 0.5: {metric} ÷ β = 1"]) == 2
    # the checkpoint's own ŝ: starved's manifold estimate, which follows the SNR where L = 2 < M
    low, high = (float(c.strip(" |")) for c in rows["ŝ p50 (dB)"])
    assert high > low + 5
