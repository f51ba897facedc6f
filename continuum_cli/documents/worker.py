"""The extraction worker: a child process that turns PDFs into text, one at a time.

Started by `documents/pool.py` as `python -m continuum_cli.documents.worker MEMORY_LIMIT`.
Why a process and not a thread: a hostile PDF (an endless xref chain, a compression bomb,
objects nested a million deep) can keep pypdf busy or growing without bound, and a thread
cannot be stopped; a process can be killed when its time is up, its address space is capped
with `RLIMIT_AS` so a bomb ends in a MemoryError instead of swapping the machine, and it runs
at a lower CPU priority than the router.

The protocol on stdin/stdout is frames of a 4-byte big-endian length and a payload: the
worker writes one `R` byte when ready, then answers each request (a JSON header frame
`{"max_pages": N}` and a frame of PDF bytes) with one JSON frame: `{"ok": true, "text",
"pages", "title"}` or `{"ok": false, "reason", "message"}`.
"""

from __future__ import annotations

import json
import os
import struct
import sys
from typing import IO, Any

READY = b"R"
_LENGTH = struct.Struct(">I")


def frame(payload: bytes) -> bytes:
    return _LENGTH.pack(len(payload)) + payload


def _read_exactly(stream: IO[bytes], size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        part = stream.read(size - len(data))
        if not part:
            return None
        data += part
    return data


def _read_frame(stream: IO[bytes]) -> bytes | None:
    head = _read_exactly(stream, _LENGTH.size)
    if head is None:
        return None
    return _read_exactly(stream, _LENGTH.unpack(head)[0])


def _limit_resources(memory: int) -> None:
    import resource

    try:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    except (ValueError, OSError):  # not every platform enforces RLIMIT_AS (macOS)
        pass
    try:
        os.nice(10)  # a busy worker must not take CPU from the router's event loop
    except OSError:
        pass


def answer(header: dict[str, Any], data: bytes) -> dict[str, Any]:
    from continuum_cli.documents.pdf import Unreadable, extract

    try:
        result = extract(data, int(header.get("max_pages", 100)))
    except Unreadable as exc:
        return {"ok": False, "reason": exc.reason, "message": exc.message}
    return {"ok": True, "text": result.text, "pages": result.pages, "title": result.title}


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> int:
    import pypdf  # noqa: F401  (loaded before READY, so the first document does not wait)

    stdout.write(READY)
    stdout.flush()
    while True:
        header = _read_frame(stdin)
        data = _read_frame(stdin) if header is not None else None
        if header is None or data is None:
            return 0
        try:
            reply = answer(json.loads(header), data)
        except MemoryError:
            reply = {"ok": False, "reason": "too_large",
                     "message": "reading it needs more memory than documents.memory_limit "
                                "allows"}
        stdout.write(frame(json.dumps(reply).encode()))
        stdout.flush()


def main(argv: list[str]) -> int:
    _limit_resources(int(argv[1]) if len(argv) > 1 else 2**30)
    return serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
