"""Run inside a fresh network namespace (`unshare -n`): the router listens on every address,
and /metrics is fetched from 127.0.0.1 and from a second, non-loopback address of the
namespace's own `lo`. Prints {"<case>": {"loopback": status, "other": status}} as JSON."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import httpx

from tests.router import RouterThread, settings_for

OTHER = "10.203.0.1"  # exists only inside this namespace


def serve(config: dict) -> RouterThread:
    router = RouterThread(settings_for(config))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", 0))
    router._sock.close()
    router._sock, router.port = sock, sock.getsockname()[1]
    return router.start()


def probe(config: dict) -> dict[str, int]:
    router = serve(config)
    try:
        statuses = {}
        for name, host in (("loopback", "127.0.0.1"), ("other", OTHER)):
            resp = httpx.get(f"http://{host}:{router.port}/metrics", timeout=10)
            statuses[name] = resp.status_code
            if resp.status_code != 200:
                statuses[name + "_type"] = resp.json()["error"]["type"]
        return statuses
    finally:
        router.stop()


def main() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "addr", "add", f"{OTHER}/8", "dev", "lo"], check=True)
    keys = {"mode": "blocking", "keys": [{"key": "k1"}]}
    print(json.dumps({
        "blocking": probe({"api_keys": keys}),
        "blocking_public": probe({"api_keys": keys, "server": {"metrics_public": True}}),
        "permissive": probe({}),
    }))


if __name__ == "__main__":
    sys.exit(main())
