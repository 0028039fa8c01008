"""Bad inputs through the real CLI (typer's CliRunner, in process), by what issue 23's tester tried: each one is
exit 2 and a single line on stderr, without a traceback, and writes nothing: no database, no study, no folder.
None of them trains; each fails where it is read."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from optuna.distributions import FloatDistribution
from typer.testing import CliRunner

from hpo.cli import app
from tests.hpo.conftest import TINY_SPEC

REPO = Path(__file__).resolve().parents[3]
SECRET = "S3cr3tPw"  # the password of every URL below that has one: no output may show it


def edited(old: str, new: str) -> str:
    assert old in TINY_SPEC, old
    return TINY_SPEC.replace(old, new)


QUICK = (REPO / "studies" / "quick.toml").read_text()
# Spec files, by name; `hpo run --study <spec:NAME>` runs one. None: 1 KiB of binary.
SPECS: dict[str, str | None] = {
    "empty": "",
    "real spec, first 1000 bytes": QUICK[:1000],
    "real spec, first half": QUICK[: len(QUICK) // 2],
    "cut mid-key": TINY_SPEC[:120],
    "not TOML": "[study\nn_trials = 3",
    "binary": None,
    "NUL byte": TINY_SPEC.replace("n_trials = 3", "n_trials = 3\x00"),
    "no [search]": TINY_SPEC[: TINY_SPEC.index("[search.lr]")] + TINY_SPEC[TINY_SPEC.index("[sampler]") :],
    "n_train = 10**12": edited("n_train = 128", "n_train = 1000000000000"),
    "snapshots = 10**8": TINY_SPEC + "\n[scenario.measurement]\nsnapshots = 100000000\n",
    "threads = 10000": edited("threads = 1", "threads = 10000"),
    "batch_size = 10**8": edited("batch_size = 64", "batch_size = 100000000"),
    "n_trials = 10**7": edited("n_trials = 3", "n_trials = 10000000"),
    "n_trials = 0": edited("n_trials = 3", "n_trials = 0"),
    "epochs = 0": edited("epochs = 2", "epochs = 0"),
    "n_val = -1": edited("n_val = 64", "n_val = -1"),
    "width = -32": edited("width = 32", "width = -32"),
    "low = nan": edited("low = 1e-3", "low = nan"),
    "high = inf": edited("high = 1e-2", "high = inf"),
    "health_threshold = nan": edited("health_threshold = 0.0", "health_threshold = nan"),
    "figure_scenes = 0": edited("figure_scenes = 8", "figure_scenes = 0"),
    "low above high": edited("low = 0.2\nhigh = 0.4", "low = 0.5\nhigh = 0.4"),
    "log with low = 0": edited("low = 1e-3", "low = 0.0"),
    "empty choices": edited('type = "float"\nlow = 0.2\nhigh = 0.4', 'type = "categorical"\nchoices = []'),
    "text for a number": edited("n_train = 128", 'n_train = "many"'),
    "fraction for an integer": edited("n_train = 128", "n_train = 128.5"),
    "seed = 2**70": edited("seed = 0", "seed = 1180591620717411303424"),
    "seed = -1": edited("seed = 0", "seed = -1"),
    "data seed = 2**64": edited("n_val = 64", "n_val = 64\nseed = 18446744073709551616"),  # every trial failed
    "unknown key": edited("epochs = 2", "epochs = 2\nepoch = 3"),
    "unknown [study] key": edited("n_trials = 3", "n_trials = 3\nn_trial = 4"),
    "unknown section": TINY_SPEC + "\n[bogus]\nx = 1\n",
    "unknown parameter": edited(
        "[search.beta]", '[search.nonsense]\ntype = "float"\nlow = 0.1\nhigh = 0.2\n\n[search.beta]'
    ),
    "unknown sampler": edited('name = "random"', 'name = "magic"'),
    "unknown pruner": edited('name = "none"', 'name = "sometimes"'),
    "unknown device": edited("threads = 1", 'threads = 1\ndevice = "tpu"'),
    "fixed and searched": edited("[fixed]\n", "[fixed]\nbeta = 0.3\n"),
    "extends itself": 'extends = "SELF"\n' + TINY_SPEC,
    "extends a missing spec": 'extends = "nowhere"\n' + TINY_SPEC,
}
RUN = ["run", "--study", "<spec>", "--storage", "<db>"]
READ = ["--storage", "<made>"]  # a database holding the study "tiny" with one COMPLETE trial, never trained
CASES: dict[str, list[str]] = {
    **{f"spec: {name}": ["run", "--study", f"<spec:{name}>", "--storage", "<db>"] for name in SPECS},
    "spec: no such name": ["run", "--study", "no-such-study", "--storage", "<db>"],
    "spec: a directory": ["run", "--study", "<dir>", "--storage", "<db>"],
    "--seed 2**70": [*RUN, "--seed", "1180591620717411303424"],
    "--seed -1": [*RUN, "--seed", "-1"],
    "--n-trials 0": [*RUN, "--n-trials", "0"],
    "--n-trials 10**12": [*RUN, "--n-trials", "1000000000000"],
    "--n-trials text": [*RUN, "--n-trials", "ten"],
    "run: an unknown option": [*RUN, "--n-trails", "3"],
    "run: an option without its value": [*RUN, "--n-trials"],
    "an unknown command": ["rn", "--study", "<spec>"],
    "an unknown option of hpo itself": ["--verbose", "run", "--study", "<spec>"],
    "best: no --study": ["best", *READ],
    "--timeout -1": [*RUN, "--timeout", "-1"],
    "--timeout nan": [*RUN, "--timeout", "nan"],
    "--workers 0": [*RUN, "--workers", "0"],
    "--workers 10000": [*RUN, "--workers", "10000"],
    "--study-name of 600 characters": [*RUN, "--study-name", "x" * 600],
    "--study-name empty": [*RUN, "--study-name", ""],
    "--study-name blank": [*RUN, "--study-name", "   "],
    "--study-name with a newline": [*RUN, "--study-name", "a\nb"],
    "--study-name with a right-to-left override": [*RUN, "--study-name", "evil\u202etxt.exe"],
    "--study-name with a zero-width space": [*RUN, "--study-name", "qu\u200bick"],
    "--study-name with a NUL": [*RUN, "--study-name", "a\x00b"],
    "--artifacts is a file": [*RUN, "--artifacts", "<file>"],
    "--artifacts under a file": [*RUN, "--artifacts", "<file>/x"],
    "--gpus not numbers": [*RUN, "--gpus", "a,b"],
    "--gpus -1": [*RUN, "--gpus", "-1"],
    "--gpus 99": [*RUN, "--gpus", "99"],
    "--workers 2 on sqlite:///:memory:": [
        "run",
        "--study",
        "<spec>",
        "--storage",
        "sqlite:///:memory:",
        "--workers",
        "2",
    ],
    "--workers 2 on sqlite://": ["run", "--study", "<spec>", "--storage", "sqlite://", "--workers", "2"],
    "--workers 2 on mode=memory": [
        "run",
        "--study",
        "<spec>",
        "--storage",
        "sqlite:///file:m?mode=memory&uri=true",
        "--workers",
        "2",
    ],  # fmt: skip
    "storage: unknown scheme": ["run", "--study", "<spec>", "--storage", "nonsense://x"],
    "storage: http": ["run", "--study", "<spec>", "--storage", "http://example.com/db"],
    "storage: mongodb with a password": ["run", "--study", "<spec>", "--storage", f"mongodb://u:{SECRET}@h/db"],
    "storage: no scheme": ["run", "--study", "<spec>", "--storage", "hpo.db"],
    "storage: blank": ["run", "--study", "<spec>", "--storage", " "],
    "storage: unknown driver": ["run", "--study", "<spec>", "--storage", "postgresql+nodriver://u@h/db"],
    "storage: postgres://, not SQLAlchemy's spelling": ["run", "--study", "<spec>", "--storage", "postgres://u@h/db"],
    "storage: mysql://, whose driver is not installed": ["run", "--study", "<spec>", "--storage", "mysql://u@h/db"],
    "storage: unreachable, with a password": [
        "run",
        "--study",
        "<spec>",
        "--storage",
        f"postgresql+psycopg://u:{SECRET}@127.0.0.1:9/x",
    ],  # fmt: skip
    "storage: raw '@' in the password, no host": [
        "run",
        "--study",
        "<spec>",
        "--storage",
        f"postgresql+psycopg://u:{SECRET[:4]}@{SECRET[4:]}",
    ],  # fmt: skip
    "storage: a folder that does not exist": ["run", "--study", "<spec>", "--storage", "sqlite:///<dir>/nope/hpo.db"],
    "storage: a directory": ["run", "--study", "<spec>", "--storage", "sqlite:///<dir>"],
    "storage: a read-only database": ["run", "--study", "<spec>", "--storage", "<read_only>"],
    "run: another objective on the study": ["run", "--study", "<spec:multi>", *READ, "--study-name", "tiny"],
    "evaluate: --json a directory": ["evaluate", "--checkpoint", "<dir>/absent.pt", "--json", "<dir>"],
    "evaluate: --plot a directory": ["evaluate", "--checkpoint", "<dir>/absent.pt", "--plot", "<dir>"],
    "evaluate: no checkpoint": ["evaluate", "--checkpoint", "<dir>/absent.pt"],
    "evaluate: checkpoint a directory": ["evaluate", "--checkpoint", "<dir>"],
    "evaluate: checkpoint a spec": ["evaluate", "--checkpoint", "<spec>"],
    "evaluate: --scenes 0": ["evaluate", "--checkpoint", "<dir>/absent.pt", "--scenes", "0"],
    "evaluate: --snr-grid not numbers": ["evaluate", "--checkpoint", "<dir>/absent.pt", "--snr-grid", "a,b"],
    "evaluate: --snr-grid nan": ["evaluate", "--checkpoint", "<dir>/absent.pt", "--snr-grid", "0,nan"],
    "evaluate: --snr-grid beyond ±100 dB": ["evaluate", "--checkpoint", "<dir>/absent.pt", "--snr-grid", "0,-400"],
    "evaluate: --snr-grid with a point twice": ["evaluate", "--checkpoint", "<dir>/absent.pt", "--snr-grid", "0,5,0"],
    "evaluate: --device tpu": ["evaluate", "--checkpoint", "<dir>/absent.pt", "--device", "tpu"],
    "evaluate: --sources 0": ["evaluate", "--checkpoint", "<dir>/absent.pt", "--sources", "0"],
    "evaluate: --snapshots -1": ["evaluate", "--checkpoint", "<dir>/absent.pt", "--snapshots", "-1"],
    "best: no such study": ["best", "--study", "absent", *READ],
    "best: --download a directory": ["best", "--study", "tiny", *READ, "--download", "<dir>"],
    "export: no such study": ["export", "--study", "absent", *READ],
    "export: --format xml": ["export", "--study", "tiny", *READ, "--format", "xml"],
    "export: --out a directory": ["export", "--study", "tiny", *READ, "--out", "<dir>"],
    "report: --out a directory": ["report", "--study", "tiny", *READ, "--out", "<dir>"],
    "export: --out the study's own database": ["export", "--study", "tiny", *READ, "--out", "<dir>/made.db"],
    # out/, the default folder, is created only once the inputs are known good
    "report: no such study, into out/": ["report", "--study", "absent", *READ],
    "evaluate: no checkpoint, --json in out/": ["evaluate", "--checkpoint", "<dir>/absent.pt", "--json", "out/e.json"],
    "evaluate: --plot into out/ as .xyz": ["evaluate", "--checkpoint", "<dir>/absent.pt", "--plot", "out/e.xyz"],
    "best: --download into out/, no checkpoint": ["best", "--study", "tiny", *READ, "--download", "out/best.pt"],
    "studies: no database": ["studies", "--storage", "<db>"],
    "dashboard: --port 70000": ["dashboard", *READ, "--port", "70000"],
    "dashboard: --port -1": ["dashboard", *READ, "--port", "-1"],
    "dashboard: --host that does not resolve": ["dashboard", *READ, "--host", "no.such.host.invalid"],
    "retrain: --out a file": ["retrain", "--study", "tiny", *READ, "--out", "<file>"],
    "retrain: --out in a folder that does not exist": ["retrain", "--study", "tiny", *READ, "--out", "<dir>/a/b"],
    "retrain: --epochs 10**8": ["retrain", "--study", "tiny", *READ, "--out", "<dir>/r", "--epochs", "100000000"],
    "retrain: --seeds 10**8": ["retrain", "--study", "tiny", *READ, "--out", "<dir>/r", "--seeds", "100000000"],
    "retrain: --top 0": ["retrain", "--study", "tiny", *READ, "--out", "<dir>/r", "--top", "0"],
    "retrain: no such trial": ["retrain", "--study", "tiny", *READ, "--out", "<dir>/r", "--trial", "99"],
    "retrain: --val-scenes 10001": ["retrain", "--study", "tiny", *READ, "--out", "<dir>/r", "--val-scenes", "10001"],
    # an unset shell variable: the option's default would be another database, or the current folder
    "run: --storage ''": ["run", "--study", "<spec>", "--storage", ""],
    "run: --storage=": ["run", "--study", "<spec>", "--storage="],
    "run: --artifacts ''": ["run", "--study", "<spec>", "--storage", "<db>", "--artifacts", ""],
    "retrain: --out ''": ["retrain", "--study", "tiny", *READ, "--out", ""],
    "evaluate: --checkpoint ''": ["evaluate", "--checkpoint", ""],
    "retrain: --scenes 0": ["retrain", "--study", "tiny", *READ, "--out", "<dir>/r", "--scenes", "0"],
    "retrain: no such spec": ["retrain", "--study", "tiny", *READ, "--out", "<dir>/r", "--spec", "nowhere"],
}


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """A SQLite file holding the study "tiny" (hpo run --create-only) and one COMPLETE trial added without
    training, so that the commands reading a study get past "no complete trial" to the input under test."""
    folder = tmp_path_factory.mktemp("made")
    spec, db = folder / "tiny.toml", folder / "made.db"
    spec.write_text(TINY_SPEC)
    result = CliRunner().invoke(app, ["run", "--study", str(spec), "--storage", f"sqlite:///{db}", "--create-only"])
    assert result.exit_code == 0, result.output
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}")
    lr, beta = FloatDistribution(1e-3, 1e-2, log=True), FloatDistribution(0.2, 0.4)
    trial = optuna.create_trial(
        params={"lr": 3e-3, "beta": 0.3},
        distributions={"lr": lr, "beta": beta},
        value=-1.0,
        user_attrs={"eigengap_health": 1.0, "seed": 0, "threads": 1},
    )
    study.add_trial(trial)
    return db


def _filled(arg: str, subs: dict[str, str]) -> str:
    """`arg` with each <name> replaced by subs[name]: the paths and URLs of a case's folder."""
    return re.sub(r"<([^<>]+)>", lambda m: subs[m.group(1)], arg)


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path below `folder` and the bytes of its files (None for a folder)."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


