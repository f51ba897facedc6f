"""The real Claude Code CLI (2.1.332) signed in to continuum's gateway, in a loopback-only
network namespace (gateway_host.py): (a) a headless CLAUDE_CODE_USE_GATEWAY turn with a token
from the device flow; (b) a stored sign-in: managed settings fetched and applied, model
discovery, `--model <listed id>` reaching its backend, refresh, and `claude auth logout`
revoking both tokens."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.conftest import REPO, SCENARIO_TIMEOUT

pytestmark = pytest.mark.e2e
Run = Callable[[str], dict[str, Any]]


@pytest.fixture(scope="session")
def gateway_scenario(claude_bin: str, netns: None,
                     tmp_path_factory: pytest.TempPathFactory) -> Run:
    cache: dict[str, dict[str, Any]] = {}

    def run(name: str) -> dict[str, Any]:
        if name not in cache:
            out = tmp_path_factory.mktemp(f"gw-{name}")
            spec = out / "spec.json"
            spec.write_text(json.dumps({"scenario": name, "out": str(out),
                                        "claude_bin": claude_bin}))
            done = subprocess.run(
                ["unshare", "-n", "--", sys.executable, "-m", "tests.e2e.gateway_host",
                 str(spec)], cwd=REPO, capture_output=True, text=True,
                timeout=SCENARIO_TIMEOUT)
            result_file = out / "result.json"
            assert result_file.exists(), f"gateway host failed: {done.stderr[-3000:]}"
            result = json.loads(result_file.read_text())
            assert "error" not in result, f"{result['error']}\n{result['log'][-20:]}"
            cache[name] = result
        return cache[name]

    return run


def events(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in run["stdout"].splitlines() if line.startswith("{")]


def final(run: dict[str, Any]) -> dict[str, Any]:
    found = [e for e in events(run) if e.get("type") == "result"]
    assert found, run
    return found[-1]


def from_claude(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Requests Claude Code sent (not the host's own sign-in and checks, made with httpx)."""
    return [r for r in result["inbound"]
            if not (r["user_agent"] or "").startswith("python-httpx")]


def paths(result: dict[str, Any]) -> list[str]:
    return [r["path"].removeprefix("/anthropic") for r in from_claude(result)]


def claude_messages(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in from_claude(result) if r["path"].endswith("/v1/messages")]


def test_headless_turn_with_a_device_flow_token(gateway_scenario: Run) -> None:
    result = gateway_scenario("headless")
    run = result["runs"][0]
    assert run["rc"] == 0, run["stderr"]
    answer = final(run)
    assert answer["is_error"] is False
    assert answer["result"] == "Hello from the scripted backend."
    claude_calls = claude_messages(result)
    assert claude_calls and all(r["auth"] == "gateway" for r in claude_calls)
    assert result["upstream"] and result["upstream"][-1]["backend"] == "a"


def test_stored_sign_in_fetches_and_applies_managed_settings(gateway_scenario: Run) -> None:
    result = gateway_scenario("stored")
    run = result["runs"][0]
    assert run["rc"] == 0, run["stderr"]
    assert final(run)["is_error"] is False
    seen = paths(result)
    settings_at = seen.index("/managed/settings")
    first_message = seen.index("/v1/messages")
    assert settings_at < first_message  # fetched first
    fetched = from_claude(result)[settings_at]
    assert fetched["auth"] == "gateway" and fetched["status"] == 200
    assert json.loads(fetched["body"])["settings"]["env"]["ANTHROPIC_CUSTOM_HEADERS"]
    # its env was applied in the same run: the custom header rides on every model request
    messages = claude_messages(result)
    assert messages and all(r["team_header"] == "team-7" for r in messages)


def test_model_discovery_lists_the_team_models(gateway_scenario: Run) -> None:
    result = gateway_scenario("stored")
    seen = paths(result)
    # called only because the managed settings turned discovery on, after they were fetched
    assert "/v1/models" in seen
    listed = from_claude(result)[seen.index("/v1/models")]
    assert listed["status"] == 200 and listed["auth"] == "gateway"
    assert [(m["id"], m["display_name"]) for m in json.loads(listed["body"])["data"]] == [
        ("claude-sonnet-4-5", "Team model A"), ("claude-opus-4-5", "Team model B")]
    assert seen.index("/managed/settings") < seen.index("/v1/models") < seen.index(
        "/v1/messages")


