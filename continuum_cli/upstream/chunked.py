"""Chunked transfer coding (RFC 9112 §7.1), decoded sans-I/O: bytes in, body bytes out.

Why not h11's reader: a streamed completion is one chunk per SSE event, and h11 turns every
chunk into a `Data` event through its state machine, about a third of the router's CPU per
relayed event (bench/README.md). h11 still parses and validates the response head; the
transport hands the body to this decoder when h11 would have chosen chunked framing. Every
chunk that has fully or partly arrived is returned as one piece: the stream parsers above
take arbitrary splits.
"""

from __future__ import annotations

import re

_MAX_LINE = 16 * 1024  # a chunk-size line or trailer line longer than this is not HTTP
_MAX_PIECE = 64 * 1024  # body bytes handed up at once
_SIZE = re.compile(rb"[ \t]*([0-9A-Fa-f]{1,16})[ \t]*(;[^\r\n]*)?\r?\n\Z")


class ChunkedError(ValueError):
    """The body is not valid chunked coding."""


class ChunkedDecoder:
    """Feed received bytes with `feed`; `take` returns the body bytes decoded so far."""

    def __init__(self) -> None:
        self._buf = b""
        self._pos = 0
        self._left = 0  # data bytes of the current chunk not yet received
        self._budget = 0  # bytes the current `take` may still return
        self._state = self._size
        self.done = False

    def feed(self, data: bytes) -> None:
        if self._pos:
            self._buf, self._pos = self._buf[self._pos:], 0
        self._buf += data

    @property
    def leftover(self) -> bytes:
        """Bytes after the end of the body (none from a well-behaved server)."""
        return self._buf[self._pos:]

    def take(self, limit: int = _MAX_PIECE) -> bytes:
        """Body bytes decodable from what was fed, at most `limit` (b"" when more input is
        needed or the body ended: check `done`). Raises ChunkedError on malformed coding.

        The limit keeps the work per piece bounded when a fast backend got far ahead of a
        slow reader: a megabyte piece becomes ten thousand events translated in one batch,
        and the CPU per event grows with the batch (bench/README.md, flat per-event cost)."""
        pieces: list[bytes] = []
        self._budget = limit
        while not self.done and self._budget > 0 and self._state(pieces):
            pass
        return b"".join(pieces)

    # each state consumes what it can; False means "need more bytes"

    def _size(self, pieces: list[bytes]) -> bool:
        line = self._line()
        if line is None:
            return False
        match = _SIZE.match(line)
        if match is None:
            raise ChunkedError(f"invalid chunk size line {line[:40]!r}")
        self._left = int(match.group(1), 16)
        self._state = self._data if self._left else self._trailer
        return True

    def _data(self, pieces: list[bytes]) -> bool:
        available = len(self._buf) - self._pos
        if not available:
            return False
        count = min(available, self._left, self._budget)
        self._budget -= count
        pieces.append(self._buf[self._pos:self._pos + count])
        self._pos += count
        self._left -= count
        if not self._left:
            self._state = self._data_end
        return True

    def _data_end(self, pieces: list[bytes]) -> bool:
        end = self._buf[self._pos:self._pos + 2]
        if end == b"\r\n":
            self._pos += 2
        elif end[:1] == b"\n":  # tolerated, as most servers and clients do
            self._pos += 1
        elif len(end) < 2 and end in (b"", b"\r"):
            return False
        else:
            raise ChunkedError("chunk data longer than its size")
        self._state = self._size
        return True

    def _trailer(self, pieces: list[bytes]) -> bool:
        line = self._line()
        if line is None:
            return False
        if not line.strip():  # trailer fields, if any, are dropped: nothing above needs them
            self.done = True
        return True

    def _line(self) -> bytes | None:
        end = self._buf.find(b"\n", self._pos)
        if end < 0:
            if len(self._buf) - self._pos > _MAX_LINE:
                raise ChunkedError("chunk size or trailer line too long")
            return None
        line = self._buf[self._pos:end + 1]
        self._pos = end + 1
        return line
