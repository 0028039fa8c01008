"""The `hpo` CLI through typer's CliRunner and real subprocesses: runs, reads, exports, and one-line errors."""

from __future__ import annotations

import csv
import gc
import io
import json
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from importlib.metadata import entry_points
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from hpo.cli import app, main
from hpo.cli.run import next_steps
from hpo.results import html_report
from tests.conftest import free_port, wait_for
from tests.hpo.conftest import TINY_SPEC, trials_training, write_spec

HPO = str(Path(sys.executable).parent / "hpo")
REPO = Path(__file__).resolve().parents[3]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_the_hpo_script_freezes_the_heap_before_the_interpreter_tears_it_down(monkeypatch):
    """The exit's last collection would walk every object torch made: 0.65 s of each process (process_cost.py)."""
    assert entry_points(group="console_scripts")["hpo"].value == "hpo.cli:main"
    monkeypatch.setattr(sys, "argv", ["hpo", "version"])
    gc.unfreeze()
    try:
        with pytest.raises(SystemExit) as done:
            main()
        assert done.value.code == 0 and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


@pytest.mark.parametrize("command", [c.name for c in app.registered_commands])
def test_each_help_paragraph_reads_on_one_line_where_the_terminal_is_wide(command):
    """Typer's rich help kept the docstring's own line breaks: "stops before its next" / "optimiser step"."""
    shown = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "500"})
    assert shown.exit_code == 0, shown.output
    lines = [line.strip(" │") for line in shown.stdout.splitlines()]
    doc = next(c.callback.__doc__ for c in app.registered_commands if c.name == command)
    for paragraph in doc.split("\n\n"):
        assert " ".join(paragraph.split()) in lines


def test_a_librarys_warning_is_one_warning_line(tmp_path, monkeypatch, capsys):
    """Optuna's "too few trials" for the report's importances came as Python's two lines: its file, then source."""
    url, out = f"sqlite:///{tmp_path / 'one.db'}", tmp_path / "report.html"
    lr = optuna.distributions.FloatDistribution(1e-3, 1e-2)
    trial = optuna.create_trial(params={"lr": 3e-3}, distributions={"lr": lr}, value=-1.0)
    optuna.create_study(study_name="one", storage=url).add_trial(trial)  # one trial: too few for importances
    monkeypatch.setattr(sys, "argv", ["hpo", "report", "--study", "one", "--storage", url, "--out", str(out)])
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # main() sets it for the rest of its process
    gc.unfreeze()
    try:
        with pytest.raises(SystemExit) as done:
            main()
    finally:
        gc.unfreeze()
    said = capsys.readouterr().err
    assert done.value.code == 0 and out.is_file()
    assert "warning: The number of trials is too small to compute importances" in said, said
    assert ".py:" not in said and "optuna_warn" not in said


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """A SQLite storage holding the tiny study with two trials, run through the CLI; shared by the module's
    tests, which only read it (a run on it again has no budget left)."""
    folder = tmp_path_factory.mktemp("ran")
    spec = write_spec(folder, "tiny", TINY_SPEC)
    url = f"sqlite:///{folder / 'hpo.db'}"
    args = ["--storage", url, "--n-trials", "2", "--artifacts", str(folder / "artifacts")]
    result = invoke("run", "--study", str(spec), *args)
    assert result.exit_code == 0, result.output
    return url


def test_run_shows_a_summary_with_the_best_params(ran, tiny_spec):
    result = invoke("run", "--study", str(tiny_spec), "--storage", ran, "--n-trials", "2")
    assert result.exit_code == 0
    assert "best trial #" in result.output and "lr" in result.output and "beta" in result.output


def test_run_says_what_it_does_after_the_trials_and_what_to_do_next(ran, tiny_spec):
    result = invoke("run", "--study", str(tiny_spec), "--storage", ran, "--n-trials", "2")
    assert result.exit_code == 0
    lines = [line.strip() for line in result.output.splitlines()]
    assert any(line.startswith("building the study figures: RMSE vs SNR") for line in lines)
    assert f"hpo dashboard --storage {ran}" in lines
    assert f"hpo best --study tiny --storage {ran} --download out/best.pt" in lines
    assert "hpo evaluate --checkpoint out/best.pt --json out/eval.json --plot out/eval.png" in lines
    assert f"hpo report --study tiny --storage {ran}" in lines