def test_listed_model_reaches_its_backend(gateway_scenario: Run) -> None:
    result = gateway_scenario("stored")
    assert {r["model"] for r in claude_messages(result)} == {"claude-opus-4-5"}
    init = [e for e in events(result["runs"][0]) if e.get("subtype") == "init"]
    assert init and init[0]["model"] == "claude-opus-4-5"
    upstream = [u for u in result["upstream"] if u["backend"] == "b"]
    assert upstream and upstream[0]["model"] == "model-b"
    assert not [u for u in result["upstream"] if u["backend"] == "a"]


def test_token_about_to_expire_is_refreshed(gateway_scenario: Run) -> None:
    result = gateway_scenario("stored")
    grants = [r["grant_type"] for r in result["inbound"] if r["path"].endswith("/oauth/token")]
    assert grants.count("refresh_token") >= 1
    assert result["checks"]["refreshed_token_differs"] is True


def test_logout_revokes_both_tokens(gateway_scenario: Run) -> None:
    result = gateway_scenario("stored")
    logout = result["runs"][1]
    assert logout["argv"] == ["auth", "logout"] and logout["rc"] == 0
    assert paths(result).count("/oauth/revoke") == 2
    assert result["checks"]["after_logout"] == {"status": 401, "retry": "false"}
    assert result["checks"]["credentials_after_logout"] is False
    assert result["checks"]["api_key_used"] is False  # the key never reached Claude Code


def test_interactive_login_in_a_pty(gateway_scenario: Run) -> None:
    """(d) /login with $BROWSER completing the page in headless Chromium."""
    result = gateway_scenario("interactive")
    checks = result["checks"]
    screens = "\n".join(checks["screens"])
    assert "Trust gateway 127.0.0.1?" in screens and "http-loopback" in screens
    assert "Connected to Cloud gateway" in checks["connected_screen"]
    opened = [line for line in checks["browser_log"].splitlines() if line.startswith("opened")]
    assert opened and "/anthropic/device?user_code=" in opened[0]
    assert "approved" in checks["browser_log"]
    code = opened[0].rsplit("=", 1)[1]
    code_screen = [s for s in checks["screens"] if "Waiting for sign-in" in s]
    assert code_screen and code in code_screen[0]  # the code shown is the one approved
    assert "Sign in with your continuum key from the team wiki." in code_screen[0]
    # the key's email came with the token: Claude Code asked to confirm the account
    assert "Signed in to Cloud gateway as alice@example.com" in screens
    seen = paths(result)
    assert seen.index("/oauth/device_authorization") < seen.index("/oauth/token")
    grants = [r["grant_type"] for r in from_claude(result) if r["path"].endswith("/oauth/token")]
    assert "urn:ietf:params:oauth:grant-type:device_code" in grants
    assert "/managed/settings" in seen[seen.index("/oauth/token"):]
    # the next prompt is answered through the gateway
    assert "Hello from the scripted backend." in checks["answer_screen"]
    assert all(r["auth"] == "gateway" for r in claude_messages(result))


def test_managed_settings_revalidated_with_if_none_match(gateway_scenario: Run) -> None:
    """Once the person approved the managed settings, Claude Code keeps them and asks again
    with `If-None-Match: "<checksum>"`, computed on its side: a 304 proves both sides hash
    the settings the same way."""
    result = gateway_scenario("interactive")
    fetches = [r for r in from_claude(result) if r["path"].endswith("/managed/settings")]
    served = json.loads(fetches[0]["body"])["checksum"]
    assert fetches[0]["status"] == 200
    revalidated = [r for r in fetches if r["if_none_match"]]
    assert revalidated and all(r["if_none_match"] == f'"{served}"' for r in revalidated)
    assert all(r["status"] == 304 for r in revalidated)
    headless = result["runs"][-1]  # the next `claude -p` with the same HOME
    assert headless["rc"] == 0 and final(headless)["is_error"] is False


