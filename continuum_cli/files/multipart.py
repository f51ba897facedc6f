"""A streaming multipart/form-data parser (RFC 7578 on RFC 2046 §5.1), sans-I/O.

Fed the body in pieces of any size (`feed(data) -> events`), it hands the content of each
part on as it arrives, so an upload of hundreds of megabytes is never held in memory: at
most one delimiter's length of it is kept back, because a delimiter may be split across
pieces. `close()` at the end of the body checks that the closing delimiter was seen.

Events: `PartStart` (name, filename, content type), `PartData` (a piece of the content) and
`PartEnd`. Bounds: a part's header block (`max_header_bytes`), the number of parts
(`max_parts`), the padding after a delimiter. Anything malformed raises `MultipartError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PARAM = re.compile(rf';\s*({_TOKEN})\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
_MAX_PADDING = 256  # RFC 2046 allows linear whitespace after a delimiter, not a novel


class MultipartError(ValueError):
    """The body is not well-formed multipart/form-data (or breaks a bound)."""


@dataclass(frozen=True)
class PartStart:
    name: str
    filename: str | None
    content_type: str | None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PartData:
    data: bytes


@dataclass(frozen=True)
class PartEnd:
    pass


Event = PartStart | PartData | PartEnd


def boundary_of(content_type: str) -> bytes:
    """The boundary of a `multipart/form-data; boundary=...` Content-Type."""
    kind, _, rest = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        raise MultipartError(f"expected a multipart/form-data body, not "
                             f"{kind.strip() or 'no content type'}")
    boundary = _params(";" + rest).get("boundary", "")
    if not 1 <= len(boundary) <= 70:  # RFC 2046 §5.1.1
        raise MultipartError("the multipart/form-data content type has no valid boundary")
    return boundary.encode("latin-1")


def _params(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, raw in _PARAM.findall(text):
        value = raw.strip()
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        found.setdefault(name.lower(), value)
    return found


def _filename(params: dict[str, str]) -> str | None:
    extended = params.get("filename*")  # RFC 5987: charset'lang'percent-encoded
    if extended and extended.count("'") >= 2:
        charset, _language, encoded = extended.split("'", 2)
        try:
            return unquote(encoded, encoding=charset or "utf-8", errors="strict")
        except (LookupError, UnicodeDecodeError):
            pass
    return params.get("filename")


class MultipartParser:
    def __init__(self, boundary: bytes, *, max_header_bytes: int = 16 * 1024,
                 max_parts: int = 64) -> None:
        self.delimiter = b"\r\n--" + boundary
        self.max_header_bytes = max_header_bytes
        self.max_parts = max_parts
        self.parts = 0
        # a CRLF in front makes the first delimiter look like every other one
        self._buffer = bytearray(b"\r\n")
        self._state = "preamble"

    @property
    def done(self) -> bool:
        return self._state == "epilogue"

    def feed(self, data: bytes) -> list[Event]:
        if self._state == "epilogue":
            return []  # anything after the closing delimiter is ignored (RFC 2046)
        self._buffer += data
        events: list[Event] = []
        while self._step(events):
            pass
        return events

    def close(self) -> list[Event]:
        if self._state != "epilogue":
            raise MultipartError("the multipart body ended before its closing boundary")
        return []

    def _step(self, events: list[Event]) -> bool:
        """One move of the state machine; False when more data is needed."""
        if self._state == "preamble":
            return self._skip_to_delimiter()
        if self._state == "after_delimiter":
            return self._after_delimiter()
        if self._state == "headers":
            return self._headers(events)
        if self._state == "data":
            return self._data(events)
        return False

    def _skip_to_delimiter(self) -> bool:
        at = self._buffer.find(self.delimiter)
        if at < 0:
            keep = len(self.delimiter) - 1
            if len(self._buffer) > keep:
                del self._buffer[:len(self._buffer) - keep]
            return False
        del self._buffer[:at + len(self.delimiter)]
        self._state = "after_delimiter"
        return True

    def _after_delimiter(self) -> bool:
        if len(self._buffer) < 2:
            return False
        if self._buffer[:2] == b"--":
            self._state = "epilogue"
            self._buffer.clear()
            return False
        end = self._buffer.find(b"\r\n")
        if end < 0:
            if len(self._buffer) > _MAX_PADDING:
                raise MultipartError("malformed multipart boundary line")
            return False
        if self._buffer[:end].strip(b" \t"):
            raise MultipartError("malformed multipart boundary line")
        del self._buffer[:end + 2]
        self.parts += 1
        if self.parts > self.max_parts:
            raise MultipartError(f"too many parts in the multipart body (at most "
                                 f"{self.max_parts})")
        self._state = "headers"
        return True

    def _headers(self, events: list[Event]) -> bool:
        if self._buffer[:2] == b"\r\n":
            block, used = b"", 2  # a part without headers
        else:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > self.max_header_bytes:
                    raise MultipartError("a multipart part's headers are too large")
                return False
            block, used = bytes(self._buffer[:end]), end + 4
        if used > self.max_header_bytes:
            raise MultipartError("a multipart part's headers are too large")
        del self._buffer[:used]
        events.append(_part_start(block))
        # the part's content starts here; its end is the next delimiter
        self._state = "data"
        return True

    def _data(self, events: list[Event]) -> bool:
        at = self._buffer.find(self.delimiter)
        if at < 0:
            keep = len(self.delimiter) - 1
            if len(self._buffer) > keep:
                cut = len(self._buffer) - keep
                events.append(PartData(bytes(self._buffer[:cut])))
                del self._buffer[:cut]
            return False
        if at:
            events.append(PartData(bytes(self._buffer[:at])))
        events.append(PartEnd())
        del self._buffer[:at + len(self.delimiter)]
        self._state = "after_delimiter"
        return True


def _part_start(block: bytes) -> PartStart:
    headers = []
    for line in block.decode("utf-8", errors="replace").split("\r\n"):
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise MultipartError(f"malformed multipart header line: {line[:80]!r}")
        headers.append((name.strip().lower(), value.strip()))
    found = dict(headers)
    disposition = found.get("content-disposition", "")
    kind = disposition.partition(";")[0].strip().lower()
    if kind != "form-data":
        raise MultipartError("a multipart part has no Content-Disposition: form-data header")
    params = _params(disposition[disposition.find(";"):] if ";" in disposition else "")
    if "name" not in params:
        raise MultipartError("a multipart part has no field name")
    return PartStart(params["name"], _filename(params), found.get("content-type"),
                     tuple(headers))