def test_next_steps_never_show_a_password_given_with_storage():
    url = "postgresql+psycopg://user:hunter2@db.example:5432/hpo"
    lines = next_steps("quick", url, url, None, has_best=True)
    assert not any("hunter2" in line for line in lines)
    assert "hpo dashboard --storage 'postgresql+psycopg://user:***@db.example:5432/hpo'" in lines
    assert "*** is the storage password" in lines[-1]


def test_next_steps_name_the_environment_variable_the_storage_came_from(monkeypatch):
    monkeypatch.setenv("HPO_STORAGE", "postgresql+psycopg://user:hunter2@db/hpo")
    lines = next_steps("my study", "postgresql+psycopg://user:hunter2@db/hpo", None, "arts", has_best=False)
    assert lines == [
        'hpo dashboard --storage "$HPO_STORAGE" --artifacts arts',
        """hpo report --study 'my study' --storage "$HPO_STORAGE" --artifacts arts""",
    ]


def test_best_heads_the_user_attrs_column_attribute(ran):
    result = invoke("best", "--study", "tiny", "--storage", ran)
    assert result.exit_code == 0
    attrs_table = result.output.split("user attrs", 1)[1]
    assert "attribute" in attrs_table and "parameter" not in attrs_table


def test_studies_lists_counts_and_best(ran):
    (row,) = json.loads(invoke("studies", "--storage", ran, "--json").output)
    assert row["study"] == "tiny" and row["complete"] == 2 and row["best"] is not None


def test_studies_off_a_terminal_prints_its_headers_whole(ran):
    shown = invoke("studies", "--storage", ran).stdout  # CliRunner is no terminal: Rich assumed 80 columns and cut
    assert all(h in shown for h in ("directions", "complete", "nan_pruned", "running")) and "…" not in shown


def test_best_json_has_params_and_user_attrs(ran):
    best = json.loads(invoke("best", "--study", "tiny", "--storage", ran, "--json").output)
    assert set(best["best"]["params"]) == {"lr", "beta"}
    assert best["feasible"] is True and "gain_db" in best["best"]["user_attrs"]


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_export_holds_every_trial_with_intermediate_values(ran, tmp_path, fmt):
    out = tmp_path / f"trials.{fmt}"
    assert invoke("export", "--study", "tiny", "--storage", ran, "--format", fmt, "--out", str(out)).exit_code == 0
    if fmt == "json":
        rows = json.loads(out.read_text())
        assert rows[0]["intermediate_values"] and "eigengap_health" in rows[0]["user_attrs"]
    else:
        rows = list(csv.DictReader(io.StringIO(out.read_text())))
        assert json.loads(rows[0]["intermediate_values"]) and "params_lr" in rows[0]
    assert [r["state"] for r in rows] == ["COMPLETE", "COMPLETE"]


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_export_to_stdout_is_the_file_with_one_final_newline(ran, tmp_path, fmt):
    out = tmp_path / f"trials.{fmt}"
    assert invoke("export", "--study", "tiny", "--storage", ran, "--format", fmt, "--out", str(out)).exit_code == 0
    shown = invoke("export", "--study", "tiny", "--storage", ran, "--format", fmt).stdout
    assert shown.rstrip("\n") == out.read_text().rstrip("\n") and shown.endswith("\n") and not shown.endswith("\n\n")


