"""Ctrl-Z (hpo.run.signals.Suspend) and a closed terminal (SIGHUP), in processes of their own: a stop there must not
stop the test."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from core.experiment import ExperimentConfig
from core.models import ModelConfig, build_model
from core.train import save_checkpoint
from hpo.console import EXIT_INTERRUPTED
from hpo.run import signals
from hpo.run.signals import STOP_SIGNALS, Forward, StopAtSafePoint, handling
from hpo.storage.guard import INTERRUPTED
from tests.conftest import wait_for
from tests.hpo.conftest import trials_training
from tests.procfs import state, worker_pids

REPO = Path(__file__).resolve().parents[3]
HPO = str(Path(sys.executable).parent / "hpo")
GUARD_S = 30.0  # wait_for's hang guard: these processes answer a signal within a second

SUSPENDED = """
import signal, sys, time
from hpo.run.signals import Suspend, handling
suspend, handled = Suspend(lambda: [int(sys.argv[1])]), []
def handler(signum, frame):
    suspend(signum, frame)  # returns after the stop, on SIGCONT
    handled.append(signum)
with handling(handler, (signal.SIGTSTP,)):
    print("ready", flush=True)
    while not handled:  # not signal.pause(): a signal that lands before it is entered would leave it waiting
        time.sleep(0.01)
print("continued", flush=True)
"""

SUPERVISING = """
import time
from hpo.run.processes import supervise
print(supervise(time.sleep, [(60,), (60,)]), flush=True)  # two workers that wait; a signal ends them
"""


STUBBORN = """
import sys
sys.path.insert(0, sys.argv[1])
from hpo.run import processes
from tests.hpo.run.test_signals import stubborn
processes.STOP_S = 2.5
print(processes.supervise(stubborn, [(1.0, sys.argv[2])] * 2), flush=True)
"""


def stubborn(active_s: float, ready: str) -> None:
    """A worker that ignores SIGTERM and ends after `active_s` seconds of running: time stopped does not count."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    (Path(ready) / str(os.getpid())).touch()
    for _ in range(round(active_s / 0.05)):
        time.sleep(0.05)


def _drain(fd: int) -> bytes:
    """What the pseudo-terminal `fd` holds now, read so that the process writing to it never blocks on a full one."""
    got = bytearray()
    while select.select([fd], [], [], 0)[0]:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the other side has gone
            break
        if not chunk:
            break
        got.extend(chunk)
    return bytes(got)


def _read_until(fd: int, text: bytes, timeout: float = GUARD_S) -> None:
    """Read the pseudo-terminal `fd` until `text` has come."""
    seen = bytearray()

    def arrived() -> bool:
        seen.extend(_drain(fd))
        return text in seen

    wait_for(arrived, timeout=timeout, every=0.05, what=repr(text))


@contextlib.contextmanager
def _leading_a_terminal(argv: list[str], cwd: Path) -> Iterator[tuple[int, int]]:
    """(pid, the pseudo-terminal's fd) of `hpo ARGV` leading a session whose controlling terminal is the pty, as a
    login's is; killed and reaped at the end if it is still there."""
    pid, terminal = pty.fork()
    if pid == 0:
        try:
            os.chdir(cwd)
            # a login's default: a suite run under nohup (or a CI runner that ignores hangups) would pass its
            # ignored SIGHUP on through exec, and hpo keeps an ignored SIGHUP ignored
            signal.signal(signal.SIGHUP, signal.SIG_DFL)
            os.execv(HPO, [HPO, *argv])
        finally:
            os._exit(127)
    try:
        yield pid, terminal
    finally:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        with contextlib.suppress(OSError):  # closed already when the test hung up
            os.close(terminal)


def _exit_status(pid: int, while_waiting: Callable[[], object] = lambda: None) -> int:
    """The exit status of child `pid` once it has ended, calling while_waiting() (a pty's drain) in the meantime."""

    def ended() -> tuple[int, int] | None:
        while_waiting()
        done = os.waitpid(pid, os.WNOHANG)
        return done if done[0] else None

    return wait_for(ended, what=f"process {pid} to end")[1]


