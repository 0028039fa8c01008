"""Ratios of one checkpoint's `hpo evaluate` reports over several scene seeds, as the results tables give them.

    hpo evaluate --checkpoint W.pt --seed 7000001 --json e1.json   (and 7000002, 7000003, ...)
    python benchmarks/report_ratios.py e1.json e2.json e3.json [--markdown]

Per SNR point, the range over the reports (the scene seeds) of: the learned pipeline's clipped angle RMSE, range
RMSE and gross-error rate over classic MUSIC's and over the better classic method's (classic MUSIC or DML,
whichever has the lower value of that metric at that point), the plain angle RMSE over classic's, the gross-error
rates themselves, and each report's loc_gain_db against classic MUSIC, classic DML and the better of the two
(core.evaluation.loc_gain_db of the report's rows, the function `hpo evaluate` uses). The numbers are the reports'.
With --pooled each ratio cell adds, in brackets, the ratio over all the reports' scenes pooled (RMSEs from the mean
of the squares, gross-error rates from the mean of the rates: every report holds the same number of scenes).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from core.evaluation import EvalConfig, check_schema, loc_gain_db

METRICS = (  # (row label, the method metric)
    ("clipped angle", "angle_rmse_clipped_deg"),
    ("range", "range_rmse_m"),
    ("gross errors", "gross_rate"),
    ("plain angle", "angle_rmse_deg"),
)


FIRST_SEED = EvalConfig.model_fields["seed"].default  # hpo evaluate's scene seed; further scene draws count up


def add_sweep_options(ap: argparse.ArgumentParser, snr: str) -> None:
    """The options of a script that sweeps fresh scenes: --scenes, --seeds, --snr (default `snr`), --threads and
    --markdown."""
    ap.add_argument("--scenes", type=int, default=500, help="scenes per SNR point and seed (default 500)")
    ap.add_argument("--seeds", type=int, default=3, help=f"scene draws, seeds {FIRST_SEED} and up (default 3)")
    ap.add_argument("--snr", default=snr, help=f"SNR points, dB, comma-separated (default {snr})")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    ap.add_argument("--markdown", action="store_true", help="print the tables as Markdown")


def ratio(a, b) -> float:
    if a is None or b is None:
        return math.nan
    if b == 0:
        return 1.0 if a == 0 else math.inf
    return a / b


def span(values: list[float], digits: int = 3) -> str:
    """min–max of the finite values at `digits` decimals, one figure where both read the same."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "–"
    lo, hi = min(finite), max(finite)
    return f"{lo:.{digits}f}" if f"{lo:.{digits}f}" == f"{hi:.{digits}f}" else f"{lo:.{digits}f}–{hi:.{digits}f}"


def format_table(snrs: list[str], rows: list[tuple[str, list[str]]], markdown: bool) -> str:
    """(label, one cell per SNR point) rows under an "SNR dB" header, as Markdown or aligned plain text."""
    if markdown:
        lines = ["| SNR dB | " + " | ".join(snrs) + " |", "|---|" + "---|" * len(snrs)]
        return "\n".join(lines + [f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows])
    width = max(len(label) for label, _ in rows)
    lines = [f"{'SNR dB':<{width}}  " + "  ".join(f"{s:>11}" for s in snrs)]
    return "\n".join(lines + [f"{label:<{width}}  " + "  ".join(f"{c:>11}" for c in cells) for label, cells in rows])


def have_dml(reports: list[dict]) -> bool:
    """Whether every report has classic DML's results."""
    return all("dml" in r["rows"][0]["methods"] for r in reports)


def pool(key: str, values: list[float | None]) -> float | None:
    """The metric `key` over the scenes of several equal-sized reports: a rate's mean, an RMSE's root mean square."""
    if any(v is None for v in values):
        return None
    if key == "gross_rate":
        return sum(values) / len(values)
    return math.sqrt(sum(v * v for v in values) / len(values))


def tables(reports: list[dict], pooled: bool = False) -> list[tuple[str, list[str]]]:
    """(label, one cell per SNR point) rows; pooled adds the pooled ratio to each ratio cell (module docstring)."""
    snrs = [row["snr_db"] for row in reports[0]["rows"]]
    rows = []
    for label, key in METRICS:
        for against in ("classic", "best") if have_dml(reports) and key != "angle_rmse_deg" else ("classic",):
            cells = []
            for i in range(len(snrs)):
                learned, refs = [], []
                for report in reports:
                    m = report["rows"][i]["methods"]
                    ref = m["classic"][key]
                    if against == "best" and m["dml"][key] is not None and ref is not None:
                        ref = min(ref, m["dml"][key])
                    learned.append(m["learned"][key])
                    refs.append(ref)
                cell = span([ratio(a, b) for a, b in zip(learned, refs, strict=True)])
                if pooled:
                    cell += f" [{ratio(pool(key, learned), pool(key, refs)):.3f}]"
                cells.append(cell)
            who = "classic MUSIC" if against == "classic" else "the better of classic MUSIC and DML"
            rows.append((f"{label} ÷ {who}", cells))
    for name in ("learned", "classic", "dml") if have_dml(reports) else ("learned", "classic"):
        cells = [span([r["rows"][i]["methods"][name]["gross_rate"] for r in reports]) for i in range(len(snrs))]
        rows.append((f"gross-error rate, {name}", cells))
    cells = [span([r["rows"][i]["mean_beta"] for r in reports], 2) for i in range(len(snrs))]
    rows.append(("mean β", cells))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", nargs="+", type=Path, help="hpo evaluate --json reports of one checkpoint")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--pooled", action="store_true", help="add each ratio over all the reports' scenes pooled")
    args = parser.parse_args()
    reports = [json.loads(p.read_text()) for p in args.reports]
    for report in reports:
        check_schema(report)
    snrs = [f"{row['snr_db']:g}" for row in reports[0]["rows"]]
    rows = tables(reports, args.pooled)
    print(format_table(snrs, rows, args.markdown))
    music = [loc_gain_db(r["rows"], ("classic",)) for r in reports]
    dml = [loc_gain_db(r["rows"], ("dml",)) for r in reports] if have_dml(reports) else [math.nan]
    best = [r.get("loc_gain_vs_best_classic_db") for r in reports]
    print(f"loc_gain_db vs classic MUSIC: {span(music, 2)} dB; vs classic DML: {span(dml, 2)} dB; "
          f"vs the better of the two: {span([g if g is not None else math.nan for g in best], 2)} dB "
          f"({len(reports)} scene seed(s), {reports[0]['config']['n_scenes']} scenes per point)")  # fmt: skip


if __name__ == "__main__":
    main()