def test_a_reader_that_goes_away_ends_the_export_quietly(tmp_path):
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    study = optuna.create_study(study_name="many", storage=url)
    for i in range(100):  # well over the 8 KiB stdout buffer, so the write fails inside the command
        study.add_trial(optuna.trial.create_trial(value=float(i), user_attrs={f"gain@{s}": 0.0 for s in range(10)}))
    export = [HPO, "export", "--study", "many", "--storage", url]
    proc = subprocess.Popen(export, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # `hpo export | head`, with head gone
    err = proc.stderr.read().decode()
    assert proc.wait() == 1 and err == ""  # was "error: Broken pipe"


def test_export_out_dash_is_stdout_as_for_cat(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    optuna.create_study(study_name="empty", storage=url)
    monkeypatch.chdir(tmp_path)
    shown = invoke("export", "--study", "empty", "--storage", url, "--format", "csv", "--out", "-")
    assert shown.stdout == "number,state,datetime_start,datetime_complete,duration_s\n"
    assert not (tmp_path / "-").exists()  # was a file named "-"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["Ctrl-C", "SIGTERM"])
def test_a_stop_while_the_report_is_made_says_so_and_leaves_no_page(tmp_path, monkeypatch, signum):
    """Ctrl-C ended `hpo report` without a line and SIGTERM by the signal, although the report may evaluate the best
    trial for minutes; now both end it as they end `hpo evaluate`."""
    url, page = f"sqlite:///{tmp_path / 'hpo.db'}", tmp_path / "report.html"
    optuna.create_study(study_name="empty", storage=url)
    render = html_report.render

    def stopped_while_rendering(*args):
        os.kill(os.getpid(), signum)  # Python runs the handler before the next line: the stop lands mid-work
        return render(*args)

    def unanswered(got, frame):  # instead of SIGTERM's default, which would end this test process
        raise AssertionError(f"{signal.Signals(got).name} reached the test, not the command")

    monkeypatch.setattr(html_report, "render", stopped_while_rendering)
    before = signal.signal(signal.SIGTERM, unanswered)
    try:
        done = invoke("report", "--study", "empty", "--storage", url, "--out", str(page))
    finally:
        signal.signal(signal.SIGTERM, before)
    assert done.exit_code == 130, done.output
    assert "stopped: nothing written" in done.output
    assert list(tmp_path.iterdir()) == [tmp_path / "hpo.db"]  # no page


def test_a_study_without_trials_exports_a_csv_header(tmp_path):
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    optuna.create_study(study_name="empty", storage=url)
    shown = invoke("export", "--study", "empty", "--storage", url, "--format", "csv").stdout
    assert shown == "number,state,datetime_start,datetime_complete,duration_s\n"  # was two blank lines


def test_a_report_on_a_study_without_trials_says_only_what_it_wrote(tmp_path, caplog):
    url, page = f"sqlite:///{tmp_path / 'hpo.db'}", tmp_path / "report.html"
    optuna.create_study(study_name="empty", storage=url)
    optuna.logging.enable_propagation()  # Optuna's own handler writes to the stderr it saw first; caplog sees these
    try:
        assert invoke("report", "--study", "empty", "--storage", url, "--out", str(page)).exit_code == 0
    finally:
        optuna.logging.disable_propagation()
    assert not [r.message for r in caplog.records if r.levelno >= logging.WARNING]  # one per plot before
    assert "No complete trial yet." in page.read_text()


def test_a_run_whose_every_trial_failed_is_an_error(tiny_spec, tmp_path, monkeypatch):
    def cannot_allocate(self, cfg, on_epoch, on_step):  # what a spec sized beyond the machine did to every trial
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8000000000000 bytes")

    monkeypatch.setattr("hpo.study.objective.Objective.train", cannot_allocate)
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    result = invoke("run", "--study", str(tiny_spec), "--storage", url, "--n-trials", "2", "--json")
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: all 2 trials of this run failed") and "can't allocate memory" in line


def test_studies_shows_a_name_made_elsewhere_escaped(tmp_path):
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    for name in ("evil\u202etxt.exe", "two\nlines", "[bold]marked[/bold]"):  # as another tool may create them
        optuna.create_study(study_name=name, storage=url)
    result = invoke("studies", "--storage", url)
    assert result.exit_code == 0, result.output
    # Escaped names show, the raw characters never.
    assert "\u202e" not in result.stdout and "evil\\" in result.stdout and "two\\n" in result.stdout
    assert "[bold" in result.stdout  # shown, not read as markup


def test_a_study_name_that_reads_as_markup_prints_as_it_is(tiny_spec, tmp_path):
    url, name = f"sqlite:///{tmp_path / 'hpo.db'}", "x[/]y[red]z"  # "[/]" made Rich raise; "[red]" was dropped
    args = ["--storage", url, "--artifacts", str(tmp_path / "artifacts")]
    ran = invoke("run", "--study", str(tiny_spec), "--study-name", name, "--n-trials", "1", *args)
    assert ran.exit_code == 0, ran.output
    assert ran.stdout.startswith(f"study {name} from ")
    best = invoke("best", "--study", name, "--storage", url)
    assert best.exit_code == 0, best.output
    missing = invoke("best", "--study", "no[/]such", "--storage", url)
    assert missing.exit_code == 2 and f"no study named 'no[/]such' in {url} (studies: {name})" in missing.stderr


def test_unknown_study_leaves_an_existing_database_unchanged(ran, tmp_path):
    db = Path(ran.removeprefix("sqlite:///"))
    before = db.read_bytes()
    result = invoke("best", "--study", "absent", "--storage", ran)
    assert result.exit_code == 2 and "tiny" in result.stderr
    assert db.read_bytes() == before


def readme_usage_commands() -> list[list[str]]:
    """The `hpo ...` commands of the README block marked usage-commands, as argument lists, comments removed."""
    text = (REPO / "README.md").read_text()
    block = text.split("<!-- usage-commands", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.startswith("hpo ")]


def test_the_readme_commands_leave_only_ignored_files(tiny_spec, tmp_path, monkeypatch):
    """Run the README's usage block verbatim in an empty git checkout holding only .gitignore; `quick` is the
    tiny spec there, so it takes seconds. Only their outputs' defaults matter: evaluate gets a smaller grid."""
    clone, specs = tmp_path / "clone", tmp_path / "specs"
    clone.mkdir()
    specs.mkdir()
    (specs / "quick.toml").write_text(tiny_spec.read_text())
    shutil.copy(REPO / ".gitignore", clone / ".gitignore")
    subprocess.run(["git", "init", "-q"], cwd=clone, check=True)
    monkeypatch.chdir(clone)
    monkeypatch.setenv("HPO_STUDIES_DIR", str(specs))
    for var in ("HPO_ARTIFACTS", "HPO_STORAGE"):  # the defaults are what is under test
        monkeypatch.delenv(var, raising=False)
    commands = readme_usage_commands()
    assert ["hpo", "report", "--study", "quick"] in commands
    for args in commands:
        if args[1] == "dashboard":  # serves until stopped; test_dashboard_serves_the_storage_on_localhost runs it
            continue
        faster = ["--scenes", "4", "--snr-grid", "0"] if args[1] == "evaluate" else []
        result = invoke(*args[1:], *faster)
        assert result.exit_code == 0, (args, result.output)
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"], cwd=clone, capture_output=True, text=True
    )
    assert status.stdout.splitlines() == ["?? .gitignore"]
    written = {p.name for p in (clone / "out").iterdir()}
    assert {"best.pt", "eval.json", "eval.png", "trials.csv", "report.html"} <= written


@pytest.mark.slow
@pytest.mark.timeout(900)  # above the subprocess's own limit, so a slow run fails with its stderr shown
def test_quick_study_runs_as_a_real_subprocess(tmp_path):
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    # The shipped spec, its study figure evaluated on 8 scenes per SNR instead of 200, on one thread: the suite
    # runs on every core already (pytest-xdist), where quick's 2 threads would oversubscribe them.
    studies = tmp_path / "studies"
    studies.mkdir()
    quick = (REPO / "studies" / "quick.toml").read_text().replace("\nthreads = 2\n", "\nthreads = 1\n", 1)
    assert "threads = 1" in quick
    (studies / "quick.toml").write_text(quick.replace("[study]\n", "[study]\nfigure_scenes = 8\n", 1))
    proc = subprocess.run(
        [HPO, "run", "--study", "quick", "--n-trials", "1", "--storage", url],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "HPO_STUDIES_DIR": str(studies)},
        timeout=840,  # one quick trial: ~15 s on a quiet machine, minutes when other jobs share the cores
    )
    assert proc.returncode == 0, proc.stderr
    study = optuna.load_study(study_name="quick", storage=url)
    assert len(study.trials) == 1
    for t in study.trials:
        assert t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        assert t.intermediate_values and t.user_attrs["eigengap_health"] and t.user_attrs["spec_hash"]
        assert {"seed", "versions", "device"} <= set(t.user_attrs)


