"""doctor takes an embedded backend's load time from the running router's /health."""

from __future__ import annotations

import pytest

from continuum_cli.doctor.runner import _load_seconds


@pytest.mark.parametrize("health,expected", [
    ({"backends": [{"name": "embedded", "load_seconds": 1.25}]}, 1.25),
    ({"backends": [{"name": "other", "load_seconds": 3}]}, None),
    ({"backends": [{"name": "embedded"}]}, None),
    (None, None),
    ("not json", None),
])
def test_load_seconds_from_health(health, expected) -> None:
    assert _load_seconds(health, "embedded") == expected
