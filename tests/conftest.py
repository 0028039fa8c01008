"""Shared fixtures. Service-backed tests read their URL from the environment and skip when the service is
absent, unless HPO_REQUIRE_SERVICES=1 (set by .ci/run), which turns that skip into a failure."""

from __future__ import annotations

import os
import socket
import time
import uuid

import pytest

POSTGRES_URL_ENV = "HPO_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago, for a private server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 120.0, every: float = 0.1, what: str = "a condition"):
    """predicate()'s first truthy value. The timeout is a hang guard for a process that never gets there (an
    AssertionError naming `what` then); it measures nothing, so it is set far above any loaded machine's wait."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = predicate()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _require_services() -> bool:
    return os.environ.get("HPO_REQUIRE_SERVICES") == "1"


def service_unavailable(what: str, why: str):
    """Skip, or fail when services are required."""
    msg = f"{what} unavailable: {why}"
    if _require_services():
        pytest.fail(f"{msg} (HPO_REQUIRE_SERVICES=1)")
    pytest.skip(msg)


def pytest_configure(config):
    """Under pytest-xdist each worker is one of several processes sharing the cores: torch's intra-op threads (one
    per core by default) would oversubscribe them, and OpenMP's spinning threads then starve the other worker's
    subprocesses (a 19 s test took 94 s). One thread per worker, inherited by the processes its tests start; a
    spec's own [train] threads still applies inside them."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
        import torch

        torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    """Modules with `slow` tests run first, those with the most first, and in each module its `slow` tests first:
    pytest-xdist's worksteal (the README's test command) splits the tests in this order and an idle worker steals
    from the end of the other's queue, so the long tests never wait to the end with one worker busy alone (the
    25 s `quick` subprocess, in the middle of its module, started last and ran 21 s alone). A module stays in one
    piece, so its module-scoped fixtures are built once. Tests marked `cuda` compare the GPU path with the CPU
    one; without a GPU they are skipped."""
    slow: dict[str, int] = {}  # module -> its number of slow tests, in the order the modules were collected
    for item in items:
        slow[item.module.__name__] = slow.get(item.module.__name__, 0) + bool(item.get_closest_marker("slow"))
    place = {module: (-count, i) for i, (module, count) in enumerate(slow.items())}
    items.sort(key=lambda item: (place[item.module.__name__], not item.get_closest_marker("slow")))  # stable
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the shared PostgreSQL, checked to answer."""
    import sqlalchemy as sa

    url = os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL)
    try:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
    except Exception as e:  # any driver or network failure means "not available here"
        service_unavailable("PostgreSQL", f"{type(e).__name__}: {e}")
    return url


@pytest.fixture
def fresh_postgres_url(postgres_url):
    """A private schema-free database on the shared server, dropped afterwards, so tests never collide."""
    import sqlalchemy as sa

    name = f"hpo_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request, tmp_path):
    """One test body over the embedded SQLite default and the real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hpo.db'}"
    return request.getfixturevalue("fresh_postgres_url")


CHROMIUM = "/usr/bin/chromium"  # Debian's package; Playwright never downloads a browser here


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """Path of the system Chromium for Playwright, checked to exist with Playwright importable."""
    if not os.path.exists(CHROMIUM):
        service_unavailable("Chromium", f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as e:
        service_unavailable("Playwright", f"{e} (pip install -e '.[dev]')")
    return CHROMIUM