@pytest.mark.slow
def test_sigterm_marks_the_running_trial_failed(tiny_spec, tmp_path):
    tiny_spec.write_text(tiny_spec.read_text().replace("epochs = 2", "epochs = 200"))
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    proc = subprocess.Popen([HPO, "run", "--study", str(tiny_spec), "--storage", url, "--json"], cwd=tmp_path)
    try:
        wait_for(lambda: trials_training(url), every=0.5, what="the trial's first epoch")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=300) == 130  # a guard against a hang, not a speed limit
    finally:
        proc.kill()
    t, retry = optuna.load_study(study_name="tiny", storage=url).trials
    assert t.state == TrialState.FAIL and t.user_attrs["fail_reason"] == "interrupted"
    assert retry.state == TrialState.WAITING and retry.params == t.params


def test_dashboard_serves_the_storage_on_localhost_until_sigterm(ran, tmp_path):
    """SIGTERM (`docker stop`) stops it as Ctrl-C does; as a container's process 1 it used to be ignored, the
    kernel's default for init, and the container was killed 10 s later."""
    port = free_port()
    env = {**os.environ, "HPO_STORAGE": ran}
    proc = subprocess.Popen(
        [HPO, "dashboard", "--port", str(port)], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True
    )

    def studies() -> dict | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as r:
                return json.loads(r.read())
        except OSError:  # not listening yet
            return None

    try:
        body = wait_for(studies, every=0.25, what="the dashboard's API")
        assert [s["study_name"] for s in body["study_summaries"]] == ["tiny"]
        proc.terminate()
        _, said = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0 and said.splitlines()[-1] == "dashboard stopped", said


