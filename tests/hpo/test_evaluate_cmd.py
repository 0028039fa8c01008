import json

import pytest
import torch
from typer.testing import CliRunner

from core.evaluation import check_schema
from core.experiment import ExperimentConfig, TrainConfig
from core.model import ModelConfig
from core.train import save_checkpoint, train
from hpo.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A checkpoint from a short real training run (one epoch of a small MLP, about two seconds)."""
    cfg = ExperimentConfig(
        model=ModelConfig(arch="mlp", width=32, depth=1),
        train=TrainConfig(epochs=1, n_train=128, n_val=32, batch_size=64, threads=2, device="cpu"),
    )
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_checkpoint(path, train(cfg), cfg)
    return path


def test_evaluate_writes_a_schema_json_and_a_png(checkpoint, tmp_path):
    out_json, out_png = tmp_path / "report.json", tmp_path / "rmse.png"
    args = ["evaluate", "--checkpoint", str(checkpoint), "--snr-grid", "-10,10", "--scenes", "30"]
    result = runner.invoke(app, [*args, "--json", str(out_json), "--plot", str(out_png)])
    assert result.exit_code == 0, result.stderr
    report = json.loads(out_json.read_text())
    check_schema(report)
    assert [row["snr_db"] for row in report["rows"]] == [-10.0, 10.0]
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--snr-grid", "-10,ten"], "--snr-grid"),
        (["--sources", "9"], "num_sources"),
        (["--scenes", "0"], "n_scenes"),
        (["--device", "tpu"], "--device"),
    ],
)
def test_bad_options_are_one_line_errors_with_exit_code_2(checkpoint, extra, message):
    result = runner.invoke(app, ["evaluate", "--checkpoint", str(checkpoint), *extra])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr and "Traceback" not in result.stderr


def test_missing_checkpoint_is_a_one_line_error(tmp_path):
    result = runner.invoke(app, ["evaluate", "--checkpoint", str(tmp_path / "nope.pt")])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: checkpoint not found: {tmp_path / 'nope.pt'}"


@pytest.mark.skipif(torch.cuda.is_available(), reason="asks for CUDA where there is none")
def test_device_cuda_without_a_gpu_is_a_one_line_error(checkpoint):
    result = runner.invoke(app, ["evaluate", "--checkpoint", str(checkpoint), "--device", "cuda"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: device 'cuda' was asked for, but torch sees no CUDA device"
