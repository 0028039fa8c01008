"""`hpo evaluate --checkpoint PATH`: a trained model against classic MUSIC, the oracle and the CRB, per SNR.

The numbers come from core.evaluation.evaluate (the JSON schema: docs/design.md §5, "The evaluation report") and the
figure from hpo.results.checkpoint_eval; this module parses options, shows progress and prints the Rich table.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import torch
import typer
from rich import box
from rich.table import Table

from core.evaluation import SNR_DEFINITION, EvalConfig, evaluate
from core.experiment import DEVICES, MAX_THREADS
from core.train import resolve_device
from hpo.cli.common import DEFAULT_GRID, EVAL_DEFAULTS, Scenes, SnrGrid, parse_snr_grid
from hpo.console import bar, console_of_width, out, say
from hpo.paths import prepare_output
from hpo.results.checkpoint_eval import LABELS, load_for_evaluation, plot_format, plot_report
from hpo.run.signals import stopping_with
from hpo.study.spec import metric_label

Device = Enum("Device", [(d, d) for d in DEVICES], type=str)  # --device: the choices of TrainConfig.device
STYLES = {
    "learned": "green", "classic": "cyan", "dml": "bright_magenta", "music_samp": "blue", "oracle": "magenta",
    "crb": "yellow",
}  # fmt: skip
TABLE_WIDTH = 100  # the table fits a terminal this wide


def short(x: float | None, digits: int = 3) -> str:
    """A table cell: x to `digits` significant digits, "–" for None or NaN."""
    return "–" if x is None or x != x else f"{x:.{digits}g}"


def _table(title: str, caption: str, groups: tuple) -> Table:
    """A compact table whose columns are (group, style, heads) groups, the group named over its first head."""
    table = Table(
        title=title,
        caption=caption,
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        collapse_padding=True,
    )
    for group, style, heads in groups:
        for i, head in enumerate(heads):
            table.add_column(f"{group if i == 0 else ''}\n{head}", justify="right", style=style, no_wrap=True)
    return table


ANGLE_CELLS = ("angle_rmse_deg", "angle_rmse_clipped_deg", "gross_rate")


def report_notes(report: dict) -> tuple[str, str]:
    """What the tables' method names stand for, and the SNR definition: two lines printed whole after both tables
    (as the tables' captions they wrapped mid-formula, twice)."""
    estimator = report["pipeline"].get("estimator", "music").upper()  # older reports: MUSIC
    who = (
        f"learned = {estimator} on {LABELS['learned']}; classic = {LABELS['classic']}, the baseline; DML = "
        f"{LABELS['dml']} on the same snapshots, the classic method for coherent sources and L < K."
    )
    return who, SNR_DEFINITION  # the line `hpo retrain` prints too


def report_tables(report: dict) -> tuple[Table, Table]:
    """Two tables, one row per SNR, each within TABLE_WIDTH columns, captioned with their columns' legends (the
    methods' names: report_notes); the oracle and the R_samp diagnostic are in the JSON report.

    angle: learned, classic MUSIC and classic DML angle RMSE, plain and clipped at the resolution half-width,
    their gross-error rates, and the CRB. range, order and blend: their range RMSE, learned and classic eigengap
    K̂ accuracy, the learned NMSE and mean β, the MDL K̂ accuracy of the snapshots, and the CRB. A report without
    DML (EvalConfig.methods) shows "–" in its cells. The learned K column is the pipeline's own order rule."""
    order = report["pipeline"].get("order", "eigengap")  # older reports: the eigengap
    angle = _table(
        "Angle vs SNR, true K: learned vs classic MUSIC, classic DML and the CRB",
        "θ: RMSE in °; θc: RMSE with each error capped at the resolution half-width; gross: fraction of sources "
        "off by more than it.",
        (
            ("SNR", STYLES["crb"], ("dB",)),
            ("learned", STYLES["learned"], ("θ °", "θc °", "gross")),
            ("classic", STYLES["classic"], ("θ °", "θc °", "gross")),
            ("DML", STYLES["dml"], ("θ °", "θc °", "gross")),
            ("CRB", STYLES["crb"], ("θ °",)),
        ),
    )
    rng = _table(
        "Range, model order and blend vs SNR",
        f"r: RMSE in m (true K); K: K̂ accuracy, learned by its {order} rule, classic by the eigengap; MDL: K̂ "
        "accuracy of MDL on the snapshots; NMSE of R_blend vs R_true in dB; β: mean blend weight.",
        (
            ("SNR", STYLES["crb"], ("dB",)),
            ("learned", STYLES["learned"], ("r m", "K", "NMSE", "β")),
            ("classic", STYLES["classic"], ("r m", "K")),
            ("", None, ("MDL",)),
            ("DML", STYLES["dml"], ("r m",)),
            ("CRB", STYLES["crb"], ("r m",)),
        ),
    )
    for row in report["rows"]:
        learned, classic, crb = row["methods"]["learned"], row["methods"]["classic"], row["crb"]
        dml = row["methods"].get("dml", {})
        snr = f"{row['snr_db']:g}"
        angle.add_row(
            snr, *(short(learned[k]) for k in ANGLE_CELLS), *(short(classic[k]) for k in ANGLE_CELLS),
            *(short(dml.get(k)) for k in ANGLE_CELLS), short(crb["angle_rmse_deg"]),
        )  # fmt: skip
        rng.add_row(
            snr, short(learned["range_rmse_m"]), f"{learned['k_accuracy'][order]:.2f}",
            short(learned["nmse_db"]), f"{row['mean_beta']:.2f}", short(classic["range_rmse_m"]),
            f"{classic['k_accuracy']['eigengap']:.2f}",
            f"{classic['k_accuracy']['mdl']:.2f}",  # MDL K̂ comes from the snapshots for every data method
            short(dml.get("range_rmse_m")), short(crb["range_rmse_m"]),
        )  # fmt: skip
    return angle, rng


def evaluate_command(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="Checkpoint written by training (core.train).")],
    snr_grid: SnrGrid = DEFAULT_GRID,
    snapshots: Annotated[int | None, typer.Option("--snapshots", help="L; default: the checkpoint's.")] = None,
    sources: Annotated[int | None, typer.Option("--sources", help="K in every scene; default U{1..K_max}.")] = None,
    scenes: Scenes = EVAL_DEFAULTS.n_scenes,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the fresh evaluation scenes.")] = EVAL_DEFAULTS.seed,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the report (documented schema).")] = None,
    plot_path: Annotated[
        Path | None, typer.Option("--plot", help="Write RMSE-vs-SNR plots: PNG, or SVG / PDF by the suffix.")
    ] = None,
    device: Annotated[Device, typer.Option("--device", help="auto (cuda if present), cpu or cuda.")] = Device.auto,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            min=1,
            max=MAX_THREADS,
            help="CPU threads (torch.set_num_threads); default torch's, one per core. Beside a running study, 1 "
            "keeps the two from slowing each other several-fold.",
        ),
    ] = None,
) -> None:
    """Evaluate a trained checkpoint: learned MUSIC (or DML) vs classic MUSIC, classic DML, the oracle and the CRB.

    Ctrl-C, SIGTERM or a closed terminal stops it (exit 130); the report and the plot are written only at the end,
    so a stopped evaluation leaves none behind."""
    cfg = EvalConfig(
        snr_grid_db=parse_snr_grid(snr_grid), n_scenes=scenes, snapshots=snapshots, num_sources=sources, seed=seed
    )
    dev = resolve_device(device.value)  # cuda without a CUDA device: a one-line ConfigError
    if threads is not None:
        torch.set_num_threads(threads)
    if plot_path is not None:
        plot_format(plot_path)
    model, exp = load_for_evaluation(checkpoint, cfg)  # every input error before the progress bar starts
    for target in (json_path, plot_path):  # fail before the long evaluation, not after it
        if target is not None:
            prepare_output(target)  # out/ is created on demand (hpo.paths), once the other inputs are good
    stopped = "nothing written (the report and plot come at the end); run the same command again"
    with stopping_with(stopped), bar() as progress:  # Ctrl-C, SIGTERM and a closed terminal (SIGHUP) alike
        task = progress.add_task("evaluating", total=len(cfg.snr_grid_db))
        report = evaluate(
            model.to(dev), exp.scenario, exp.pipeline, cfg, device=dev, on_point=lambda i, snr: progress.advance(task)
        )
    report["checkpoint"] = str(checkpoint)
    show_report(report)
    if json_path is not None:
        json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False))
        say(f"report written to {json_path}", out)
    if plot_path is not None:
        plot_report(report, plot_path)
        say(f"plot written to {plot_path}", out)


def show_report(report: dict) -> None:
    """The report's two tables, its notes and its loc_gain lines on stdout."""
    for table in report_tables(report):
        console_of_width(TABLE_WIDTH).print(table)
    for line in report_notes(report):
        say(line, out)
    if report["loc_gain_db"] is not None:
        reference = LABELS[report.get("loc_gain_reference", "classic")]
        say(
            f"{metric_label('loc_gain_db')}, classic = {reference}: {report['loc_gain_db']:+.2f} on these fresh scenes",
            out,
        )
    if report.get("loc_gain_vs_best_classic_db") is not None:
        say(
            f"the same against the better of classic MUSIC and DML per point: "
            f"{report['loc_gain_vs_best_classic_db']:+.2f} dB",
            out,
        )
