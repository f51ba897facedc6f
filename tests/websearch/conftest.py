"""Fixtures for the web-search tests: local fake providers and a shared httpx client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.fakes.search_providers import FakeSearchServer


@pytest.fixture(params=["brave", "serper", "exa"])
def fake(request: pytest.FixtureRequest) -> Iterator[FakeSearchServer]:
    with FakeSearchServer(request.param) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client
