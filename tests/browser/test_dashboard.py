"""The dashboard and the HTML report in a real browser (Playwright driving Debian's headless Chromium).

One small study is run through `hpo run` (one trial forced to NaN, then ordinary ones), `hpo dashboard` serves
it on a free port, and the pages a person looks at are checked and photographed under test-output/browser/.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from hpo.artifacts import best_trial
from hpo.cli import app

pytestmark = pytest.mark.slow

HPO = str(Path(sys.executable).parent / "hpo")
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "browser"
STUDY = "browser-see"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SPEC = """
[study]
n_trials = 4
health_threshold = 0.0
[data]
n_train = 128
n_val = 64
[train]
epochs = 2
threads = 1
[fixed]
arch = "mlp"
width = 32
depth = 2
batch_size = 64
{lr}
[search.beta]
type = "float"
low = 0.2
high = 0.4
[sampler]
name = "random"
seed = 0
[pruner]
name = "none"
"""
SEARCH_LR = '[search.lr]\ntype = "float"\nlow = 1e-3\nhigh = 1e-2\nlog = true'


def invoke(*args: str) -> None:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory) -> Path:
    """A SQLite study of one NaN-pruned trial (lr = 1e30 overflows the weights) and three complete ones."""
    root = tmp_path_factory.mktemp("see")
    (root / "nan.toml").write_text(SPEC.format(lr="lr = 1e30"))
    (root / "ok.toml").write_text(SPEC.format(lr="").replace("[search.beta]", SEARCH_LR + "\n[search.beta]"))
    common = ("--study-name", STUDY, "--storage", f"sqlite:///{root / 'hpo.db'}", "--artifacts", str(root / "art"))
    invoke("run", "--study", str(root / "nan.toml"), "--n-trials", "1", "--json", *common)
    invoke("run", "--study", str(root / "ok.toml"), "--n-trials", "4", "--json", *common)
    invoke("report", "--study", STUDY, "--out", str(root / "report.html"), *common[2:])
    return root


@pytest.fixture(scope="module")
def dashboard(study_dir):
    """Base URL of `hpo dashboard` serving the study and its artifact store; stopped afterwards."""
    port = free_port()
    args = [HPO, "dashboard", "--storage", f"sqlite:///{study_dir / 'hpo.db'}", "--artifacts", str(study_dir / "art")]
    proc = subprocess.Popen([*args, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/studies", timeout=2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"hpo dashboard did not answer: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.3)
    yield base
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def page(chromium_executable):
    """A Chromium page that records console errors and uncaught exceptions in page.errors."""
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable, headless=True, args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.errors = []
        pg.on("console", lambda m: m.type == "error" and pg.errors.append(m.text))
        pg.on("pageerror", lambda e: pg.errors.append(str(e)))
        yield pg
        browser.close()


def load(study_dir: Path) -> optuna.Study:
    return optuna.load_study(study_name=STUDY, storage=f"sqlite:///{study_dir / 'hpo.db'}")


def test_dashboard_lists_the_study(dashboard, page):
    page.goto(f"{dashboard}/dashboard")
    page.get_by_text(STUDY).first.wait_for()
    page.screenshot(path=SHOTS / "studies.png")


def test_trials_page_shows_complete_and_pruned_trials_and_the_nan_prune_reason(dashboard, page, study_dir):
    study = load(study_dir)
    nan = next(t for t in study.trials if t.user_attrs.get("prune_reason") == "nonfinite_gradient")
    page.goto(f"{dashboard}/dashboard/studies/{study._study_id}/trials?numbers={nan.number}")
    page.get_by_text("Complete", exact=True).first.wait_for()
    page.get_by_text("Pruned", exact=True).first.wait_for()
    page.get_by_text("prune_reason").first.wait_for()
    page.get_by_text("nonfinite_gradient").first.wait_for()
    page.screenshot(path=SHOTS / "nan-trial.png", full_page=True)


def test_best_trial_lists_its_checkpoint_artifact(dashboard, page, study_dir):
    study = load(study_dir)
    best = best_trial(study)
    page.goto(f"{dashboard}/dashboard/studies/{study._study_id}/trials?numbers={best.number}")
    page.get_by_text(f"checkpoint-trial-{best.number}.pt").first.wait_for()
    page.screenshot(path=SHOTS / "best-trial.png", full_page=True)


def test_study_page_shows_the_saved_figures(dashboard, page, study_dir):
    page.goto(f"{dashboard}/dashboard/studies/{load(study_dir)._study_id}")
    page.get_by_text("RMSE vs SNR").first.wait_for()
    page.get_by_text("Why trials were pruned").first.wait_for()
    page.wait_for_timeout(500)  # plotly animates its first draw
    top = {"x": 0, "y": 0, "width": 1400, "height": 1720}  # history, importances and the saved figures
    page.screenshot(path=SHOTS / "dashboard.png", full_page=True, clip=top)


def test_report_opens_offline_and_its_plots_render(page, study_dir):
    page.errors.clear()
    page.goto((study_dir / "report.html").as_uri())
    page.wait_for_function("document.querySelectorAll('.plotly-graph-div .main-svg').length >= 6", timeout=30_000)
    assert page.locator(".plotly-graph-div").count() == 6
    assert page.locator("table tr").count() >= 2  # header and at least one top trial
    page.screenshot(path=SHOTS / "report.png", full_page=True)
    assert page.errors == []