class _RunsCode:
    """Pickles as a call of os.system (posix.system): loading it without weights_only would run the command."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _foreign_file(kind: str, path: Path) -> None:
    """A file `hpo evaluate --checkpoint` must refuse, of the given kind."""
    import pickle

    import torch

    if kind == "garbage":
        path.write_bytes(bytes(range(256)) * 4)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "plain pickle":
        path.write_bytes(pickle.dumps({"state_dict": {}, "config": {}}))
    elif kind == "code-running pickle":
        torch.save(_RunsCode(f"touch {path.parent / 'ran'}"), path)
    elif kind == "torch file without our keys":
        torch.save({"weights": torch.zeros(3)}, path)
    elif kind == "torch file of another model":
        torch.save({"state_dict": {"w": torch.zeros(3)}, "config": {}}, path)


@pytest.mark.parametrize(
    "kind",
    [
        "garbage",
        "empty",
        "plain pickle",
        "code-running pickle",
        "torch file without our keys",
        "torch file of another model",
    ],
)
def test_a_foreign_checkpoint_is_one_line_naming_the_file(kind, tmp_path):
    path = tmp_path / "model.pt"
    _foreign_file(kind, path)
    result = invoke("evaluate", "--checkpoint", str(path))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "not a covblend checkpoint" in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "ran").exists()  # weights_only: the pickle's os.system never ran


PASSWORDS = ["Zq7@RETx", "Kj:Vw/Qx", "Xk%40Wp%2F7", "Qw@/:Rt@Yu"]
# {pw}: the password as typed; {port}: a closed port, so every connection is refused at once.
URL_SHAPES = [
    "postgresql+psycopg://postgres:{pw}@127.0.0.1:{port}/test",
    "postgresql+psycopg://postgres:{pw}@127.0.0.1:no-port/test",
    "postgresql+psycopg://postgres@127.0.0.1:{port}/test?password={pw}",
    "mysql+pymysql://root:{pw}@127.0.0.1:{port}/test",
    "nosuchdb://root:{pw}@127.0.0.1/test",
    "postgres:{pw}@127.0.0.1",
]


def _fragments(password: str) -> set[str]:
    """Every 3-character piece of the password as typed and percent-decoded; any longer piece holds one."""
    from urllib.parse import unquote

    return {form[i : i + 3] for form in (password, unquote(password)) for i in range(len(form) - 2)}


def _invoke_on(url: str, via_env: bool, command: list[str], monkeypatch):
    """`hpo COMMAND` on the storage `url`, given in $HPO_STORAGE (via_env) or with --storage."""
    if via_env:
        monkeypatch.setenv("HPO_STORAGE", url)
        return invoke(*command)
    monkeypatch.delenv("HPO_STORAGE", raising=False)
    return invoke(*command, "--storage", url)


@pytest.mark.parametrize("shape", URL_SHAPES)
@pytest.mark.parametrize("password", PASSWORDS)
def test_no_command_prints_any_part_of_a_password(password, shape, tiny_spec, tmp_path, monkeypatch):
    url = shape.format(pw=password, port=free_port())
    commands = [
        ["run", "--study", str(tiny_spec)],
        ["studies"],
        ["best", "--study", "tiny"],
        ["export", "--study", "tiny"],
        ["report", "--study", "tiny", "--out", str(tmp_path / "r.html")],
        ["retrain", "--study", "tiny", "--out", str(tmp_path / "retrain")],
        ["dashboard", "--port", str(free_port())],
    ]
    for command in commands:
        for via_env in (False, True):
            result = _invoke_on(url, via_env, command, monkeypatch)
            assert result.exit_code == 2, (command, result.output)
            shown = [f for f in _fragments(password) if f in result.stdout + result.stderr]
            assert not shown, (command, via_env, result.stderr)


@pytest.mark.parametrize("via_env", [False, True])
@pytest.mark.parametrize("password", ["S3cr@t/pw:x#?", "Zq7@RETx"])  # the second reads as password Zq7, host RETx too
def test_a_password_with_a_raw_at_and_no_host_is_never_shown(password, via_env, tiny_spec, monkeypatch):
    """The issue's URL through the flag and $HPO_STORAGE; tests/hpo/storage/test_storage.py tries more shapes."""
    url = f"postgresql+psycopg://ft_user:{password}"
    for command in (["run", "--study", str(tiny_spec)], ["studies"]):
        result = _invoke_on(url, via_env, command, monkeypatch)
        assert result.exit_code == 2, result.output
        (line,) = result.stderr.strip().splitlines()
        assert not [f for f in _fragments(password) if f in result.output], line


