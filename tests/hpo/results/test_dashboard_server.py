"""hpo.results.dashboard: the layout rule goes into HTML pages only, with a Content-Length that fits; Ctrl-C
during a request stops the server."""

from __future__ import annotations

import threading
import urllib.request

import pytest

from hpo.results.dashboard import FIT_WINDOW_CSS, fit_window, make_dashboard_server


def upstream(content_type: str, body: bytes):
    """A WSGI app answering every request with `body` as `content_type`."""

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return [body]

    return app


def call(app) -> tuple[str, dict[str, str], bytes]:
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen.update(status=status, headers=dict(headers))

    body = b"".join(app({"REQUEST_METHOD": "GET", "PATH_INFO": "/dashboard"}, start_response))
    return seen["status"], seen["headers"], body


def test_html_page_gets_the_rule_in_its_head_and_a_matching_length():
    status, headers, body = call(fit_window(upstream("text/html; charset=UTF-8", b"<html><head></head></html>")))
    assert status == "200 OK"
    assert body == f"<html><head><style>{FIT_WINDOW_CSS}</style></head></html>".encode()
    assert headers["Content-Length"] == str(len(body))


def test_other_responses_pass_untouched():
    json = b'{"head": "</head>"}'
    _, headers, body = call(fit_window(upstream("application/json", json)))
    assert body == json
    assert headers["Content-Length"] == str(len(json))


def test_ctrl_c_inside_a_request_stops_the_server_without_a_traceback(capfd):
    def interrupted(environ, start_response):
        raise KeyboardInterrupt  # what SIGINT does when it lands while the dashboard answers a request

    server = make_dashboard_server(interrupted, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    client = threading.Thread(target=_get, args=(url,))
    client.start()
    with server, pytest.raises(KeyboardInterrupt):
        server.handle_request()
    client.join(timeout=30)
    assert "Traceback" not in capfd.readouterr().err


def _get(url: str) -> None:
    try:
        urllib.request.urlopen(url, timeout=30).read()
    except OSError:  # the server closed the connection: there is no response to a stopped server
        pass
