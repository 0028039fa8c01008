"""`hpo dashboard`: optuna-dashboard on the study storage and the artifact store, until Ctrl-C."""

from __future__ import annotations

import socket
from typing import Annotated

import typer

from core.errors import CovblendError
from hpo.cli.common import Artifacts, Storage
from hpo.console import say, warn
from hpo.results.dashboard import serve
from hpo.run.signals import handling, interrupt
from hpo.storage import open_storage
from hpo.storage.artifacts import open_store
from hpo.storage.urls import mask, resolve_url

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def dashboard(
    storage: Storage = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to bind; anything but localhost is public.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port to listen on.")] = 8080,
    artifacts: Artifacts = None,
) -> None:
    """Start optuna-dashboard on the same storage (blocks until Ctrl-C or SIGTERM)."""
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)  # before the store folder is made
    except OSError as e:  # socket.gaierror: a name that does not resolve
        raise CovblendError(f"cannot listen on --host {host!r}: {e.strerror}") from None
    url = resolve_url(storage)
    opened = open_storage(url, create=False, heartbeat=False)
    store = open_store(artifacts)  # the trial pages list and serve the checkpoints in it
    if host not in LOCAL_HOSTS:
        warn(f"binding to {host}: anyone who can reach it can edit and delete studies")
    say(f"dashboard for {mask(url)} at http://{host}:{port}/")
    try:  # SIGTERM (`docker stop`; ignored by default in a container's process 1) and SIGHUP stop it as Ctrl-C does
        with handling(interrupt):
            serve(opened, store, host=host, port=port)
    except KeyboardInterrupt:
        say("dashboard stopped")
    except OSError as e:  # the port is taken, or below 1024 without the right to bind it
        raise CovblendError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
