"""`hpo report`: one self-contained HTML page a person reads offline (plotly.js embedded once, no CDN): the
study's Optuna figures (study_figures), the top-10 trials and the best model's RMSE vs SNR (write_report)."""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import optuna
import plotly.graph_objects as go
from optuna import visualization as vis
from optuna.artifacts import FileSystemArtifactStore

from core.evaluation import SNR_DEFINITION, EvalConfig
from hpo.results import plots
from hpo.results.views import trial_dict
from hpo.storage.artifacts import CheckpointNotInStore
from hpo.study import ranking
from hpo.study.spec import metric_label

TOP = 10  # rows of the top-trials table
# user attrs shown next to the value: NMSE of R_samp and the gain over it, health, gross-error rates (DESIGN §6)
TABLE_ATTRS = ("nmse_samp_db", "gain_db", "eigengap_health_final", "gross_rate", "classic_gross_rate")

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0.2em; } .meta { color: #666; margin-top: 0; } .note { color: #a60; }
table { border-collapse: collapse; font-size: 0.9em; } th, td { border: 1px solid #ccc; padding: 4px 8px; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
"""


def _first_metric(study: optuna.Study) -> str:
    """The label of the study's first value (hpo.study.spec.metric_label); old studies without names: value."""
    return metric_label(study.metric_names[0]) if study.metric_names else "value"


def _target(study: optuna.Study) -> dict:
    """Keyword arguments that make optuna.visualization plot (and name) the study's first value."""
    if len(study.directions) == 1:
        return {"target_name": _first_metric(study)}
    return {"target": lambda t: t.values[0], "target_name": _first_metric(study)}


def study_figures(study: optuna.Study) -> dict[str, Callable[[], go.Figure]]:
    """Section title -> a function drawing the Optuna figure (empty studies give empty figures, not errors)."""
    target = _target(study)
    return {
        "Optimisation history": lambda: vis.plot_optimization_history(study, **target),
        "Parameter importances (PED-ANOVA)": lambda: vis.plot_param_importances(study, **target),
        "Parallel coordinates": lambda: vis.plot_parallel_coordinate(study, **target),
        f"Intermediate values ({_first_metric(study)} per epoch)": lambda: vis.plot_intermediate_values(study),
        "Why trials were pruned": lambda: plots.prune_reason_figure(study),
    }


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else html.escape(str(v))


def top_table(study: optuna.Study, n: int = TOP) -> str:
    """HTML table of the n best COMPLETE trials (hpo.study.ranking.ranked): feasible first, then by value."""
    rows = [trial_dict(t) for t in ranking.ranked(study.get_trials(deepcopy=False), study.directions)[:n]]
    params = list(dict.fromkeys(k for r in rows for k in r["params"]))
    head = ["#", _first_metric(study), "feasible", *TABLE_ATTRS, *params]
    lines = ["<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for r in rows:
        cells = [r["number"], r["values"][0], ranking.is_feasible(r["constraints"])]
        cells += [r["user_attrs"].get(a, "") for a in TABLE_ATTRS] + [r["params"].get(p, "") for p in params]
        lines.append("<tr>" + "".join(f'<td class="num">{_fmt(c)}</td>' for c in cells) + "</tr>")
    lines.append("</table>")
    return "\n".join(lines) if rows else '<p class="note">No complete trial yet.</p>'


def render(study: optuna.Study, evaluation: dict | None, missing: str | None = None) -> str:
    """The whole page as one string; plotly.js is inlined with the first figure only. Without an evaluation the
    page says why it has no RMSE curve: `missing`, or that the best trial has no checkpoint."""
    figures = {title: draw() for title, draw in study_figures(study).items()}
    n_study = len(figures)
    if evaluation is not None:
        figures[f"Best model (trial #{evaluation['trial']}): RMSE vs SNR"] = plots.rmse_vs_snr_figure(evaluation)
    sections = []
    for i, (title, fig) in enumerate(figures.items()):
        div = fig.to_html(full_html=False, include_plotlyjs=i == 0, default_height="480px")
        sections.append(f"<h2>{html.escape(title)}</h2>\n{div}")
    sections.insert(n_study, f"<h2>Top {TOP} trials</h2>\n{top_table(study)}")
    if evaluation is None:
        why = html.escape(missing or "the best trial has no checkpoint artifact")
        sections.append(f'<p class="note">No RMSE-vs-SNR curve: {why}.</p>')
    name = html.escape(study.study_name)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Study {name}</title>'
        f"<style>{STYLE}</style></head><body>\n<h1>Study {name}</h1>\n"
        f'<p class="meta">{len(study.get_trials(deepcopy=False))} trials; written {stamp}. '
        f"{html.escape(SNR_DEFINITION)}.</p>\n" + "\n".join(sections) + "\n</body></html>\n"
    )


def write_report(
    study: optuna.Study, store: FileSystemArtifactStore, out: Path, cfg: EvalConfig | None = None
) -> str | None:
    """Write the page to `out`; the RMSE curve comes from the stored evaluation, else a fresh one (on `cfg`, else
    the study figure's plots.figure_eval). Returns why the page has no curve when the store lacks the best trial's
    checkpoint (another machine's or a moved --artifacts), None otherwise: every other section is written anyway."""
    evaluation, missing = plots.stored_evaluation(study, store), None
    if evaluation is None:
        try:
            evaluation = plots.evaluate_best(study, store, cfg or plots.figure_eval(study))
        except CheckpointNotInStore as e:
            missing = str(e)
    out.write_text(render(study, evaluation, missing), encoding="utf-8")
    return missing