def test_usage_warning_reaches_claude_code(gateway_scenario: Run) -> None:
    """(c) At 82 % of the key's budget the stream-json `rate_limit_event` says
    allowed_warning, with the utilization and the 75 % threshold it passed."""
    result = gateway_scenario("usage_limits")
    run = result["runs"][0]
    assert run["rc"] == 0, run["stderr"]
    infos = [e["rate_limit_info"] for e in events(run) if e.get("type") == "rate_limit_event"]
    assert infos, run["stdout"][-2000:]
    info = infos[-1]
    assert info["status"] == "allowed_warning"
    assert 0.82 <= info["utilization"] < 0.9
    assert info["surpassedThreshold"] == 0.75


def test_billing_error_at_the_cap_is_printed_once(gateway_scenario: Run) -> None:
    """(c) At the cap: the billing message as the router wrote it, exit non-zero, and one
    request (a billing_error with x-should-retry: false is not retried)."""
    result = gateway_scenario("usage_limits")
    run = result["runs"][1]
    assert run["rc"] != 0
    answer = final(run)
    assert answer["is_error"] is True
    later = [r for r in result["inbound"][result["checks"]["before_capped_run"]:]
             if r["path"].endswith("/v1/messages")]
    assert len(later) == 1 and later[0]["status"] == 429
    assert "resets" in later[0]["error"]
    assert later[0]["error"] in answer["result"]  # printed as the router wrote it


def test_continuum_claude_gateway_signs_in(gateway_scenario: Run) -> None:
    """`continuum claude --gateway`: the settings entries and the trust it writes make the
    first start sign in through the gateway; the prompt is then answered by the backend."""
    result = gateway_scenario("continuum_claude")
    checks = result["checks"]
    base = checks["base"]
    assert checks["settings"]["forceLoginMethod"] == "gateway"
    assert checks["settings"]["forceLoginGatewayUrl"] == base
    assert checks["trust"] == {"127.0.0.1": "http-loopback"}
    assert checks["signed_in_url"] == base
    screens = "\n".join(checks["screens"])
    assert "Trust gateway" not in screens  # trust was recorded, so Claude Code did not ask
    assert "Connected to Cloud gateway" in checks["connected_screen"]
    assert "Hello from the scripted backend." in checks["answer_screen"]
    assert checks["messages"] == ["model-a"]


def test_https_trust_prompt_pins_the_printed_fingerprint(gateway_scenario: Run) -> None:
    """Over https, Claude Code's trust prompt shows the certificate's fingerprint and records
    it in gatewayTrust exactly as `continuum serve --tls-self-signed` prints it."""
    result = gateway_scenario("https_login")
    checks = result["checks"]
    fingerprint = checks["fingerprint"]
    prompt = [s for s in checks["screens"] if "Trust gateway localhost?" in s]
    assert prompt and fingerprint[:16] in prompt[0]
    assert checks["trust"] == {"localhost": fingerprint}
    assert "Connected to Cloud gateway" in checks["connected_screen"]
    assert "Hello from the scripted backend." in checks["answer_screen"]
    headless = result["runs"][-1]  # the pinned certificate also serves the next run
    assert headless["rc"] == 0 and final(headless)["is_error"] is False


def test_continuum_claude_gateway_over_https(gateway_scenario: Run) -> None:
    result = gateway_scenario("continuum_claude_tls")
    checks = result["checks"]
    assert checks["settings"]["forceLoginGatewayUrl"] == checks["base"]
    assert checks["base"].startswith("https://localhost:")
    assert checks["settings"]["env"]["NODE_EXTRA_CA_CERTS"] == checks["cert"]
    assert checks["trust"] == {"localhost": checks["fingerprint"]}
    assert "Trust gateway" not in "\n".join(checks["screens"])
    assert checks["signed_in_url"] == checks["base"]
    assert "Hello from the scripted backend." in checks["answer_screen"]