def _read_only(path: Path, mode: int = 0o444) -> None:
    """Make `path` read-only for this process, root included (chattr +i); _writable undoes it."""
    path.chmod(mode)
    if os.geteuid() == 0 and subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not supported here, and root writes past the mode bits anyway")


def _writable(path: Path, mode: int = 0o644) -> None:
    subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    path.chmod(mode)


@pytest.mark.parametrize("case", CASES)
def test_a_bad_input_is_exit_2_one_line_and_writes_nothing(case, made, tmp_path, monkeypatch):
    case_dir = tmp_path / "case"
    case_dir.mkdir()
    monkeypatch.chdir(case_dir)  # out/ and ./artifacts, the defaults, would land here
    monkeypatch.setenv("HPO_STUDIES_DIR", str(case_dir))
    monkeypatch.setenv("HPO_ARTIFACTS", str(case_dir / "artifacts"))
    monkeypatch.delenv("HPO_STORAGE", raising=False)
    subs = {"dir": str(case_dir), "db": f"sqlite:///{case_dir / 'hpo.db'}"}
    (case_dir / "tiny.toml").write_text(TINY_SPEC)
    (case_dir / "a-file").write_text("not a folder\n")
    subs.update(spec=str(case_dir / "tiny.toml"), file=str(case_dir / "a-file"))
    copy = case_dir / "made.db"
    copy.write_bytes(made.read_bytes())
    subs["made"] = f"sqlite:///{copy}"
    for i, (name, text) in enumerate({**SPECS, "multi": edited("[study]\n", "[study]\nobjective = 'multi'\n")}.items()):
        path = case_dir / f"spec{i}.toml"
        path.write_bytes(bytes(range(256)) * 4 if text is None else text.replace("SELF", path.stem).encode())
        subs[f"spec:{name}"] = str(path)
    read_only = case_dir / "read-only.db"
    read_only.write_bytes(made.read_bytes())
    subs["read_only"] = f"sqlite:///{read_only}"
    args = [_filled(arg, subs) for arg in CASES[case]]
    if subs["read_only"] in args:
        _read_only(read_only)
    before = _snapshot(tmp_path)
    try:
        result = CliRunner().invoke(app, args)
        after = _snapshot(tmp_path)
    finally:
        _writable(read_only)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output and SECRET not in result.output and SECRET[4:] not in result.output
    assert "Value error" not in result.stderr  # pydantic's prefix to a validator's own words
    written = sorted(p for p in before.keys() | after.keys() if before.get(p, "absent") != after.get(p, "absent"))
    assert written == [], written


