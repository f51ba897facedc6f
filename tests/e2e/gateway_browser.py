"""`$BROWSER` for the interactive /login scenario: Claude Code runs it with the verification
URL; it completes the page in headless Chromium with the continuum API key in
$CONTINUUM_E2E_KEY, the way a person would, and notes what it did in $BROWSER_LOG."""

from __future__ import annotations

import os
import sys

from playwright.sync_api import sync_playwright

from tests.gateway.browser import CHROMIUM_ARGS, chromium_path


def main(url: str) -> int:
    log = open(os.environ["BROWSER_LOG"], "a", encoding="utf-8")  # noqa: SIM115
    log.write(f"opened {url}\n")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        # the https scenario's page has continuum's self-signed certificate, which this
        # fresh browser profile does not know (a person would accept it once)
        insecure = os.environ.get("E2E_BROWSER_IGNORE_TLS") == "1"
        page = browser.new_context(ignore_https_errors=insecure).new_page()
        page.set_default_timeout(60_000)
        page.goto(url)
        log.write(f"code {page.get_by_label('Code from your terminal').input_value()}\n")
        page.get_by_label("Your continuum API key").fill(os.environ["CONTINUUM_E2E_KEY"])
        page.get_by_role("button", name="Approve").click()
        page.get_by_role("heading", name="Device connected").wait_for()
        log.write("approved\n")
        browser.close()
    log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
