"""optuna-dashboard as `hpo dashboard` serves it: the upstream WSGI app with one layout fix on its HTML page.

optuna-dashboard 0.21 shows each user attr on one unwrapped line inside a scroll box, but the flex items
around that box keep their default min-width (their content's width), so one long attr (the package versions,
a trial's objective curve) widens the whole page past the window instead of scrolling inside its box.
min-width: 0 on the page's flex boxes lets them shrink to the window; the long line then scrolls where the
dashboard meant it to. The rule is added to the page's <head>; the dashboard's Content-Security-Policy allows
inline styles.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Iterable
from wsgiref.handlers import SimpleHandler
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer, make_server

FIT_WINDOW_CSS = "main, main .MuiBox-root { min-width: 0; }"
STYLE = f"<style>{FIT_WINDOW_CSS}</style></head>".encode()

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


def fit_window(app: WSGIApp) -> WSGIApp:
    """Wrap a WSGI app so that its HTML pages carry FIT_WINDOW_CSS; every other response passes untouched."""

    def wrapped(environ: dict, start_response: Callable) -> Iterable[bytes]:
        held: list = []

        def hold(status: str, headers: list[tuple[str, str]], exc_info=None):
            held[:] = [status, headers, exc_info]
            return lambda data: None  # optuna-dashboard (bottle) never uses the legacy write(); the body is an iterable

        body = app(environ, hold)
        status, headers, exc_info = held
        is_html = any(k.lower() == "content-type" and v.startswith("text/html") for k, v in headers)
        if not is_html:
            start_response(status, headers, exc_info)
            return body
        try:
            page = b"".join(body).replace(b"</head>", STYLE, 1)
        finally:
            getattr(body, "close", lambda: None)()
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        start_response(status, [*headers, ("Content-Length", str(len(page)))], exc_info)
        return [page]

    return wrapped


class _StopOnCtrlC(ServerHandler):
    """wsgiref logs whatever a request raises and serves on, Ctrl-C included (a traceback, and the dashboard
    kept running); a KeyboardInterrupt goes on up instead, out of serve_forever, to `hpo dashboard`'s one line."""

    def handle_error(self) -> None:
        if isinstance(sys.exc_info()[1], KeyboardInterrupt):
            raise  # the exception run() is handling: it closes the connection and re-raises it
        super().handle_error()

    def close(self) -> None:
        if self.status is None:  # stopped before any response: ServerHandler.close would log a None status
            SimpleHandler.close(self)
            return
        super().close()


class _Requests(WSGIRequestHandler):
    """wsgiref's request handler, quiet (no access log) and through _StopOnCtrlC."""

    def log_message(self, format: str, *args) -> None:
        return None

    def handle(self) -> None:
        # WSGIRequestHandler.handle with the handler class swapped: wsgiref names its ServerHandler inline
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.requestline = self.request_version = self.command = ""
            self.send_error(414)
            return
        if not self.parse_request():
            return
        handler = _StopOnCtrlC(self.rfile, self.wfile, self.get_stderr(), self.get_environ(), multithread=False)
        handler.request_handler = self
        handler.run(self.server.get_app())


class _WSGIServer6(WSGIServer):
    address_family = socket.AF_INET6


def make_dashboard_server(app: WSGIApp, host: str, port: int) -> WSGIServer:
    """A single-threaded WSGI server for `app` on host:port (an IPv6 address too), stopped by Ctrl-C."""
    return make_server(
        host, port, app, server_class=_WSGIServer6 if ":" in host else WSGIServer, handler_class=_Requests
    )


def serve(storage, artifact_store, host: str, port: int) -> None:
    """Run optuna-dashboard on `storage` (an Optuna storage) with `artifact_store`, blocking until Ctrl-C."""
    import optuna_dashboard  # lazy: only `hpo dashboard` serves

    with make_dashboard_server(
        fit_window(optuna_dashboard.wsgi(storage, artifact_store=artifact_store)), host, port
    ) as s:
        s.serve_forever()
