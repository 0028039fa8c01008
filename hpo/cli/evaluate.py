"""`hpo evaluate --checkpoint PATH`: a trained model against classic MUSIC, the oracle and the CRB, per SNR.

The numbers come from core.evaluation.evaluate (the JSON schema: docs/design.md §5, "The evaluation report") and the
figure from hpo.results.evaluation; this module parses options, shows progress and prints the Rich table.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.progress import Progress
from rich.table import Table

from core.evaluation import SNR_DEFINITION, EvalConfig, evaluate, evaluation_scenario
from core.experiment import DEVICES
from core.train import resolve_device
from hpo.cli.common import DEFAULT_GRID, EVAL_DEFAULTS, Scenes, SnrGrid, parse_snr_grid
from hpo.console import err, fitting, out, say
from hpo.paths import prepare_output
from hpo.results.evaluation import LABELS, load_model, plot_report

Device = Enum("Device", [(d, d) for d in DEVICES], type=str)  # --device: the choices of TrainConfig.device
STYLES = {"learned": "green", "classic": "cyan", "music_samp": "blue", "oracle": "magenta", "crb": "yellow"}
TABLE_WIDTH = 100  # the table fits a terminal this wide


def short(x: float | None, digits: int = 3) -> str:
    """A table cell: x to `digits` significant digits, "–" for None or NaN."""
    return "–" if x is None or x != x else f"{x:.{digits}g}"


def report_table(report: dict) -> Table:
    """One row per SNR: learned (angle, range RMSE, eigengap K accuracy, NMSE, mean β), the classic baseline
    (angle, range, K accuracy), R_samp's NMSE, the MDL K accuracy of the snapshots and the CRB. Fits
    TABLE_WIDTH columns; the oracle and the R_samp diagnostic's RMSEs are in the JSON report."""
    table = Table(
        title="Localisation vs SNR, true K: learned vs classic MUSIC and the CRB",
        caption=(
            f"learned = MUSIC on {LABELS['learned']}; classic = {LABELS['classic']}, the baseline; "
            "θ, r: RMSE in ° and m; K: eigengap K̂ accuracy; MDL: K̂ accuracy of MDL on the snapshots; "
            "β: mean blend weight; NMSE vs R_true in dB, R_samp's for reference. "
            f"Oracle and R_samp RMSEs: --json. {SNR_DEFINITION}"
        ),
        box=box.SIMPLE_HEAD,
        show_edge=False,
        collapse_padding=True,  # one space between columns: 13 columns in ~90 characters
    )
    groups = (
        ("SNR", STYLES["crb"], ("dB",)),
        ("learned", STYLES["learned"], ("θ °", "r m", "K", "NMSE", "β")),
        ("classic", STYLES["classic"], ("θ °", "r m", "K")),
        ("R_samp", STYLES["music_samp"], ("NMSE",)),
        ("", None, ("MDL",)),
        ("CRB", STYLES["crb"], ("θ °", "r m")),
    )
    for group, style, heads in groups:
        for i, head in enumerate(heads):
            table.add_column(f"{group if i == 0 else ''}\n{head}", justify="right", style=style, no_wrap=True)
    for row in report["rows"]:
        learned, classic = row["methods"]["learned"], row["methods"]["classic"]
        table.add_row(
            f"{row['snr_db']:g}",
            *(short(learned[key]) for key in ("angle_rmse_deg", "range_rmse_m")),
            f"{learned['k_accuracy']['eigengap']:.2f}",
            short(learned["nmse_db"]),
            f"{row['mean_beta']:.2f}",
            *(short(classic[key]) for key in ("angle_rmse_deg", "range_rmse_m")),
            f"{classic['k_accuracy']['eigengap']:.2f}",
            short(row["methods"]["music_samp"]["nmse_db"]),
            f"{classic['k_accuracy']['mdl']:.2f}",  # MDL K̂ comes from the snapshots for every data method
            *(short(row["crb"][key]) for key in ("angle_rmse_deg", "range_rmse_m")),
        )
    return table


def evaluate_command(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="Checkpoint written by training (core.train).")],
    snr_grid: SnrGrid = DEFAULT_GRID,
    snapshots: Annotated[int | None, typer.Option("--snapshots", help="L; default: the checkpoint's.")] = None,
    sources: Annotated[int | None, typer.Option("--sources", help="K in every scene; default U{1..K_max}.")] = None,
    scenes: Scenes = EVAL_DEFAULTS.n_scenes,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the fresh evaluation scenes.")] = EVAL_DEFAULTS.seed,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the report (documented schema).")] = None,
    plot_path: Annotated[Path | None, typer.Option("--plot", help="Write RMSE-vs-SNR plots (PNG).")] = None,
    device: Annotated[Device, typer.Option("--device", help="auto (cuda if present), cpu or cuda.")] = Device.auto,
) -> None:
    """Evaluate a trained checkpoint: learned MUSIC vs classic MUSIC, the oracle and the CRB, per SNR."""
    cfg = EvalConfig(
        snr_grid_db=parse_snr_grid(snr_grid), n_scenes=scenes, snapshots=snapshots, num_sources=sources, seed=seed
    )
    dev = resolve_device(device.value)  # cuda without a CUDA device: a one-line ConfigError
    for target in (json_path, plot_path):  # fail before the long evaluation, not after it
        if target is not None:
            prepare_output(target)  # out/ is created on demand (hpo.paths)
    model, exp, _ = load_model(checkpoint)
    evaluation_scenario(exp.scenario, cfg)  # option errors before the progress bar starts
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("evaluating", total=len(cfg.snr_grid_db))
        report = evaluate(
            model.to(dev), exp.scenario, exp.pipeline, cfg, device=dev, on_point=lambda i, snr: progress.advance(task)
        )
    report["checkpoint"] = str(checkpoint)
    fitting(TABLE_WIDTH).print(report_table(report))
    if json_path is not None:
        json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False))
        say(f"report written to {json_path}", out)
    if plot_path is not None:
        plot_report(report, plot_path)
        say(f"plot written to {plot_path}", out)
