"""Claude Code's own state file (`~/.claude.json`), as a new user's `claude` would read it.

Two things there stop a first run against a router (see `continuum_cli.claude_state`): the
first-run onboarding, whose connection check ignores ANTHROPIC_BASE_URL, and an
ANTHROPIC_API_KEY that Claude Code was never told to use, or was told not to.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from continuum_cli.claude_state.setup import key_status, onboarding_done
from continuum_cli.claude_state.store import read_state, state_path
from continuum_cli.doctor.model import CheckResult, failed, passed, skipped, warned
from continuum_cli.errors import ContinuumError

ONBOARDING = "claude onboarding"
KEY = "claude API key"
SETUP_FIX = "run `continuum claude` once: it records this in {path} (say --no-setup to skip)"


def claude_home_checks(env: Mapping[str, str]) -> list[CheckResult]:
    path = state_path(env)
    try:
        state = read_state(path)
    except ContinuumError as exc:
        return [failed(ONBOARDING, exc.message, exc.hint or "fix or remove the file"),
                skipped(KEY, f"{path} could not be read")]
    return [onboarding(path, state, path.exists()), api_key(path, state, env)]


def onboarding(path: Path, state: Mapping[str, Any], exists: bool) -> CheckResult:
    if onboarding_done(state):
        return passed(ONBOARDING, f"done ({path})")
    where = f"{path} does not exist yet" if not exists else \
        f"hasCompletedOnboarding is not true in {path}"
    return warned(ONBOARDING, f"{where}: a plain `claude` starts with the first-run "
                  "onboarding, whose connection check ignores ANTHROPIC_BASE_URL and stops at "
                  "\"Unable to connect to Anthropic services\"", SETUP_FIX.format(path=path))


def api_key(path: Path, state: Mapping[str, Any], env: Mapping[str, str]) -> CheckResult:
    key = env.get("ANTHROPIC_API_KEY", "").strip()
    if not key:
        why = ("ANTHROPIC_AUTH_TOKEN is sent as a bearer token and needs no approval"
               if env.get("ANTHROPIC_AUTH_TOKEN") else "`continuum claude` approves the key "
               "it passes")
        return skipped(KEY, f"ANTHROPIC_API_KEY is not set in this shell; {why}")
    status = key_status(state, key)
    if status == "approved":
        return passed(KEY, f"ANTHROPIC_API_KEY is approved in {path}")
    fix = (SETUP_FIX.format(path=path) + ", or in Claude Code: /config, "
           "\"Use custom API key\": true")
    if status == "rejected":
        return failed(KEY, "Claude Code was told not to use this ANTHROPIC_API_KEY "
                      f"(customApiKeyResponses.rejected in {path}): every prompt answers "
                      "\"Not logged in · Please run /login\"", fix)
    return warned(KEY, "Claude Code has not been told to use this ANTHROPIC_API_KEY: it will "
                  "ask \"Detected a custom API key … Do you want to use this API key?\" with "
                  "\"No (recommended)\" preselected, and No leaves \"Not logged in\"",
                  fix.replace(", or in", ", or answer Yes; or in"))
