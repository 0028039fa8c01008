"""Study figures for people: why trials were pruned, and the best model's RMSE vs SNR against classic MUSIC (and
classic DML where the pipeline localises with DML) and the CRB.

`save_study_plots` is what `hpo run` calls when a study ends: it evaluates the best trial's checkpoint on a
fresh scene set (core.evaluation.evaluate), stores that report as a study artifact, and saves both figures
to the study with optuna_dashboard.save_plotly_graph_object, so the dashboard's study page shows them.
`hpo report` reuses the same figures and the stored report.

The evaluation has the study spec's `[study] figure_scenes` per point (figure_eval), and the curves carry 95%
intervals because MUSIC's range RMSE scatters between scene draws. Only the true-K RMSEs of learned and classic
are drawn: two MUSIC runs per scene, which keeps 200 scenes cheap (a DML pipeline's two DML runs cost ~15 each).
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path

import optuna
import plotly.graph_objects as go
from optuna.artifacts import FileSystemArtifactStore, download_artifact, get_all_artifact_meta, upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.trial import TrialState
from plotly.subplots import make_subplots

from core.evaluation import CLASSIC_OF, SNR_DEFINITION, EvalConfig, evaluate
from core.train import load_checkpoint
from hpo.results.checkpoint_eval import COLOURS, LABELS
from hpo.storage.artifacts import checkpoint_id, download_checkpoint
from hpo.study.objective import NONFINITE
from hpo.study.ranking import best_trial
from hpo.study.spec import SpecError, StudySettings
from hpo.study.stored_spec import spec_of

PRUNE_REASONS: tuple[str, ...] = ("pruner", NONFINITE, "other")  # "other": e.g. a non-finite final metric
# drawn where a report has them (DML: a DML pipeline's own baseline); the oracle would flatten the log axes
CURVES: tuple[str, ...] = ("learned", "classic", "dml")
FIGURE_METHODS: tuple[str, ...] = ("learned", "classic")  # evaluated for every study; evaluate_best adds DML's
FIGURE_IDS = {"rmse": "rmse-vs-snr", "prune": "prune-reasons"}  # fixed ids: a later run overwrites, not adds
CI_KEYS = {"angle_rmse_deg": "angle_rmse_ci95", "range_rmse_m": "range_rmse_ci95"}  # a report's 95% intervals


def figure_eval(study: optuna.Study) -> EvalConfig:
    """The evaluation behind the study's RMSE-vs-SNR figure: `hpo evaluate`'s SNR grid, true K, the spec's
    figure_scenes per point (the default for a study whose spec cannot be had)."""
    try:
        scenes = spec_of(study).study.figure_scenes
    except SpecError:
        scenes = StudySettings().figure_scenes
    return EvalConfig(n_scenes=scenes, methods=FIGURE_METHODS, order_rules=())


def _evaluation_name(trial_number: int) -> str:
    return f"evaluation-trial-{trial_number}.json"


def prune_reasons(study: optuna.Study) -> dict[str, int]:
    """PRUNED trials counted by their prune_reason user attr, in PRUNE_REASONS order."""
    pruned = study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
    seen = Counter(t.user_attrs.get("prune_reason") for t in pruned)
    known = {r: seen.get(r, 0) for r in PRUNE_REASONS[:-1]}
    return {**known, "other": len(pruned) - sum(known.values())}


def prune_reason_figure(study: optuna.Study) -> go.Figure:
    """Bar chart of prune_reasons(study), with the complete and failed counts for scale in the title."""
    counts = prune_reasons(study)
    states = Counter(t.state for t in study.get_trials(deepcopy=False))
    fig = go.Figure(go.Bar(x=list(counts), y=list(counts.values()), text=list(counts.values()), textposition="auto"))
    fig.update_layout(
        title=f"Why trials were pruned ({states[TrialState.COMPLETE]} complete, "
        f"{states[TrialState.PRUNED]} pruned, {states[TrialState.FAIL]} failed)",
        xaxis_title="prune_reason",
        yaxis_title="trials",
    )
    return fig


def _error_bars(rows: list[dict], name: str, key: str) -> dict:
    """Plotly error_y from the report's 95% intervals (core.evaluation); invisible where one is missing."""
    y = [row["methods"][name][key] for row in rows]
    ci = [row["methods"][name].get(CI_KEYS[key]) for row in rows]
    hi = [0.0 if c is None or v is None else c[1] - v for c, v in zip(ci, y, strict=True)]
    lo = [0.0 if c is None or v is None else v - c[0] for c, v in zip(ci, y, strict=True)]
    return {"type": "data", "symmetric": False, "array": hi, "arrayminus": lo, "thickness": 1, "width": 3}


