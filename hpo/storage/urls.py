"""Storage URLs: which one a command uses, what it names (an in-memory SQLite, a file), and how to print it
without its password, whatever form the password takes."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote, unquote, unquote_plus

import sqlalchemy as sa

from hpo.storage.guard import StorageError

STORAGE_ENV = "HPO_STORAGE"
DEFAULT_URL = "sqlite:///hpo.db"
# Query parameters some drivers read a password from (e.g. postgresql://u@host/db?password=...).
SECRET_QUERY_KEYS = ("password", "passwd", "pwd")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")


def resolve_url(cli_value: str | None = None) -> str:
    """--storage if given, else $HPO_STORAGE, else sqlite:///hpo.db."""
    return cli_value or os.environ.get(STORAGE_ENV) or DEFAULT_URL


# A password= query value runs to the next parameter (&key= or ;key=) or the end: it may hold '@', '&' or '#'.
_SECRET_QUERY = re.compile(rf"[?&;](?:{'|'.join(SECRET_QUERY_KEYS)})=(.*?)(?=[&;][A-Za-z_][\w.-]*=|$)", re.I | re.S)
# What may follow the user info: host (or [IPv6]), a numeric port, a /database and a ?query without '@'. After a
# user:password the /database is required: "u:ab@cd" may be password "ab@cd" with its host left out.
_HOST_PORT, _DATABASE, _QUERY = r"(\[[0-9A-Fa-f:.]*\]|[^/?#:@\[\]\s]*)(:\d*)?", r"/[^?#:@\s]*", r"(\?[^#@\s]*)?"
_PLAIN_AFTER_USER = re.compile(f"{_HOST_PORT}({_DATABASE})?{_QUERY}")
_PLAIN_AFTER_PASSWORD = re.compile(f"{_HOST_PORT}{_DATABASE}{_QUERY}")


def _layout(url: str) -> tuple[int, int, int, bool]:
    """Where a URL's parts sit, found without parsing it (so an unparsable URL is covered too): (start, at, end,
    plain). start: after "://" (0 without one); end: where the first password= query parameter begins (else the
    URL's end); at: the LAST '@' between them (-1: none), which ends the user info, so a password holding '@', ':'
    or '/' is taken whole; plain: whether the text from the user info to `end` reads as
    host[:port][/database][?query] and nothing else, the /database required after a password. When it does not
    ("u:S3cr@t/pw:x#?" or "u:ab@cd": a raw '@' in a password, and perhaps no host after it), nobody can tell
    where the password ends.
    """
    start = url.find("://") + 3 if "://" in url else 0
    query = _SECRET_QUERY.search(url, start)
    end = query.start() if query else len(url)
    at = url.rfind("@", start, end)
    after = _PLAIN_AFTER_PASSWORD if ":" in url[start : max(at, start)] else _PLAIN_AFTER_USER
    return start, at, end, after.fullmatch(url, at + 1 if at >= 0 else start, end) is not None


def _password_spans(url: str) -> list[tuple[int, int]]:
    """Where passwords sit in the URL's text (_layout), merged and in order. A password runs from the first ':'
    of the user info to its '@', and to the URL's end when what follows is not plainly a host: then it may be
    the password's own tail. password= query values count as well."""
    start, at, end, plain = _layout(url)
    spans = [m.span(1) for m in _SECRET_QUERY.finditer(url, start)]
    colon = url.find(":", start, at if at >= 0 else end)
    if colon >= 0 and not url.startswith("sqlite"):  # a SQLite path may hold ':' and '@'
        if not plain:
            spans.append((colon + 1, len(url)))
        elif at >= 0:
            spans.append((colon + 1, at))
    merged: list[tuple[int, int]] = []
    for begin, stop in sorted(spans):
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(stop, merged[-1][1]))
        else:
            merged.append((begin, stop))
    return merged


def mask(url: str, text: str | None = None) -> str:
    """The URL fit to print, every password in it replaced by ***. With `text` (a driver's message): that text
    with each form of the URL's password (as typed, percent-decoded, re-encoded) replaced by ***, or a note in
    its place when some 3-character piece of the password is still in it (a host name cut from a mistyped URL).

    The one place passwords are hidden: every URL and storage error this project prints goes through it.
    """
    spans = _password_spans(url)
    if text is None:
        shown, last = [], 0
        for begin, end in spans:
            shown += [url[last:begin], "***"]
            last = end
        return "".join(shown) + url[last:]
    typed = [url[begin:end] for begin, end in spans]
    forms = {form for p in typed for form in (p, unquote(p), unquote_plus(p), quote(unquote(p), safe=""))}
    for form in sorted(forms, key=len, reverse=True):
        if len(form) >= 3:  # a shorter one is no secret worth garbling every message for
            text = text.replace(form, "***")
    if any(form[i : i + 3] in text for form in forms for i in range(len(form) - 2)):
        return "(details withheld: they quote part of the password)"
    return text


def parse_url(url: str) -> sa.engine.URL:
    """The URL as SQLAlchemy takes it; the user info ends at the last '@' before any password= query (_layout).
    A URL whose host cannot be told from its password is refused rather than guessed."""
    try:
        scheme, sep, rest = url.partition("://")
        if not sep or not _SCHEME.fullmatch(scheme):
            raise ValueError("no scheme")
        start, at, _, plain = _layout(url)
        if scheme.startswith("sqlite") or at < 0:  # a file path may hold an '@'; it is no user info
            return sa.engine.make_url(url)
        if not plain:
            raise StorageError(
                f"cannot parse storage URL {mask(url)}: where the password ends is unclear; write "
                "USER:PASSWORD@HOST[:PORT]/DATABASE with the password percent-encoded (urllib.parse.quote(password, "
                "safe=''))"
            )
        user, has_password, password = url[start:at].partition(":")
        parsed = sa.engine.make_url(f"{scheme}://{url[at + 1 :]}")
        return parsed.set(username=unquote(user) or None, password=unquote(password) if has_password else None)
    except (sa.exc.ArgumentError, ValueError) as e:
        # Without an '@' nothing marks a password, and "postgresql://user:secret" may well hold one: scheme only.
        shown = f"{scheme}://..." if sep and _SCHEME.fullmatch(scheme) else "(hidden)"
        if _password_spans(url):
            shown = mask(url)
        raise StorageError(f"cannot parse storage URL {shown}: expected e.g. sqlite:///hpo.db") from e


def in_memory(url: str) -> bool:
    """Whether the URL names an in-memory SQLite database (sqlite://, sqlite:///:memory:, mode=memory): each
    process that opens it gets its own, which dies with it."""
    parsed = parse_url(url)
    memory = parsed.database in (None, "", ":memory:") or parsed.query.get("mode") == "memory"
    return parsed.get_backend_name() == "sqlite" and memory


def sqlite_file(url: str) -> Path | None:
    """The database file of a sqlite URL, None for other backends or in-memory SQLite."""
    if parse_url(url).get_backend_name() != "sqlite" or in_memory(url):
        return None
    return Path(parse_url(url).database)
