"""`hpo report`: one offline HTML page with every section a person reads."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest
from optuna.trial import create_trial
from typer.testing import CliRunner

from hpo.cli import app
from hpo.results.html_report import TOP, render, top_table
from tests.hpo.conftest import TINY_SPEC, write_spec

PLOTLY_BUNDLE = "plotly.js v"  # the banner at the top of the inlined plotly.min.js


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> tuple[str, Path]:
    """The tiny study after its run through the CLI: its URL and artifact folder, shared by the module's tests."""
    folder = tmp_path_factory.mktemp("ran")
    url, art = f"sqlite:///{folder / 'hpo.db'}", folder / "art"
    spec = write_spec(folder, "tiny", TINY_SPEC)
    result = CliRunner().invoke(app, ["run", "--study", str(spec), "--storage", url, "--artifacts", str(art), "--json"])
    assert result.exit_code == 0, result.output
    return url, art


def report(url: str, art: Path, out: Path):
    return CliRunner().invoke(
        app, ["report", "--study", "tiny", "--storage", url, "--artifacts", str(art), "--out", str(out)]
    )


def test_report_is_one_offline_file_with_all_sections(ran, tmp_path):
    out = tmp_path / "report.html"
    result = report(*ran, out)
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert page.count(PLOTLY_BUNDLE) == 1 and not re.search(r"<script[^>]+src=", page)
    assert page.count('class="plotly-graph-div"') == 6
    for title in ("Optimisation history", "Parameter importances (PED-ANOVA)", "Parallel coordinates"):
        assert f"<h2>{title}" in page
    assert "<h2>Intermediate values" in page
    assert "Why trials were pruned" in page and f"Top {TOP} trials" in page and "RMSE vs SNR" in page


def test_a_store_without_the_best_checkpoint_gives_the_report_without_its_curve_and_makes_no_folder(ran, tmp_path):
    url, _ = ran
    elsewhere, out = tmp_path / "other-machine-artifacts", tmp_path / "report.html"
    result = report(url, elsewhere, out)
    assert result.exit_code == 0, result.output  # was exit 2, leaving an empty out/ and artifact folder behind
    warning, wrote = result.stderr.strip().splitlines()
    assert (
        warning.startswith("warning: checkpoint ") and f"is not in {elsewhere}" in warning and wrote.startswith("wrote")
    )
    page = out.read_text()
    assert "No RMSE-vs-SNR curve: checkpoint " in page and "<h2>Optimisation history" in page
    assert not elsewhere.exists()


def test_top_table_ranks_feasible_trials_first_then_by_value():
    study = optuna.create_study()
    for value, constraint in [(-3.0, 0.2), (-1.0, -0.1), (-2.0, -0.1)] + [(float(i), -1.0) for i in range(12)]:
        study.add_trial(create_trial(value=value, constraints={"eigengap_health": constraint}))
    numbers = [int(n) for n in re.findall(r'<tr><td class="num">(\d+)</td>', top_table(study))]
    assert numbers[:2] == [2, 1] and len(numbers) == TOP and 0 not in numbers


def test_a_study_without_a_checkpoint_says_so_instead_of_a_curve():
    study = optuna.create_study()
    study.add_trial(create_trial(value=1.0))
    page = render(study, evaluation=None)
    assert "has no checkpoint artifact" in page and "RMSE vs SNR" not in page
