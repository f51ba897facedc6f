"""The head of a response: the status line and framing headers come from h11 (which keeps
the connection's state from them); the app's other headers are checked here, once, and
written after them. h11 runs two regular expressions per header, a measurable part of an
answer that carries a dozen rate-limit headers."""

from __future__ import annotations

import email.utils
import re
import time
from functools import lru_cache
from typing import Any

import h11

SERVER_LINE = b"\r\nserver: continuum\r\n"
# headers h11 must see: they decide how the body is framed and whether the connection stays
FRAMING = frozenset({"content-length", "transfer-encoding", "connection"})
# RFC 9110 section 5.1: a field name is a token; section 5.5: a field value holds no CR, LF
# or NUL and has no leading or trailing whitespace (what h11 checks)
_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class BadHeader(h11.LocalProtocolError):
    """A header of the app's answer that cannot be sent (an app bug)."""


@lru_cache(maxsize=1024)
def _field_name(name: str) -> bytes:
    try:
        raw = name.encode("latin-1")
    except UnicodeEncodeError:
        raw = b""
    if not _TOKEN.fullmatch(raw):
        raise BadHeader(f"illegal header name {name!r}")
    return raw


@lru_cache(maxsize=4096)  # most values repeat (limits, reset times within a second)
def field_line(name: str, value: str) -> bytes:
    return _field_name(name) + b": " + field_value(name, value) + b"\r\n"


def field_value(name: str, value: str) -> bytes:
    # a printable value needs no further look (a regular expression per header costs several
    # times more); others may hold a tab or obs-text (RFC 9110 section 5.5), never another
    # control character
    if not value.isprintable() and _CONTROL.search(value):
        raise BadHeader(f"illegal value for header {name!r}")
    if value and (value[0] in " \t" or value[-1] in " \t"):
        raise BadHeader(f"illegal value for header {name!r}")
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        raise BadHeader(f"header {name!r} has characters outside latin-1") from None


_date_cache: list[Any] = [0, b""]  # (second, formatted): one formatdate per second, not request


def date_header() -> bytes:
    second = int(time.time())
    if second != _date_cache[0]:
        _date_cache[:] = [second, email.utils.formatdate(second, usegmt=True).encode()]
    return _date_cache[1]  # type: ignore[no-any-return]


def response_event(status: int, framing: list[tuple[bytes, bytes]]) -> h11.Response:
    """h11's Response for the framing headers; an illegal one (a bad or conflicting
    Content-Length, a Transfer-Encoding other than chunked) is the app's bug: BadHeader,
    before anything is written."""
    try:
        return h11.Response(status_code=status, headers=framing)
    except h11.LocalProtocolError as exc:
        raise BadHeader(f"illegal framing header: {exc}") from None


def framing_header(name: str, value: str) -> tuple[bytes, bytes]:
    return _field_name(name), field_value(name, value)
