"""Every storage call has a deadline (DESIGN §7).

A database server that stops answering in the middle of a call (frozen by SIGSTOP, a host that hangs while its
kernel still acknowledges packets, so TCP keepalives see nothing wrong) would hold the caller for ever: the
driver waits on its socket without a limit. A Watchdog, one per GuardedStorage, knows every DB-API connection of
its engine; a call that has not returned `seconds` after it started has the sockets of those connections shut
down from the watchdog's thread, so the waiting driver fails at once with a connection error. The call is then
retried like any outage (hpo.storage.guard.retry_transient), on new connections whose opening is bounded by the
connect timeout, until the outage limit ends it with one line. SQLite has no socket: its lock wait is bounded by
its own busy timeout instead.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

CALL_S = 30  # a call that has not returned after this many seconds is cut ($HPO_CALL_TIMEOUT_S)
TICK_S = 0.2  # how often the watchdog looks at the calls under way


_limit = threading.local()  # this thread's patience, once impatient() set it
_watchdogs: weakref.WeakSet = weakref.WeakSet()  # every live Watchdog, which impatient() hurries


def impatient(seconds: float | None) -> None:
    """From now on, this thread's storage calls give up after `seconds` (None: the defaults again): each
    attempt's deadline and the retries of an outage (hpo.storage.guard.retry_transient) alike. A worker told to
    stop sets it, so a database that does not answer delays the exit by seconds, not minutes. Once one call has
    given up under it (give_up), the thread's later calls give up at once: a stop's several writes (Optuna's FAIL,
    ours, the parent's for each dead worker) share its patience instead of each waiting it out."""
    _limit.seconds = seconds
    _limit.gave_up = None
    if seconds is not None:  # an attempt already waiting on a socket is cut by then too, not at its own deadline
        for watchdog in list(_watchdogs):
            watchdog.hurry(seconds)


def limit(default: float) -> float:
    """`default`, or this thread's impatient() limit when it is shorter."""
    seconds = getattr(_limit, "seconds", None)
    return default if seconds is None else min(default, seconds)


def give_up(what: str) -> None:
    """The storage call `what` of this thread gave up; if the thread is impatient, its later calls will not try."""
    if getattr(_limit, "seconds", None) is not None:
        _limit.gave_up = what


def given_up() -> str | None:
    """The call this impatient thread gave up on, after which it tries no other; None when there is none."""
    return getattr(_limit, "gave_up", None)


def _fileno(dbapi_connection) -> int | None:
    """The socket of a DB-API connection: psycopg and psycopg2 name it, PyMySQL keeps it; None for SQLite and for
    a closed connection (psycopg's fileno() raises its OperationalError then, which would end the watchdog's
    thread with a traceback on stderr)."""
    try:
        if callable(getattr(dbapi_connection, "fileno", None)):
            return dbapi_connection.fileno()
        sock = getattr(dbapi_connection, "_sock", None)
        return sock.fileno() if sock is not None else None
    except Exception:  # each driver has its own error for a closed connection
        return None


class Watchdog:
    """Cuts the connections of calls that outlive `seconds`; `bounded()` marks one call of the calling thread."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.connections: weakref.WeakSet = weakref.WeakSet()  # the engine's live DB-API connections
        self._deadlines: dict[int, float] = {}  # thread id -> when its call under way is cut
        self._cut: set[int] = set()  # threads whose attempt under way has been cut (once is enough)
        # Re-entrant: impatient() hurries from a stop signal's handler, which may land inside this thread's bounded().
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        _watchdogs.add(self)

    def watch(self, dbapi_connection, connection_record=None) -> None:
        """SQLAlchemy's pool "connect" event: a new connection of the engine (one without a socket, SQLite's,
        has nothing to cut)."""
        if _fileno(dbapi_connection) is not None:
            self.connections.add(dbapi_connection)

    @contextmanager
    def bounded(self) -> Iterator[None]:
        """The block is one attempt of a storage call by this thread; one nested in it has its own deadline, and
        the outer one's comes back after it."""
        key = threading.get_ident()
        with self._lock:
            outer = self._deadlines.get(key)
            self._deadlines[key] = time.monotonic() + limit(self.seconds)
            self._cut.discard(key)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="hpo-storage-watchdog", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._cut.discard(key)
                if outer is None:
                    self._deadlines.pop(key, None)
                else:
                    self._deadlines[key] = outer

    def connect(self, dialect, connection_record, cargs, cparams):
        """SQLAlchemy's "do_connect" event: a connection opened inside an attempt waits what is left of the
        attempt's deadline, not the whole connect timeout. On a frozen server the pool's ping of a pooled
        connection is cut at the deadline and the pool opens a new one at once, in the same attempt: without this
        bound a stop's first write waited its patience and then the connect timeout (10 s). None: the driver's
        own connect, unchanged.

        The bound is the `connect_timeout` that hpo.storage.CONNECT_ARGS gives psycopg, psycopg2, PyMySQL and
        mysqlclient, which bounds the connect and nothing after it; pg8000 has none (its `timeout` stays the
        socket's for the connection's life) and is left alone."""
        with self._lock:
            deadline = self._deadlines.get(threading.get_ident())
        if deadline is None or "connect_timeout" not in cparams:
            return None
        seconds = max(1, math.ceil(deadline - time.monotonic()))  # 1: one try even when the deadline has passed
        if seconds >= float(cparams["connect_timeout"]):  # a URL's own ?connect_timeout= comes as text
            return None
        return dialect.connect(*cargs, **{**cparams, "connect_timeout": seconds})  # the engine's cparams: unchanged

    def hurry(self, seconds: float) -> None:
        """The calling thread's attempt under way, if any, is cut `seconds` from now at the latest."""
        key = threading.get_ident()
        with self._lock:
            if key in self._deadlines:
                self._deadlines[key] = min(self._deadlines[key], time.monotonic() + seconds)

    def _run(self) -> None:
        while True:
            time.sleep(TICK_S)
            now = time.monotonic()
            with self._lock:
                late = [key for key, deadline in self._deadlines.items() if deadline <= now and key not in self._cut]
                self._cut.update(late)  # cut once; the retry that follows arms its own deadline
            if late:
                self.cut()

    def cut(self) -> None:
        """Shut down every connection's socket: whatever waits on one fails now, and the pool replaces it."""
        for connection in list(self.connections):
            fd = _fileno(connection)
            if fd is None or fd < 0:
                continue
            try:
                with socket.socket(fileno=os.dup(fd)) as sock:
                    sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # closed meanwhile: nothing waits on it
