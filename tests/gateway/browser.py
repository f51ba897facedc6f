"""Headless Chromium (the Debian `chromium` package) driven by Playwright, for the gateway's
verification page. Playwright's own browser download is never used: `executable_path`
points at the system browser, which `.ci/run` installs."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def chromium_path() -> str | None:
    for name in (os.environ.get("CHROMIUM_BIN", ""), "/usr/bin/chromium", "chromium",
                 "chromium-browser"):
        found = shutil.which(name) if name else None
        if found:
            return found
    return None


def launch(playwright: Any) -> Any:
    path = chromium_path()
    if path is None:
        message = "chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = launch(playwright)
        yield instance
        instance.close()
