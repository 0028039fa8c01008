"""A checkpoint's evaluation: loaded and checked against the evaluation's options, and its core.evaluation report
drawn as angle and range RMSE vs SNR per method, against the CRB.

`hpo evaluate` and `hpo retrain` draw the figure with matplotlib; hpo.results.plots reuses its labels and
colours for the dashboard's plotly figure.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import torch

from core.errors import ConfigError
from core.evaluation import SNR_DEFINITION, EvalConfig, evaluation_scenario
from core.experiment import ExperimentConfig
from core.train import load_checkpoint

LABELS = {
    "learned": "learned (R_blend)",
    "classic": "classic MUSIC (W·YYᴴ/L·W)",
    "dml": "classic DML (alternating projection)",
    "music_samp": "R_samp (diagnostic)",
    "oracle": "oracle (R_true)",
}
COLOURS = {"learned": "#2ca02c", "classic": "#1f77b4", "dml": "#9467bd", "music_samp": "#ff7f0e", "crb": "#000000"}
PLOTTED: tuple[str, ...] = ("learned", "classic", "dml", "music_samp")  # the oracle (~1e-6°) would stretch log axes
BASELINES: tuple[str, ...] = ("learned", "classic", "dml")  # the clipped-RMSE and gross-error curves


def _value(v: float | None) -> float:
    return math.nan if v is None else v


def _oracle_note(report: dict) -> str:
    worst = max((row["methods"]["oracle"]["angle_rmse_deg"] or 0.0) for row in report["rows"])
    return f"oracle (R_true) left off the axes: angle RMSE ≤ {worst:.1g}° (refinement precision)"


def report_figure(report: dict):
    """A matplotlib Figure: angle and range RMSE vs SNR (log y) of learned, classic MUSIC, classic DML, the R_samp
    diagnostic (dashed) and the CRB (dotted), each method where the report has it; the angle panel adds the
    clipped RMSE (DESIGN §6, thin dash-dot), and a third panel the gross-error rate.

    The oracle sits at refinement precision (~1e-6°) and would stretch the axes over many decades, so it is
    left out and its largest value is named in the caption."""
    import matplotlib  # lazy: only figures need it, and Agg must be chosen before pyplot loads

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["rows"]
    snr = [row["snr_db"] for row in rows]
    present = set(rows[0]["methods"]) if rows else set()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    panels = (("angle_rmse_deg", "angle RMSE (°)", "angle"), ("range_rmse_m", "range RMSE (m)", "range"))
    for ax, (key, unit, title) in zip(axes[:2], panels, strict=True):
        for name in (name for name in PLOTTED if name in present):
            y = [_value(row["methods"][name][key]) for row in rows]
            diagnostic = name == "music_samp"
            ax.plot(
                snr, y, "--" if diagnostic else "-", marker="" if diagnostic else "o", lw=1.2 if diagnostic else 2,
                color=COLOURS[name], label=LABELS[name], zorder=3 if diagnostic else 2,  # on top: it tracks classic
            )  # fmt: skip
        crb = [_value(row["crb"][key]) for row in rows]
        ax.plot(snr, crb, ":", color=COLOURS["crb"], lw=2, label="stochastic CRB")
        ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("SNR (dB)")
        ax.set_ylabel(unit)
        ax.grid(True, which="both", alpha=0.3)
    for name in (name for name in BASELINES if name in present):
        clipped = [_value(row["methods"][name].get("angle_rmse_clipped_deg")) for row in rows]
        axes[0].plot(snr, clipped, "-.", lw=1, color=COLOURS[name], label=f"{LABELS[name]}, clipped")
        gross = [_value(row["methods"][name].get("gross_rate")) for row in rows]
        axes[2].plot(snr, gross, "-", marker="o", lw=2, color=COLOURS[name], label=LABELS[name])
    axes[2].set_title("gross errors (> resolution half-width)")
    axes[2].set_xlabel("SNR (dB)")
    axes[2].set_ylabel("fraction of sources")
    axes[2].grid(True, alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper right")
    beta = ", ".join(f"{row['mean_beta']:.2f}" for row in rows)
    fig.suptitle(f"Localisation vs SNR, true K (mean β of the learned blend per point: {beta})", fontsize=10)
    caption = f"{SNR_DEFINITION}. RMSE after optimal assignment. {_oracle_note(report)}."
    fig.text(0.5, 0.01, caption, ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    return fig


PLOT_FORMATS = ("png", "svg", "pdf")  # what `hpo evaluate --plot` writes, by the path's suffix


def plot_format(path: Path) -> str:
    """The image format path's suffix names: "png" (also for a path without one), "svg" or "pdf"; anything else is
    a ConfigError naming the path."""
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    if fmt not in PLOT_FORMATS:
        raise ConfigError(f"a plot's path must end in {', '.join('.' + f for f in PLOT_FORMATS)}, got {str(path)!r}")
    return fmt


def plot_report(report: dict, path: Path) -> None:
    """report_figure written to path, in plot_format(path)."""
    import matplotlib.pyplot as plt

    fmt = plot_format(path)
    fig = report_figure(report)
    image = io.BytesIO()  # matplotlib drops the error of a write that fails on close (a full disk): write it here
    fig.savefig(image, dpi=120, format=fmt)
    plt.close(fig)
    Path(path).write_bytes(image.getvalue())


def load_for_evaluation(path: Path, cfg: EvalConfig) -> tuple[torch.nn.Module, ExperimentConfig]:
    """The model and config of the checkpoint at path, checked against cfg: a file that is not a checkpoint is a
    CheckpointError, and options that do not fit its scenario (e.g. more sources than its K_max) a ConfigError."""
    model, exp, _ = load_checkpoint(path)
    evaluation_scenario(exp.scenario, cfg)
    return model, exp
