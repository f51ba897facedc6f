"""Sans-I/O server-sent-events decoder for upstream OpenAI streams.

Lines split only on CR, LF and CRLF, as the SSE spec requires
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation);
`httpx.Response.aiter_lines()` also splits on other Unicode separators, so we do not use it.
"""

from __future__ import annotations

import codecs
from typing import NamedTuple


class ServerSentEvent(NamedTuple):
    event: str
    data: str


class SSEDecoder:
    """Feed bytes, get complete events. Handles frames split anywhere, comments and `[DONE]`.

    Runs once per upstream event of every translated stream, so the common line
    (`data: ...`) is handled inline and CR handling only runs when a CR was sent.
    """

    def __init__(self) -> None:
        self._buffer = ""  # an incomplete last line (never holds a CR)
        self._pending_cr = False
        self._event = ""
        self._data: list[str] = []
        self._decode = codecs.getincrementaldecoder("utf-8")("replace").decode

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        text = self._decode(chunk)
        if self._pending_cr and text.startswith("\n"):
            text = text[1:]
        if "\r" in text:
            self._pending_cr = text.endswith("\r")
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        else:
            self._pending_cr = False
        if self._buffer:
            text = self._buffer + text
        lines = text.split("\n")
        self._buffer = lines.pop()
        events = []
        for line in lines:
            if line.startswith("data:"):
                self._data.append(line[6:] if line.startswith("data: ") else line[5:])
                continue
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> list[ServerSentEvent]:
        """End of stream: a last frame without its blank line still counts."""
        events = []
        if self._buffer:
            line, self._buffer = self._buffer, ""
            event = self._line(line)
            if event is not None:
                events.append(event)
        event = self._line("")
        return events + ([event] if event is not None else [])

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data and not self._event:
            return None
        data = self._data[0] if len(self._data) == 1 else "\n".join(self._data)
        event = ServerSentEvent(self._event or "message", data)
        self._event, self._data = "", []
        return event
