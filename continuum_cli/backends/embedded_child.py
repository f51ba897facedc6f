"""Child process of the embedded backend: llama.cpp's own HTTP server, through `xllamacpp`.

Run as `python -m continuum_cli.backends.embedded_child`. The parent (`embedded.py`) writes one
JSON line of settings on stdin, this process loads the model, starts the server and answers one
JSON line on stdout: `{"event": "ready", "url": ..., "seconds": ...}` or
`{"event": "failed", "error": ...}`. It then lives until its stdin closes, so it never outlives
the router, even when the router is killed.

Why a process and not a thread: `xllamacpp.Server()` holds the GIL for the whole model load
(measured: no other Python thread ran during a 0.9 s SmolLM2 load), which would freeze the
router's event loop, and `/health` could not answer "loading". llama.cpp's log goes to stderr.

Only the standard library and `xllamacpp` are imported here, so the child starts fast.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from typing import Any


def _params(cfg: dict[str, Any]) -> Any:
    """Build `xllamacpp.CommonParams` from the parent's settings."""
    import xllamacpp as xlc

    p = xlc.CommonParams()
    p.model.path = cfg["model_path"]
    p.hostnames = [cfg.get("host", "127.0.0.1")]
    p.port = int(cfg.get("port", 0))  # 0: the OS picks a free port
    p.model_alias = set(cfg["aliases"])
    p.n_ctx = int(cfg["n_ctx"])
    # One slot gets the whole context: overflow then means "prompt > n_ctx", as configured.
    p.n_parallel = 1
    p.use_jinja = True  # OpenAI `tools`/`tool_calls` need the Jinja chat template
    if cfg.get("chat_template"):  # llama.cpp's --chat-template-file, read by the parent
        p.chat_template = cfg["chat_template"]
    p.cpuparams.n_threads = int(cfg["threads"])
    p.cpuparams_batch.n_threads = int(cfg["threads"])
    p.verbosity = int(cfg.get("verbosity", 1))  # 1: errors only; 3: llama.cpp's full log
    if cfg.get("api_key"):
        p.api_keys = [cfg["api_key"]]
    return p


def _say(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def main() -> int:
    """Load, report, then wait for stdin to close."""
    # Ctrl-C in a terminal reaches the whole process group; the router decides when we stop
    # (it closes our stdin after its graceful shutdown), so in-flight requests can finish.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cfg = json.loads(sys.stdin.readline() or "{}")
    started = time.monotonic()
    try:
        import xllamacpp as xlc

        server = xlc.Server(_params(cfg))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises
        _say({"event": "failed", "error": f"{type(exc).__name__}: {exc}"})
        return 1
    _say({"event": "ready", "url": server.listening_address,
          "seconds": round(time.monotonic() - started, 3)})
    while sys.stdin.readline():  # EOF: the parent closed the pipe or died
        pass
    del server  # ~Server stops llama.cpp's HTTP loop before exit
    return 0


if __name__ == "__main__":
    sys.exit(main())
