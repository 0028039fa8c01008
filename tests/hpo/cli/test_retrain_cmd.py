"""`hpo retrain`: files written for the winner, a table per trial, one-line errors."""

from __future__ import annotations

import json
import re

from rich.console import Console
from typer.testing import CliRunner

from core.evaluation import SNR_DEFINITION, check_schema
from core.train import load_checkpoint
from hpo.cli import app
from hpo.cli.retrain import summary_table
from hpo.results.retrain import FILES, TrialSummary

runner = CliRunner()
FAST = ["--epochs", "2", "--scenes", "8", "--snr-grid", "0,10"]


def test_retrain_writes_checkpoint_provenance_evaluation_and_plot(searched, tiny_spec, tmp_path):
    out = tmp_path / "out"
    args = ["retrain", "--study", "tiny", "--storage", searched, "--spec", str(tiny_spec), "--out", str(out)]
    result = runner.invoke(app, [*args, "--top", "2", "--seeds", "2", *FAST])
    assert result.exit_code == 0, result.stderr
    assert all((out / name).is_file() for name in FILES)
    assert ", ".join(FILES) in " ".join(result.stdout.split())  # the last line names what it wrote
    provenance = json.loads((out / "provenance.json").read_text())
    for key in ("spec", "params", "seeds", "versions", "git_commit", "device", "wall_s"):
        assert key in provenance
    assert provenance["seeds"] == [0, 1] and provenance["epochs"] == 2
    check_schema(json.loads((out / "evaluation.json").read_text()))
    assert (out / "evaluation.png").read_bytes()[:4] == b"\x89PNG"
    model, cfg, _ = load_checkpoint(out / "checkpoint.pt")
    assert cfg.train.seed == provenance["checkpoint_seed"]
    assert "★" in result.stdout
    assert SNR_DEFINITION in result.stdout.splitlines()  # whole, on a line of its own, not wrapped in a caption
    # stderr is not a terminal here: one plain line per finished seed, with the study's metric by name
    lines = [line for line in result.stderr.splitlines() if " seed " in line and "seeds" in line]
    assert len(lines) == 4 and lines[-1].endswith("4/4 seeds"), result.stderr
    assert all(re.match(r"trial \d+ seed [01]: \w+=[+-]\d", line) for line in lines), lines
    assert "\x1b" not in result.stderr


def test_a_trial_that_is_not_complete_is_a_one_line_error(searched, tiny_spec, tmp_path):
    args = ["retrain", "--study", "tiny", "--storage", searched, "--spec", str(tiny_spec), "--out", str(tmp_path)]
    result = runner.invoke(app, [*args, "--trial", "7"])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "trial 7" in result.stderr


def test_retrain_needs_only_the_study_when_its_spec_file_is_gone(searched, tiny_spec, tmp_path):
    tiny_spec.unlink()  # it lived outside studies/ anyway; the study holds what retrain needs
    out = tmp_path / "out"
    args = ["retrain", "--study", "tiny", "--storage", searched, "--out", str(out), "--top", "1", "--seeds", "1"]
    result = runner.invoke(app, [*args, *FAST])
    assert result.exit_code == 0, result.stderr
    assert "changed since" not in result.stderr  # the stored spec is the one the trials ran with
    assert json.loads((out / "provenance.json").read_text())["spec"]["path"] == str(tiny_spec)


def test_the_help_names_the_spec_key_of_the_validation_scenes():
    shown = runner.invoke(app, ["retrain", "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "spec's [localisation] final_scenes" in " ".join(shown.stdout.split())


def test_val_scenes_sets_the_scenes_the_seeds_are_ranked_on(searched, tiny_spec, tmp_path):
    out = tmp_path / "out"
    args = ["retrain", "--study", "tiny", "--storage", searched, "--spec", str(tiny_spec), "--out", str(out)]
    result = runner.invoke(app, [*args, "--top", "1", "--seeds", "1", "--val-scenes", "12", *FAST])
    assert result.exit_code == 0, result.stderr
    (record,) = (out / "runs").glob("trial-*/seed-*.json")
    assert json.loads(record.read_text())["config"]["localisation"]["n_scenes"] == 12
    bad = runner.invoke(app, [*args, "--val-scenes", "0"])
    assert bad.exit_code == 2 and "--val-scenes" in bad.stderr


def test_the_summary_lists_the_seeds_it_ran_under_a_header_that_is_no_count():
    one = TrialSummary(3, {}, (0.1,), (0,), ((0.2,),), (-7.0,), (0.6,))
    table = summary_table([one], one, 10, ["loc_gain_db"])
    console = Console(width=200, record=True)
    console.print(table)
    row = next(line for line in console.export_text().splitlines() if line.startswith("│") and "★" in line)
    assert table.columns[2].header == "seed ids" and row.split("│")[3].strip() == "0"  # seed 0, not "0 seeds"


def test_json_prints_every_retrained_trial_and_the_winner_instead_of_tables(searched, tiny_spec, tmp_path):
    out = tmp_path / "out"
    args = ["retrain", "--study", "tiny", "--storage", searched, "--spec", str(tiny_spec), "--out", str(out)]
    result = runner.invoke(app, [*args, "--top", "2", "--seeds", "1", "--json", *FAST])
    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout)  # stdout is the JSON alone: no table, no closing lines
    provenance = json.loads((out / "provenance.json").read_text())
    assert found["winner"] == provenance["trial"] and found["checkpoint_seed"] == provenance["checkpoint_seed"]
    assert found["metric_names"] == provenance["metric_names"] and found["trained"] == 2
    assert len(found["trials"]) == 2
    (winner,) = (t for t in found["trials"] if t["number"] == found["winner"])
    assert winner["mean_values"] == provenance["values"]["mean"] and winner["std_values"] is None  # one seed
    assert set(winner["angle_rmse_deg"]) == {"0.0", "10.0"}  # per SNR point of --snr-grid
