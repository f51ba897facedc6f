"""Raw-socket HTTP helpers for tests that need bytes the HTTP clients will not send."""

from __future__ import annotations

import socket


def exchange(port: int, data: bytes, *, until: bytes | None = None,
             timeout: float = 5.0) -> bytes:
    """Send `data` to 127.0.0.1:`port`; read until `until` appears, EOF, or the timeout."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.sendall(data)
    out = b""
    try:
        while until is None or until not in out:
            piece = sock.recv(65536)
            if not piece:
                break
            out += piece
    except (TimeoutError, ConnectionResetError):
        pass
    sock.close()
    return out


def post_bytes(path: str, body: bytes) -> bytes:
    """A complete POST request with a JSON body and Content-Length."""
    return (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\ncontent-type: application/json"
            b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
