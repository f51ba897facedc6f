"""The loopback-only rule of /metrics from a real non-loopback peer address: a second address
in a private network namespace (nothing leaves it), as the end-to-end tests do."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _netns_available() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    probe = subprocess.run(["unshare", "-n", "--", "ip", "link", "set", "lo", "up"],
                           capture_output=True)
    return probe.returncode == 0


def test_metrics_served_to_loopback_only_in_blocking_mode() -> None:
    if not _netns_available():
        if os.environ.get("CI"):
            pytest.fail("CI must be able to create a network namespace (unshare -n, ip)")
        pytest.skip("cannot create a network namespace here (unshare -n / ip)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(["unshare", "-n", "--", sys.executable, "-m",
                           "tests.metrics.netns_probe"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["blocking"] == {"loopback": 200, "other": 403,
                                  "other_type": "permission_error"}
    assert result["blocking_public"] == {"loopback": 200, "other": 200}
    assert result["permissive"] == {"loopback": 200, "other": 200}
