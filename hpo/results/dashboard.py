"""optuna-dashboard as `hpo dashboard` serves it: the upstream WSGI app with one layout fix on its HTML page.

optuna-dashboard 0.21 shows each user attr on one unwrapped line inside a scroll box, but the flex items
around that box keep their default min-width (their content's width), so one long attr (the package versions,
a trial's objective curve) widens the whole page past the window instead of scrolling inside its box.
min-width: 0 on the page's flex boxes lets them shrink to the window; the long line then scrolls where the
dashboard meant it to. The rule is added to the page's <head>; the dashboard's Content-Security-Policy allows
inline styles.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

FIT_WINDOW_CSS = "main, main .MuiBox-root { min-width: 0; }"
STYLE = f"<style>{FIT_WINDOW_CSS}</style></head>".encode()

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


def fit_window(app: WSGIApp) -> WSGIApp:
    """Wrap a WSGI app so that its HTML pages carry FIT_WINDOW_CSS; every other response passes untouched."""

    def wrapped(environ: dict, start_response: Callable) -> Iterable[bytes]:
        held: list = []

        def hold(status: str, headers: list[tuple[str, str]], exc_info=None):
            held[:] = [status, headers, exc_info]
            return lambda data: None  # bottle never uses the legacy write(); the body comes back as an iterable

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


def serve(storage, artifact_store, host: str, port: int) -> None:
    """Run optuna-dashboard on `storage` (an Optuna storage) with `artifact_store`, blocking until Ctrl-C."""
    import bottle  # lazy, with optuna_dashboard: only `hpo dashboard` serves
    import optuna_dashboard

    bottle.run(fit_window(optuna_dashboard.wsgi(storage, artifact_store=artifact_store)), host=host, port=port)
