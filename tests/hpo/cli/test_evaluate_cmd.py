import json
from pathlib import Path

import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from core.evaluation import check_schema
from core.experiment import ExperimentConfig, TrainConfig
from core.models import ModelConfig
from core.train import save_checkpoint, train
from hpo.cli import app
from hpo.cli.evaluate import TABLE_WIDTH, report_notes, report_tables
from hpo.results.checkpoint_eval import LABELS, report_figure

runner = CliRunner()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A checkpoint from a short real training run (one epoch of a small MLP, about two seconds)."""
    cfg = ExperimentConfig(
        model=ModelConfig(arch="mlp", width=32, depth=1),
        train=TrainConfig(epochs=1, n_train=128, n_val=32, batch_size=64, threads=1, device="cpu"),
    )
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_checkpoint(path, train(cfg), cfg)
    return path


@pytest.fixture(scope="module")
def evaluated(checkpoint, tmp_path_factory):
    """`hpo evaluate --json --plot` run once: (CLI result, report JSON path, PNG path)."""
    out = tmp_path_factory.mktemp("eval")
    out_json, out_png = out / "report.json", out / "rmse.png"
    args = ["evaluate", "--checkpoint", str(checkpoint), "--snr-grid", "-10,10", "--scenes", "30"]
    return runner.invoke(app, [*args, "--json", str(out_json), "--plot", str(out_png)]), out_json, out_png


def test_evaluate_writes_a_schema_json_and_a_png(evaluated):
    result, out_json, out_png = evaluated
    assert result.exit_code == 0, result.stderr
    report = json.loads(out_json.read_text())
    check_schema(report)
    assert [row["snr_db"] for row in report["rows"]] == [-10.0, 10.0]
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_printed_table_fits_100_columns_with_nothing_cut(evaluated):
    result, _, _ = evaluated
    table = result.stdout[: result.stdout.index("learned = ")]
    assert max(len(line) for line in table.splitlines()) <= TABLE_WIDTH
    assert "…" not in table and "classic" in table and "β" in table and "CRB" in table and "gross" in table


def test_the_method_names_and_the_snr_definition_are_printed_once_each_on_a_line_of_their_own(evaluated):
    result, out_json, _ = evaluated
    lines = result.stdout.splitlines()
    for note in report_notes(json.loads(out_json.read_text())):
        assert lines.count(note) == 1  # whole: as the tables' captions they wrapped mid-formula, twice


def test_the_tables_rendered_at_width_100_show_every_cell_whole(evaluated):
    _, out_json, _ = evaluated
    report = json.loads(out_json.read_text())
    angle, rng = report_tables(report)
    rows = []
    for table in (angle, rng):
        console = Console(width=100, record=True)
        console.print(table)
        text = console.export_text()
        assert "…" not in text
        rows.append(next(line for line in text.splitlines() if line.split()[:1] == ["10"]).split())
    classic = report["rows"][1]["methods"]["classic"]
    assert f"{classic['angle_rmse_deg']:.3g}" in rows[0] and f"{classic['gross_rate']:.3g}" in rows[0]
    assert f"{classic['angle_rmse_clipped_deg']:.3g}" in rows[0]
    assert f"{report['rows'][1]['mean_beta']:.2f}" in rows[1]


def test_the_learned_order_column_and_the_caption_follow_the_pipelines_settings(evaluated):
    _, out_json, _ = evaluated
    report = json.loads(out_json.read_text())
    row = report["rows"][1]["methods"]["learned"]
    row["k_accuracy"] = {"eigengap": 0.11, "mdl": 0.99}
    report["pipeline"] |= {"estimator": "dml", "order": "mdl"}
    _, rng = report_tables(report)
    console = Console(width=100, record=True)
    console.print(rng)
    text = console.export_text()
    assert "0.99" in next(line for line in text.splitlines() if line.split()[:1] == ["10"]).split()
    assert "learned by its mdl rule" in " ".join(text.split())
    assert report_notes(report)[0].startswith("learned = DML on")


def test_the_plot_keeps_the_oracle_off_the_rmse_axes(evaluated):
    _, out_json, _ = evaluated
    report = json.loads(out_json.read_text())
    fig = report_figure(report)
    angle, rng, gross = fig.axes
    labels = {line.get_label() for line in angle.get_lines()}
    clipped = {f"{LABELS[name]}, clipped" for name in ("learned", "classic", "dml")}
    methods = {LABELS[name] for name in ("learned", "classic", "dml", "music_samp")}
    assert labels == {*methods, "stochastic CRB", *clipped}
    assert {line.get_label() for line in gross.get_lines()} == {LABELS[n] for n in ("learned", "classic", "dml")}
    oracle = max(row["methods"]["oracle"]["angle_rmse_deg"] for row in report["rows"])
    classic = min(row["methods"]["classic"]["angle_rmse_deg"] for row in report["rows"])
    assert oracle < angle.get_ylim()[0] < classic  # the axes stop above the oracle, below the baseline
    assert any("oracle" in t.get_text() for t in fig.texts)  # and the caption says it was left out


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--snr-grid", "-10,ten"], "--snr-grid"),
        (["--sources", "9"], "num_sources"),
        (["--scenes", "0"], "n_scenes"),
        (["--device", "tpu"], "--device"),
        (["--threads", "0"], "--threads"),
        (["--plot", "out.xyz"], "must end in .png, .svg, .pdf, got 'out.xyz'"),  # before the evaluation, not after
        (["--seed", "-5"], "seed must be >= 0"),
        (["--seed", str(2**64)], f"seed must be <= {2**64 - 1}"),  # torch's generator raised an overflow
        (["--scenes", "100001"], "n_scenes must be <= 100000"),
        (["--snapshots", "100000000"], "n_scenes × snapshots must be <= 16,000,000"),  # not the allocator's error
    ],
)
def test_bad_options_are_one_line_errors_with_exit_code_2(checkpoint, extra, message):
    result = runner.invoke(app, ["evaluate", "--checkpoint", str(checkpoint), *extra])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
@pytest.mark.parametrize("option", ["--json", "--plot"])
def test_a_full_disk_is_a_one_line_error_with_exit_code_1(checkpoint, option):
    # /dev/full takes the open and fails the write (ENOSPC); matplotlib used to drop that error and say "written"
    args = ["evaluate", "--checkpoint", str(checkpoint), "--snr-grid", "10", "--scenes", "4", option, "/dev/full"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert result.stderr == "error: No space left on device\n" and "written" not in result.stdout


def test_threads_sets_the_torch_threads_the_evaluation_runs_on(checkpoint, tmp_path):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        args = ["evaluate", "--checkpoint", str(checkpoint), "--snr-grid", "10", "--scenes", "4", "--threads", "1"]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.stderr
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_missing_checkpoint_is_a_one_line_error(tmp_path):
    result = runner.invoke(app, ["evaluate", "--checkpoint", str(tmp_path / "nope.pt")])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: checkpoint not found: {tmp_path / 'nope.pt'}"


@pytest.mark.skipif(torch.cuda.is_available(), reason="asks for CUDA where there is none")
def test_device_cuda_without_a_gpu_is_a_one_line_error(checkpoint):
    result = runner.invoke(app, ["evaluate", "--checkpoint", str(checkpoint), "--device", "cuda"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: device 'cuda' was asked for, but torch sees no CUDA device"