def test_ctrl_z_stops_the_named_processes_with_this_one_shows_the_cursor_and_continues_them():
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], process_group=0)
    leader, follower = pty.openpty()  # the suspended process's stdout is a terminal, as a live display's is
    # a process group of its own, as a shell's job has: the kernel discards a stop for an orphaned group
    proc = subprocess.Popen([sys.executable, "-c", SUSPENDED, str(worker.pid)], stdout=follower, process_group=0)
    os.close(follower)
    try:
        _read_until(leader, b"ready")
        proc.send_signal(signal.SIGTSTP)
        wait_for(lambda: state(proc.pid) == "T" and state(worker.pid) == "T", timeout=GUARD_S)
        _read_until(leader, b"\x1b[?25h")  # the cursor, shown before the stop: the shell's prompt needs it
        proc.send_signal(signal.SIGCONT)  # what `fg` and `bg` send
        _read_until(leader, b"continued")
        assert proc.wait(timeout=30) == 0
        assert state(worker.pid) != "T"
    finally:
        for p in (proc, worker):
            p.kill()
            p.wait()
        os.close(leader)


def test_a_supervising_parent_stops_its_workers_with_it_on_ctrl_z_and_continues_them_with_it():
    """The workers of `hpo run --workers` run in process groups of their own, which the terminal's Ctrl-Z does
    not reach (here the stop goes to the parent's pid only): before, a suspended run's workers trained on."""
    proc = subprocess.Popen([sys.executable, "-c", SUPERVISING], stdout=subprocess.PIPE, text=True, process_group=0)
    try:
        wait_for(lambda: len(worker_pids(proc.pid)) == 2, timeout=GUARD_S)
        workers = worker_pids(proc.pid)
        proc.send_signal(signal.SIGTSTP)
        wait_for(lambda: all(state(pid) == "T" for pid in [proc.pid, *workers]), timeout=GUARD_S)
        proc.send_signal(signal.SIGCONT)  # what `fg` and `bg` send
        wait_for(lambda: not any(state(pid) == "T" for pid in [proc.pid, *workers]), timeout=GUARD_S)
        proc.send_signal(signal.SIGTERM)  # forwarded: the sleeping workers end, and supervise with them
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert out.split() == ["([-15,", "-15],", "True)"]


def test_a_ctrl_z_during_a_stop_gives_the_workers_their_full_stop_time_after_the_continue(tmp_path):
    """The workers were stopped too: counting the suspension against their STOP_S killed them at the continue."""
    args = [sys.executable, "-c", STUBBORN, str(REPO), str(tmp_path)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, process_group=0)
    try:
        wait_for(lambda: len(list(tmp_path.iterdir())) == 2, timeout=GUARD_S)  # both ignore SIGTERM now
        proc.send_signal(signal.SIGTERM)  # forwarded, ignored: the 2.5 s of STOP_S begin
        proc.send_signal(signal.SIGTSTP)
        wait_for(lambda: state(proc.pid) == "T", timeout=GUARD_S)
        time.sleep(3.0)  # suspended beyond STOP_S
        proc.send_signal(signal.SIGCONT)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert out.split() == ["([0,", "0],", "True)"]  # they finished their 1 s of work, not killed (-9)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_closed_terminal_stops_hpo_run_like_sigterm(tiny_spec, tmp_path, workers):
    """The kernel's SIGHUP as the terminal goes (an ssh connection dropped) used to end `hpo run` at once, its trials
    left RUNNING until their heartbeats went stale: now they are FAIL "interrupted" and queued again."""
    tiny_spec.write_text(tiny_spec.read_text().replace("epochs = 2", "epochs = 200"))
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    argv = ["run", "--study", str(tiny_spec), "--storage", url, "--workers", str(workers)]
    with _leading_a_terminal(argv, tmp_path) as (pid, terminal):

        def trained() -> bool:
            _drain(terminal)  # a full pty would block the display's writes
            return trials_training(url) == workers

        wait_for(trained, what="each worker's first epoch")
        os.close(terminal)  # the terminal goes: the kernel hangs up its session
        status = _exit_status(pid)
    assert not os.WIFSIGNALED(status), f"ended by signal {os.WTERMSIG(status)}"
    assert os.WEXITSTATUS(status) == EXIT_INTERRUPTED  # not the OSError of a display that lost its terminal
    trials = optuna.load_study(study_name="tiny", storage=url).trials
    stopped, retries = trials[:workers], trials[workers:]
    assert all(t.state == TrialState.FAIL and t.user_attrs["fail_reason"] == INTERRUPTED for t in stopped)
    assert [t.state for t in retries] == [TrialState.WAITING] * workers
    assert sorted(str(t.params) for t in retries) == sorted(str(t.params) for t in stopped)


