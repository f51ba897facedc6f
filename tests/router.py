"""Run the real router (the same `Service` that `continuum serve` runs) on an ephemeral port,
in a background thread with its own event loop, for tests that use synchronous clients."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Mapping
from typing import Any

from continuum_cli.config.loader import validate
from continuum_cli.config.models import Settings


def settings_for(data: Mapping[str, Any] | Settings) -> Settings:
    if isinstance(data, Settings):
        return data
    return validate(dict(data))


class RouterThread:
    def __init__(self, settings: Settings, config_path: Any = None) -> None:
        self.settings = settings
        self.config_path = config_path  # a file: the router reloads it (SIGHUP, on change)
        self.loop = asyncio.new_event_loop()
        self.service: Any = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._sock = sock
        self.port = sock.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def anthropic_url(self) -> str:
        return self.url + "/anthropic"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            from continuum_cli.service import Service

            self.service = Service(self.settings, config_path=self.config_path)
            self.loop.run_until_complete(self.service.start(sock=self._sock))
        except BaseException as exc:  # surfaced to the test by start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()

    def start(self) -> RouterThread:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self.service is not None and self.loop.is_running():
            self.call(self.service.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def __enter__(self) -> RouterThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