def rmse_vs_snr_figure(report: dict) -> go.Figure:
    """Angle and range RMSE (log axes) vs SNR of the learned model and classic MUSIC in a core.evaluation
    report, with their 95% intervals where the report has them, and the CRB."""
    rows = report["rows"]
    snr = [row["snr_db"] for row in rows]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("angle RMSE (deg)", "range RMSE (m)"))
    for col, key in enumerate(("angle_rmse_deg", "range_rmse_m"), start=1):
        for name in (name for name in CURVES if name in rows[0]["methods"]):
            y = [row["methods"][name][key] for row in rows]
            style = {"line": {"color": COLOURS[name]}, "error_y": _error_bars(rows, name, key), "showlegend": col == 1}
            fig.add_trace(go.Scatter(x=snr, y=y, mode="lines+markers", name=LABELS[name], **style), row=1, col=col)
        crb = [row["crb"][key] for row in rows]
        style = {"line": {"color": COLOURS["crb"], "dash": "dash"}, "showlegend": col == 1}
        fig.add_trace(go.Scatter(x=snr, y=crb, mode="lines", name="stochastic CRB", **style), row=1, col=col)
        fig.update_yaxes(type="log", row=1, col=col)
        fig.update_xaxes(title_text="SNR (dB)", row=1, col=col)
    trial = report.get("trial")
    scenes = report["config"]["n_scenes"]
    learned_by = report.get("pipeline", {}).get("estimator", "music").upper()  # older reports: MUSIC
    caption = (
        f"learned = {learned_by} on R_blend, with the true K; {scenes} fresh scenes per point, the same scenes at "
        f"every SNR; bars: 95% bootstrap intervals.<br>{SNR_DEFINITION}"
    )
    note = dict(text=caption, xref="paper", yref="paper", x=0.5, y=-0.5, showarrow=False, font={"size": 10})
    fig.update_layout(
        title=f"Best model{'' if trial is None else f' (trial #{trial})'}: RMSE vs SNR",
        legend={"orientation": "h", "x": 0.5, "xanchor": "center", "y": -0.25},
        annotations=[*fig.layout.annotations, note],
        margin={"b": 130},
    )
    return fig


def evaluate_best(study: optuna.Study, store: FileSystemArtifactStore, cfg: EvalConfig) -> dict | None:
    """core.evaluation report of the best trial's checkpoint with a "trial" number; None when it has none."""
    trial = best_trial(study)
    if trial is None or checkpoint_id(study, trial) is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = download_checkpoint(study, trial, store, Path(tmp) / "best.pt")
        model, exp, _ = load_checkpoint(path)
    cfg = cfg.replace(methods=(*cfg.methods, CLASSIC_OF[exp.pipeline.estimator]))  # and the pipeline's own classic
    report = evaluate(model, exp.scenario, exp.pipeline, cfg)
    return {**report, "trial": trial.number}


def stored_evaluation(study: optuna.Study, store: FileSystemArtifactStore) -> dict | None:
    """The evaluation report save_study_plots stored for the CURRENT best trial, or None."""
    trial = best_trial(study)
    if trial is None:
        return None
    name = _evaluation_name(trial.number)
    found = [m for m in get_all_artifact_meta(study) if m.filename == name]
    if not found:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        try:
            download_artifact(artifact_store=store, file_path=str(path), artifact_id=found[-1].artifact_id)
        except ArtifactNotFound:  # the store was moved or cleaned: evaluate again
            return None
        return json.loads(path.read_text())


def save_study_plots(study: optuna.Study, store: FileSystemArtifactStore, cfg: EvalConfig | None = None) -> list[str]:
    """Evaluate the best checkpoint (on `cfg`, else figure_eval), store its report, save the figures to the study;
    returns the figure ids."""
    from optuna_dashboard import save_plotly_graph_object  # lazy: only a finished run saves figures

    saved = [save_plotly_graph_object(study, prune_reason_figure(study), graph_object_id=FIGURE_IDS["prune"])]
    report = stored_evaluation(study, store)
    if report is None:
        report = evaluate_best(study, store, cfg or figure_eval(study))
        if report is None:
            return saved
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / _evaluation_name(report["trial"])
            path.write_text(json.dumps(report, indent=2, ensure_ascii=False))
            upload_artifact(study_or_trial=study, file_path=str(path), artifact_store=store)
    saved.append(save_plotly_graph_object(study, rmse_vs_snr_figure(report), graph_object_id=FIGURE_IDS["rmse"]))
    return saved