@pytest.fixture
def untrained(tmp_path) -> Path:
    """A checkpoint of an untrained small MLP: enough for `hpo evaluate` to evaluate."""
    cfg = ExperimentConfig(model=ModelConfig(arch="mlp", width=32, depth=1))
    path = tmp_path / "model.pt"
    save_checkpoint(path, build_model(cfg.model, cfg.scenario).eval(), cfg)
    return path


@pytest.fixture
def long_command(request, tmp_path) -> tuple[list[str], bytes, str, Path]:
    """(argv, what its terminal shows once the long part runs, what its "stopped:" line says, a file it writes only
    at its end) of the command named by the test's parameter, set to take far longer than the test."""
    if request.param == "retrain":
        searched, tiny_spec = request.getfixturevalue("searched"), request.getfixturevalue("tiny_spec")
        out = tmp_path / "out"
        argv = ["retrain", "--study", "tiny", "--storage", searched, "--spec", str(tiny_spec), "--out", str(out)]
        argv += ["--top", "1", "--seeds", "1", "--epochs", "10000", "--scenes", "8", "--snr-grid", "0"]
        kept = f"finished seeds are kept in {out}"
        return argv, b": epoch ", kept, out / "checkpoint.pt"  # the seed is training (the bar's text)
    report = tmp_path / "report.json"
    argv = ["evaluate", "--checkpoint", str(request.getfixturevalue("untrained")), "--scenes", "10000"]
    return [*argv, "--threads", "1", "--json", str(report)], b"evaluating", "nothing written", report


@pytest.mark.parametrize("long_command", ["retrain", "evaluate"], indirect=True)
@pytest.mark.parametrize("stop", ["the terminal closes", "SIGTERM"])
def test_a_long_command_stops_like_ctrl_c(long_command, tmp_path, stop):
    """A closed terminal's SIGHUP used to end `hpo retrain` at once (killed by signal 1), without a line, and
    SIGTERM ended `hpo evaluate` by signal 15, without a line."""
    argv, running, kept, unwritten = long_command
    said = bytearray()
    with _leading_a_terminal(argv, tmp_path) as (pid, terminal):
        _read_until(terminal, running, timeout=120)
        if stop == "SIGTERM":
            os.kill(pid, signal.SIGTERM)
            status = _exit_status(pid, lambda: said.extend(_drain(terminal)))  # what the terminal shows meanwhile
        else:
            os.close(terminal)  # the kernel hangs up the session
            status = _exit_status(pid)
    assert not os.WIFSIGNALED(status), f"ended by signal {os.WTERMSIG(status)}"
    assert os.WEXITSTATUS(status) == EXIT_INTERRUPTED  # not the OSError of a bar that lost its terminal
    if stop == "SIGTERM":
        assert f"stopped: {kept}".encode() in said
    assert not unwritten.exists()


def test_a_sighup_that_nohup_ignores_stays_ignored():
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with handling(lambda signum, frame: None):
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) != signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)
    assert signal.SIGHUP in STOP_SIGNALS


def test_a_second_sighup_during_a_stop_is_not_a_second_ask(monkeypatch):
    """Under an interactive shell a closed terminal's hangup reaches `hpo run` twice, from the shell passing it on to
    its jobs and from the kernel as the shell exits; a second ask would end the process at once, its trials left
    RUNNING. A second SIGTERM or SIGINT still does."""
    asked = []
    monkeypatch.setattr(signals, "exit_now", lambda line: asked.append(line))
    answers = {
        "worker": StopAtSafePoint(busy=lambda: True),  # in a trial: the first signal only requests the stop
        "parent": Forward(pids=list, on_stop=lambda: None, abandoned=lambda: "again"),
    }
    for name, answer in answers.items():
        answer(signal.SIGHUP, None)
        answer(signal.SIGHUP, None)
        assert asked == [], name
        answer(signal.SIGTERM, None)
        assert len(asked) == 1, name
        asked.clear()
