"""`hpo run --gpus`: parsing and checking the indices, round-robin placement, one-line errors that write nothing,
the placement in each trial's provenance, and the same assignment in docker-compose.gpu.yml."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch
from typer.testing import CliRunner

from core.errors import CovblendError
from hpo.cli import app
from hpo.run.gpus import assign, check_gpus, parse_gpus, requested_gpus, summary
from hpo.run.workers import run_parallel
from hpo.storage import open_storage
from hpo.study.create import create_or_join
from hpo.study.spec import load_spec
from tests.hpo.run.test_compose import _config, _project

HPO = str(Path(sys.executable).parent / "hpo")


def test_gpus_parse_as_a_comma_separated_list():
    assert parse_gpus("0,1") == (0, 1)
    assert parse_gpus(" 3 , 0 ") == (3, 0)


@pytest.mark.parametrize("text", ["-1", "x", "0,,1", "1.5", "", "0;1", "²"])
def test_gpus_that_are_not_indices_name_the_value(text):
    with pytest.raises(CovblendError, match=r"--gpus must be comma-separated device indices >= 0.*--gpus="):
        parse_gpus(text)


def test_a_gpu_listed_twice_is_refused():
    with pytest.raises(CovblendError, match="lists device 1 twice"):
        parse_gpus("1,0,1")


def test_without_gpus_any_request_is_refused():
    with pytest.raises(CovblendError, match="torch sees no CUDA device"):
        check_gpus((0,), 0)


def test_a_gpu_beyond_the_count_is_named():
    check_gpus((0, 1), 2)
    with pytest.raises(CovblendError, match=r"names device 2, but torch sees 2 \(indices 0\.\.1\)"):
        check_gpus((0, 2), 2)


def test_no_gpus_asked_means_no_gpu_check():
    def never() -> int:
        raise AssertionError("device_count must not be called")

    assert requested_gpus(None, "auto", never) == ()
    assert requested_gpus("", "cuda", never) == ()


def test_gpus_with_a_cpu_spec_are_refused():
    with pytest.raises(CovblendError, match="train.device to be auto or cuda"):
        requested_gpus("0", "cpu", lambda: 1)


def test_requested_gpus_are_parsed_and_checked():
    assert requested_gpus("1,0", "auto", lambda: 2) == (1, 0)
    with pytest.raises(CovblendError, match="names device 2"):
        requested_gpus("2", "cuda", lambda: 2)


def test_workers_take_the_gpus_round_robin():
    devices = assign(8, (0, 1))
    assert devices == ("0", "1", "0", "1", "0", "1", "0", "1")
    assert summary(devices) == "gpu0×4 gpu1×4"


def test_several_workers_share_one_gpu():
    assert assign(3, (2,)) == ("2", "2", "2")


def test_fewer_workers_than_gpus_leave_the_last_ones_idle():
    assert assign(2, (0, 1, 2)) == ("0", "1")


def test_indices_refer_into_the_parents_own_visible_devices():
    assert assign(3, (1, 0), parent_visible="4,7") == ("7", "4", "7")


def _run(args: list[str], env: dict | None = None):
    return CliRunner().invoke(app, args, env=env)


@pytest.mark.parametrize("how", ["option", "environment"])
def test_gpus_torch_does_not_see_are_exit_2_one_line_and_write_nothing(how, tiny_spec, tmp_path):
    missing = str(torch.cuda.device_count())  # one past the last GPU: "no CUDA device" on a CPU-only host
    db = tmp_path / "hpo.db"
    args = ["run", "--study", str(tiny_spec), "--storage", f"sqlite:///{db}"]
    result = _run([*args, "--gpus", missing] if how == "option" else args, env={"HPO_GPUS": missing})
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --gpus=") and "Traceback" not in result.stderr
    assert not db.exists()


def test_malformed_gpus_are_exit_2_before_the_database(tiny_spec, tmp_path):
    db = tmp_path / "hpo.db"
    result = _run(["run", "--study", str(tiny_spec), "--storage", f"sqlite:///{db}", "--gpus", "0,0"])
    assert result.exit_code == 2 and "lists device 0 twice" in result.stderr
    assert not db.exists()


@pytest.mark.slow
def test_each_trial_records_the_gpu_its_worker_was_given(tiny_spec, tmp_path, monkeypatch):
    """Two workers share GPU 0. Without a GPU they train on the CPU, but CUDA_VISIBLE_DEVICES is still theirs."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    spec = load_spec(str(tiny_spec))
    study, _ = create_or_join(spec, open_storage(url))
    run_parallel(spec, study, url, 3, 2, gpus=(0,))
    trials = optuna.load_study(study_name="tiny", storage=url).trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    device = "cuda" if torch.cuda.is_available() else "cpu"
    assert {(t.user_attrs["cuda_visible_devices"], t.user_attrs["device"]) for t in trials} == {("0", device)}


@pytest.mark.cuda
def test_workers_sharing_a_gpu_train_on_it_and_record_its_name(tiny_spec, tmp_path):
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    cmd = [HPO, "run", "--study", str(tiny_spec), "--storage", url, "--workers", "2", "--gpus", "0", "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    trials = optuna.load_study(study_name="tiny", storage=url).trials
    attrs = {(t.user_attrs["device"], t.user_attrs["cuda_visible_devices"], t.user_attrs["gpu_name"]) for t in trials}
    assert attrs == {("cuda", "0", torch.cuda.get_device_name(0))}


def test_the_gpu_compose_file_runs_the_workers_with_their_gpus(tmp_path):
    folder = _project(tmp_path, HPO_GPUS="0,1", GPU_WORKERS="8")
    done = _config(folder, "docker-compose.yml", "docker-compose.gpu.yml", fmt="json")
    assert done.returncode == 0, done.stderr
    worker = json.loads(done.stdout)["services"]["worker"]
    command = worker["command"]
    assert command[:2] == ["run", "--study"] and command[command.index("--workers") + 1] == "8"
    assert assign(8, parse_gpus(worker["environment"]["HPO_GPUS"])) == ("0", "1") * 4
    assert worker["deploy"]["replicas"] == 1  # replicas are identical: the GPUs are shared out inside one
