"""The verification page in a real headless Chromium: pre-filled from
`verification_uri_complete` but never submitted by itself, labelled fields, approval with a
continuum API key, errors announced, denial; the sign-in then completes (or not) at the token
endpoint."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.fakes.scripted_backend import ScriptedBackend
from tests.gateway.browser import browser  # noqa: F401 - fixture
from tests.gateway.helpers import ALICE_KEY, gateway_config, poll, start_device
from tests.router import RouterThread

Factory = Callable[..., RouterThread]


@pytest.fixture
def gw(scripted: ScriptedBackend, router_factory: Factory) -> RouterThread:
    return router_factory(gateway_config(scripted, login_notice="Keys are on the team wiki."))


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:  # noqa: F811
    context = browser.new_context()
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    yield tab
    context.close()


def test_approve_in_the_browser(gw: RouterThread, page: Any) -> None:
    started = start_device(gw.anthropic_url)
    page.goto(started["verification_uri_complete"])
    code = page.get_by_label("Code from your terminal")
    assert code.input_value() == started["user_code"]
    assert "Keys are on the team wiki." in page.content()
    # loading the pre-filled page approved nothing (RFC 8628 §5.4)
    assert poll(gw.anthropic_url, started["device_code"]).json()["error"] == \
        "authorization_pending"
    page.get_by_label("Your continuum API key").fill(ALICE_KEY)
    page.get_by_role("button", name="Approve").click()
    page.get_by_role("heading", name="Device connected").wait_for()
    assert "Signed in as alice" in page.get_by_role("status").inner_text()
    tokens = poll(gw.anthropic_url, started["device_code"])
    assert tokens.status_code == 200 and tokens.json()["token_type"] == "Bearer"


def test_wrong_key_is_announced_and_the_form_kept(gw: RouterThread, page: Any) -> None:
    started = start_device(gw.anthropic_url)
    page.goto(started["verification_uri_complete"])
    page.get_by_label("Your continuum API key").fill("sk-not-a-key")
    page.get_by_role("button", name="Approve").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "not accepted" in alert.inner_text()
    assert page.get_by_label("Code from your terminal").input_value() == started["user_code"]
    assert page.get_by_label("Code from your terminal").get_attribute("aria-invalid") == "true"
    # the re-rendered form works: approve with the right key
    page.get_by_label("Your continuum API key").fill(ALICE_KEY)
    page.get_by_role("button", name="Approve").click()
    page.get_by_role("heading", name="Device connected").wait_for()


def test_typed_code_lower_case_without_dash(gw: RouterThread, page: Any) -> None:
    started = start_device(gw.anthropic_url)
    page.goto(started["verification_uri"])
    assert page.get_by_label("Code from your terminal").input_value() == ""
    page.get_by_label("Code from your terminal").fill(started["user_code"].lower()
                                                       .replace("-", ""))
    page.get_by_label("Your continuum API key").fill(ALICE_KEY)
    page.keyboard.press("Enter")  # the form submits from the keyboard: Approve is first
    page.get_by_role("heading", name="Device connected").wait_for()
    assert poll(gw.anthropic_url, started["device_code"]).status_code == 200


def test_deny_in_the_browser(gw: RouterThread, page: Any) -> None:
    started = start_device(gw.anthropic_url)
    page.goto(started["verification_uri_complete"])
    page.get_by_role("button", name="Deny").click()
    page.get_by_role("heading", name="Sign-in denied").wait_for()
    answer = poll(gw.anthropic_url, started["device_code"])
    assert answer.json()["error"] == "access_denied"


def test_unknown_code_in_the_browser(gw: RouterThread, page: Any) -> None:
    page.goto(f"{gw.anthropic_url}/device?user_code=BCDF-GHJK")
    page.get_by_label("Your continuum API key").fill(ALICE_KEY)
    page.get_by_role("button", name="Approve").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "not valid or has expired" in alert.inner_text()


def test_focus_and_trailing_slash(gw: RouterThread, page: Any) -> None:
    started = start_device(gw.anthropic_url)
    page.goto(f"{gw.anthropic_url}/device/?user_code={started['user_code']}")
    # the code came pre-filled: the key field has the focus, typing goes there. Chromium
    # applies `autofocus` at its next rendering step, which can come after the load event
    # `goto` waits for (HTML, "the autofocus attribute": flush autofocus candidates).
    expect(page.get_by_label("Your continuum API key")).to_be_focused()
    page.keyboard.type(ALICE_KEY)
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Device connected").wait_for()