def test_artifacts_under_a_read_only_folder_are_refused_before_the_study_exists(tmp_path, monkeypatch):
    """The check saw a folder, not whether it could be written in: the study was created, then the run failed."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.toml").write_text(TINY_SPEC)
    locked = tmp_path / "locked"
    locked.mkdir()
    _read_only(locked, 0o555)
    try:
        args = ["run", "--study", "tiny.toml", "--storage", "sqlite:///hpo.db", "--artifacts", str(locked / "a")]
        result = CliRunner().invoke(app, args)
    finally:
        _writable(locked, 0o755)
    refusal = f"artifact directory {locked / 'a'}: {locked} is not writable (--artifacts / $HPO_ARTIFACTS)"
    assert result.exit_code == 2 and result.stderr == f"error: {refusal}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["locked", "tiny.toml"]  # no database, no study


# The same on PostgreSQL, where the tester's 600-character name was a 129-line traceback after the tables existed.
PG_CASES = {
    "--study-name of 600 characters": [*RUN, "--study-name", "x" * 600],
    "--study-name with a right-to-left override": [*RUN, "--study-name", "evil\u202etxt.exe"],
    "--workers 10000": [*RUN, "--workers", "10000"],
    "spec: empty": ["run", "--study", "<spec:empty>", "--storage", "<db>"],
    "best: no such study": ["best", "--study", "absent", "--storage", "<db>"],
}


@pytest.mark.parametrize("case", PG_CASES)
def test_a_bad_input_on_postgres_is_one_line_and_creates_no_table(case, fresh_postgres_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.toml").write_text(TINY_SPEC)
    (tmp_path / "empty.toml").write_text("")
    subs = {"spec": str(tmp_path / "tiny.toml"), "spec:empty": str(tmp_path / "empty.toml"), "db": fresh_postgres_url}
    result = CliRunner().invoke(app, [_filled(arg, subs) for arg in PG_CASES[case]])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "Traceback" not in result.output
    engine = sqlalchemy.create_engine(fresh_postgres_url)
    with engine.connect() as conn:
        assert not sqlalchemy.inspect(conn).get_table_names()  # not even Optuna's tables
    engine.dispose()
