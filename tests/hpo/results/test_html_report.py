"""`hpo report`: one offline HTML page with every section a person reads."""

from __future__ import annotations

import re

import optuna
from optuna.trial import create_trial
from typer.testing import CliRunner

from hpo.cli import app
from hpo.results.html_report import TOP, render, top_table

PLOTLY_BUNDLE = "plotly.js v"  # the banner at the top of the inlined plotly.min.js


def test_report_is_one_offline_file_with_all_sections(tiny_spec, tmp_path):
    url, art = f"sqlite:///{tmp_path / 'hpo.db'}", str(tmp_path / "art")
    ran = CliRunner().invoke(app, ["run", "--study", str(tiny_spec), "--storage", url, "--artifacts", art, "--json"])
    assert ran.exit_code == 0, ran.output
    out = tmp_path / "report.html"
    args = ["report", "--study", "tiny", "--storage", url, "--artifacts", art, "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert page.count(PLOTLY_BUNDLE) == 1 and not re.search(r"<script[^>]+src=", page)
    assert page.count('class="plotly-graph-div"') == 6
    for title in ("Optimisation history", "Parameter importances (PED-ANOVA)", "Parallel coordinates"):
        assert f"<h2>{title}" in page
    assert "<h2>Intermediate values" in page
    assert "Why trials were pruned" in page and f"Top {TOP} trials" in page and "RMSE vs SNR" in page


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
