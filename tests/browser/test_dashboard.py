"""The dashboard and the HTML report in a real browser (Playwright driving Debian's headless Chromium).

One small study is run through `hpo run` (one trial forced to NaN, then ordinary ones), `hpo dashboard` serves
it on a free port, and the pages a person looks at are checked and photographed under test-output/browser/.
A second, `multi` study (val NMSE and loc_gain_db, pruned by mo-asha) shows its Pareto front and named metrics.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from hpo.cli import app
from hpo.study.ranking import best_trial
from tests.conftest import free_port, wait_for

pytestmark = pytest.mark.slow

HPO = str(Path(sys.executable).parent / "hpo")
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "browser"
DOCS = Path(__file__).resolve().parents[2] / "docs"  # the README's pictures, photographed from the current code
STUDY = "browser-see"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The project's own objective and blend, as `quick` runs them, so that the README's picture shows what a study shows:
# loc_gain_db, and a learned curve that falls back to classic MUSIC where a 2-epoch model does not help.
SPEC = """
[study]
objective = "localisation"
n_trials = 4
health_threshold = 0.0
[data]
n_train = 128
n_val = 64
[train]
epochs = 2
threads = 1
[localisation]
n_scenes = 16
[calibration]
n_scenes = 128
[fixed]
blend = "calibrated"
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
MULTI = "browser-pareto"
# Two objectives, the metric every epoch so mo-asha meets its rungs at 1, 2 and 4 epochs, and an lr range wide
# enough (random sampler) that some trials fall far behind the front and are pruned: ~25 s on a quiet core.
MULTI_SPEC = """
[study]
objective = "multi"
n_trials = 10
health_threshold = 0.0
[data]
n_train = 256
n_val = 64
[train]
epochs = 4
threads = 1
[localisation]
n_scenes = 16
every = 1
[fixed]
arch = "mlp"
width = 32
depth = 2
batch_size = 64
[search.lr]
type = "float"
low = 1e-4
high = 3e-2
log = true
[search.beta]
type = "float"
low = 0.1
high = 0.6
[sampler]
name = "random"
seed = 0
[pruner]
name = "mo-asha"
min_resource = 1
reduction_factor = 2
n_startup_trials = 3
dominated_fraction = 0.5
"""


def invoke(*args: str) -> None:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output


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
def multi_dir(tmp_path_factory) -> Path:
    """A SQLite `multi` study of 10 trials, some pruned by mo-asha, with a front of at least two trials."""
    root = tmp_path_factory.mktemp("pareto")
    (root / "multi.toml").write_text(MULTI_SPEC)
    invoke(
        "run",
        "--study",
        str(root / "multi.toml"),
        "--n-trials",
        "10",
        "--json",
        "--study-name",
        MULTI,
        "--storage",
        f"sqlite:///{root / 'hpo.db'}",
        "--artifacts",
        str(root / "art"),
    )
    study = load(root, MULTI)
    # What the browser tests rely on; a failure here is about the study, not the dashboard.
    assert any(t.state == TrialState.PRUNED for t in study.trials)
    assert len(study.best_trials) >= 2
    return root


@pytest.fixture(scope="module")
def dashboard(study_dir):
    """Base URL of `hpo dashboard` serving the study and its artifact store; stopped afterwards."""
    yield from serve(study_dir)


@pytest.fixture(scope="module")
def multi_dashboard(multi_dir):
    """Base URL of `hpo dashboard` serving the `multi` study; stopped afterwards."""
    yield from serve(multi_dir)


def serve(root: Path):
    """Start `hpo dashboard` on root/hpo.db and root/art, yield its base URL once it answers, then stop it."""
    port = free_port()
    args = [HPO, "dashboard", "--storage", f"sqlite:///{root / 'hpo.db'}", "--artifacts", str(root / "art")]
    proc = subprocess.Popen([*args, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"hpo dashboard ended: {proc.stderr.read().decode()[-2000:]}")
        try:
            urllib.request.urlopen(f"{base}/api/studies", timeout=2).close()
        except OSError:
            return False
        return True

    try:
        wait_for(answers, timeout=60, every=0.3, what="hpo dashboard to answer")
    except BaseException:
        proc.kill()
        raise
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


def load(root: Path, name: str = STUDY) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{root / 'hpo.db'}")


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
    page.get_by_text("loc_gain_db").first.wait_for()  # the history names the search's objective
    page.wait_for_timeout(500)  # plotly animates its first draw
    top = {"x": 0, "y": 0, "width": 1400, "height": 1720}  # history, importances and the saved figures
    page.screenshot(path=DOCS / "dashboard.png", full_page=True, clip=top)


def test_report_opens_offline_and_its_plots_render(page, study_dir):
    page.errors.clear()
    page.goto((study_dir / "report.html").as_uri())
    page.wait_for_function("document.querySelectorAll('.plotly-graph-div .main-svg').length >= 6", timeout=30_000)
    assert page.locator(".plotly-graph-div").count() == 6
    assert page.locator("table tr").count() >= 2  # header and at least one top trial
    page.screenshot(path=SHOTS / "report.png", full_page=True)
    assert page.errors == []


def test_multi_study_page_names_its_metrics(multi_dashboard, page, multi_dir):
    study = load(multi_dir, MULTI)
    page.goto(f"{multi_dashboard}/dashboard/studies/{study._study_id}")
    page.get_by_text("Pareto Front", exact=True).first.wait_for()
    page.get_by_text("val_nmse_db").first.wait_for()
    page.get_by_text("loc_gain_db").first.wait_for()
    assert "Objective 0" not in page.content()  # the DOM, plots' SVG text included


def test_multi_study_page_draws_the_pareto_front(multi_dashboard, page, multi_dir):
    study = load(multi_dir, MULTI)
    page.goto(f"{multi_dashboard}/dashboard/studies/{study._study_id}")
    graph = page.locator("#graph-pareto-front")
    graph.locator(".scatterlayer path.point").first.wait_for()
    # optuna-dashboard's front trace is the one whose hover names a "Best Trial"; the rest are dominated trials.
    front = page.evaluate(
        """() => document.getElementById("graph-pareto-front").data
            .filter(t => t.hovertemplate.includes("Best Trial"))
            .flatMap(t => t.x.map((x, i) => [x, t.y[i]]))"""
    )
    assert sorted(front) == sorted(t.values for t in study.best_trials)
    n_complete = sum(t.state == TrialState.COMPLETE for t in study.trials)
    assert graph.locator(".scatterlayer path.point").count() == n_complete
    page.wait_for_timeout(500)  # plotly animates its first draw
    card = page.locator(".MuiCard-root", has=graph)
    card.screenshot(path=DOCS / "pareto.png")


def test_multi_trial_page_shows_health_and_fits_the_window(multi_dashboard, page, multi_dir):
    study = load(multi_dir, MULTI)
    trial = study.best_trials[0]
    page.goto(f"{multi_dashboard}/dashboard/studies/{study._study_id}/trials?numbers={trial.number}")
    for key in ("eigengap_health_final", "feasible"):  # one "<key> <value>" line each in User Attributes
        page.get_by_text(f"{key} {trial.user_attrs[key]}", exact=True).wait_for()
    page.screenshot(path=SHOTS / "multi-trial.png", full_page=True)
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the trial page is {width[0]} px wide in a {width[1]} px window"
