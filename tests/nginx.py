"""A real nginx (the OS package; `.ci/run` installs it) as a round-robin load balancer in front
of several routers, on a free loopback port, with every path inside a temp dir.

    with Nginx(tmp_path, ["http://127.0.0.1:8001", "http://127.0.0.1:8002"]) as lb:
        httpx.get(lb.url + "/health")
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.redis_server import free_port

CONF = """
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
daemon off;
events {{ worker_connections 256; }}
http {{
  access_log {dir}/access.log;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  upstream routers {{
{servers}
    keepalive 16;
  }}
  server {{
    listen 127.0.0.1:{port};
    client_max_body_size 64m;
    location / {{
      proxy_pass http://routers;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;            # streams pass through as they are produced
      proxy_read_timeout 600s;
      proxy_next_upstream off;        # a request is answered by one replica, never retried
    }}
  }}
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                      else None)
    if found is None:
        pytest.fail("nginx is not installed (apt-get install nginx; .ci/run installs it)")
    return found


class Nginx:
    def __init__(self, workdir: Path, backends: list[str]) -> None:
        self.dir = workdir
        self.port = free_port()
        self.backends = backends
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Nginx:
        self.dir.mkdir(parents=True, exist_ok=True)
        servers = "\n".join(f"    server {b.removeprefix('http://')};" for b in self.backends)
        conf = self.dir / "nginx.conf"
        conf.write_text(CONF.format(dir=self.dir, servers=servers, port=self.port))
        self.proc = subprocess.Popen([nginx_binary(), "-c", str(conf), "-p", str(self.dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.proc.stderr.read().decode()}")
            try:
                httpx.get(self.url + "/health", timeout=2)
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
