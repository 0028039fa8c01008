"""`hpo evaluate --checkpoint PATH`: a trained model against classic MUSIC, the oracle and the CRB, per SNR.

The numbers come from core.evaluation.evaluate (its docstring documents the JSON schema); this module only
parses options, shows progress, prints the Rich table and draws the plot.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import torch
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from core.errors import ConfigError, CovblendError
from core.evaluation import METHODS, SNR_DEFINITION, EvalConfig, evaluate, evaluation_scenario
from core.experiment import DEVICES
from core.train import resolve_device
from hpo.paths import prepare_output

out = Console()
err = Console(stderr=True)

LABELS = {"learned": "learned (R_blend)", "music_samp": "MUSIC on R_samp", "oracle": "oracle (R_true)"}
SHORT = {"learned": "learned", "music_samp": "R_samp", "oracle": "oracle"}
STYLES = {"learned": "green", "music_samp": "cyan", "oracle": "magenta", "crb": "yellow"}
DEFAULT_GRID = ",".join(f"{s:g}" for s in EvalConfig().snr_grid_db)


def parse_snr_grid(text: str) -> tuple[float, ...]:
    """'-10,-5,0' -> (-10.0, -5.0, 0.0); anything else is a ConfigError naming the text."""
    try:
        grid = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise ConfigError(f"--snr-grid must be comma-separated numbers in dB, got {text!r}") from None
    if not all(math.isfinite(s) for s in grid):
        raise ConfigError(f"--snr-grid values must be finite, got {text!r}")
    return grid


def _load(path: Path):
    from core.train import load_checkpoint

    if not path.is_file():
        raise CovblendError(f"checkpoint not found: {path}")
    try:
        return load_checkpoint(path)
    except CovblendError:
        raise
    except (OSError, RuntimeError, ValueError, KeyError, TypeError) as e:  # torch.load / state-dict mismatches
        raise CovblendError(f"cannot load checkpoint {path}: {type(e).__name__}: {e}") from None


def _fmt(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}g}"


def report_table(report: dict) -> Table:
    """One row per SNR, one column group per method (angle RMSE, range RMSE, K accuracy, NMSE), then the CRB."""
    legend = "; ".join(f"{SHORT[m]} = {LABELS[m]}" for m in METHODS)
    table = Table(
        title="Localisation vs SNR: MUSIC with the true K; K accuracy of the eigengap / MDL rules",
        caption=f"{legend}. {SNR_DEFINITION}",
    )
    table.add_column("SNR dB", justify="right")
    for name in METHODS:
        style = STYLES[name]
        for col in ("θ RMSE °", "r RMSE m", "K acc", "NMSE dB"):
            table.add_column(f"{SHORT[name]}\n{col}", justify="right", style=style)
    table.add_column("CRB\nθ °", justify="right", style=STYLES["crb"])
    table.add_column("CRB\nr m", justify="right", style=STYLES["crb"])
    for row in report["rows"]:
        cells = [f"{row['snr_db']:g}"]
        for name in METHODS:
            m = row["methods"][name]
            k = m["k_accuracy"]
            cells += [_fmt(m["angle_rmse_deg"]), _fmt(m["range_rmse_m"]), f"{k['eigengap']:.2f} / {k['mdl']:.2f}"]
            cells.append(_fmt(m["nmse_db"]))
        cells += [_fmt(row["crb"]["angle_rmse_deg"]), _fmt(row["crb"]["range_rmse_m"])]
        table.add_row(*cells)
    return table


def plot_report(report: dict, path: Path) -> None:
    """RMSE (angle and range) vs SNR for every method and the CRB, log y axes, SNR definition in the caption."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    snr = [row["snr_db"] for row in report["rows"]]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, key, unit in zip(
        axes, ("angle_rmse_deg", "range_rmse_m"), ("angle RMSE (deg)", "range RMSE (m)"), strict=True
    ):
        for name in METHODS:
            y = [row["methods"][name][key] for row in report["rows"]]
            ax.plot(snr, [math.nan if v is None else v for v in y], "o-", label=LABELS[name], color=STYLES[name])
        crb = [row["crb"][key] for row in report["rows"]]
        ax.plot(snr, [math.nan if v is None else v for v in crb], "k--", label="stochastic CRB")
        ax.set_yscale("log")
        ax.set_xlabel("SNR (dB)")
        ax.set_ylabel(unit)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.text(0.5, 0.01, f"{SNR_DEFINITION}. Oracle K; RMSE after optimal assignment.", ha="center", fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def evaluate_command(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="Checkpoint written by training (core.train).")],
    snr_grid: Annotated[
        str, typer.Option("--snr-grid", help="Comma-separated SNRs in dB, SNR = p_k/σ².")
    ] = DEFAULT_GRID,
    snapshots: Annotated[int | None, typer.Option("--snapshots", help="L; default: the checkpoint's.")] = None,
    sources: Annotated[int | None, typer.Option("--sources", help="K in every scene; default U{1..K_max}.")] = None,
    scenes: Annotated[int, typer.Option("--scenes", help="Scenes per SNR point.")] = EvalConfig().n_scenes,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the fresh evaluation scenes.")] = EvalConfig().seed,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the report (documented schema).")] = None,
    plot_path: Annotated[Path | None, typer.Option("--plot", help="Write RMSE-vs-SNR plots (PNG).")] = None,
    device: Annotated[str, typer.Option("--device", help="auto (cuda if present), cpu or cuda.")] = "auto",
) -> None:
    """Evaluate a trained checkpoint: learned MUSIC vs MUSIC on R_samp, the oracle and the CRB, per SNR."""
    try:
        cfg = EvalConfig(
            snr_grid_db=parse_snr_grid(snr_grid), n_scenes=scenes, snapshots=snapshots, num_sources=sources, seed=seed
        )
        if device not in DEVICES:
            raise ConfigError(f"--device must be one of {', '.join(DEVICES)}, got --device={device!r}")
        device = str(resolve_device(device))  # cuda without a CUDA device: a one-line ConfigError
        for target in (json_path, plot_path):  # fail before the long evaluation, not after it
            if target is not None:
                prepare_output(target)  # out/ is created on demand (hpo.paths)
        model, exp, _ = _load(checkpoint)
        evaluation_scenario(exp.scenario, cfg)  # option errors before the progress bar starts
        dev = torch.device(device)
        with Progress(console=err, transient=True) as progress:
            task = progress.add_task("evaluating", total=len(cfg.snr_grid_db))
            report = evaluate(
                model.to(dev), exp.scenario, exp.pipeline, cfg, device=dev,
                on_point=lambda i, snr: progress.advance(task),
            )  # fmt: skip
        report["checkpoint"] = str(checkpoint)
        out.print(report_table(report))
        if json_path is not None:
            json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False))
            out.print(f"report written to {json_path}", markup=False, highlight=False)
        if plot_path is not None:
            plot_report(report, plot_path)
            out.print(f"plot written to {plot_path}", markup=False, highlight=False)
    except CovblendError as e:
        err.print(f"error: {e}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def register(app: typer.Typer) -> None:
    """Add `evaluate` to the `hpo` app."""
    app.command("evaluate")(evaluate_command)