class MuteServer:
    """A TCP server on 127.0.0.1 that accepts connections and never sends a byte; it stops itself after
    `lifetime_s`, or when closed."""

    def __init__(self, lifetime_s: float = 120.0) -> None:
        import threading

        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(time.monotonic() + lifetime_s,), daemon=True)
        self.thread.start()

    def _serve(self, end: float) -> None:
        while not self.stop.is_set() and time.monotonic() < end:
            try:
                self.accepted.append(self.sock.accept()[0])
            except TimeoutError:
                continue
        for conn in self.accepted:
            conn.close()
        self.sock.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


@pytest.fixture
def mute_server():
    server = MuteServer()
    yield server
    server.close()


@pytest.mark.timeout(120)  # the guard against the old hang; the connect timeout below is 2 s
@pytest.mark.parametrize("scheme", ["postgresql+psycopg", "mysql+pymysql"])
def test_a_server_that_never_answers_is_a_one_line_error(scheme, mute_server, tiny_spec, monkeypatch):
    monkeypatch.setenv("HPO_CONNECT_TIMEOUT_S", "2")
    url = f"{scheme}://user:Zq7RETx@127.0.0.1:{mute_server.port}/test"
    result = invoke("run", "--study", str(tiny_spec), "--storage", url)
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot open storage {scheme}://user:***@127.0.0.1:{mute_server.port}/test: ")
    assert mute_server.accepted  # it did connect: the timeout, not a refusal, ended the attempt
