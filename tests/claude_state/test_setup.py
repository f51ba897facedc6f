"""The pure decisions on Claude Code's state file: key tails, statuses and the plan."""

from __future__ import annotations

from typing import Any

import pytest

from continuum_cli.claude_state.setup import key_status, key_tail, needs_approval, plan

KEY = "sk-local-0123456789abcdefghij-XYZ"
TAIL = KEY[-20:]


@pytest.mark.parametrize(("key", "tail"), [
    (KEY, KEY[-20:]),
    ("  short-key \n", "short-key"),  # Claude Code trims first, and keeps a short key whole
    ("continuum-local", "continuum-local"),
])
def test_key_tail_is_the_last_20_characters_of_the_trimmed_key(key: str, tail: str) -> None:
    assert key_tail(key) == tail


@pytest.mark.parametrize(("responses", "status"), [
    (None, "new"),
    ({"approved": [], "rejected": []}, "new"),
    ({"approved": [TAIL], "rejected": []}, "approved"),
    ({"approved": [], "rejected": [TAIL]}, "rejected"),
    ({"approved": [TAIL], "rejected": [TAIL]}, "approved"),  # approved is read first
    ({"approved": "garbage", "rejected": 7}, "new"),
    ("garbage", "new"),
])
def test_key_status(responses: Any, status: str) -> None:
    state = {} if responses is None else {"customApiKeyResponses": responses}
    assert key_status(state, KEY) == status


def test_fresh_state_gets_onboarding_and_the_key() -> None:
    result = plan({}, KEY)
    assert result.state == {"hasCompletedOnboarding": True,
                            "customApiKeyResponses": {"approved": [TAIL], "rejected": []}}
    assert len(result.changes) == 2
    assert "hasCompletedOnboarding" in result.changes[0]
    assert KEY not in " ".join(result.changes) and TAIL not in " ".join(result.changes)


def test_a_rejected_key_moves_to_approved_and_everything_else_stays() -> None:
    state = {"numStartups": 4, "theme": "light", "hasCompletedOnboarding": True,
             "customApiKeyResponses": {"approved": ["other-key-tail-00000"],
                                       "rejected": ["old-rejected-tail-111", TAIL]},
             "projects": {"/w": {"hasTrustDialogAccepted": True}}}
    result = plan(state, KEY)
    assert list(result.state) == list(state)  # same keys, same order
    assert result.state["customApiKeyResponses"] == {
        "approved": ["other-key-tail-00000", TAIL], "rejected": ["old-rejected-tail-111"]}
    assert {k: v for k, v in result.state.items() if k != "customApiKeyResponses"} == \
        {k: v for k, v in state.items() if k != "customApiKeyResponses"}
    assert result.changes == [result.changes[0]] and "no longer rejected" in result.changes[0]
    assert state["customApiKeyResponses"]["rejected"][-1] == TAIL  # the input is not mutated


def test_nothing_to_do_changes_nothing() -> None:
    state = {"hasCompletedOnboarding": True,
             "customApiKeyResponses": {"approved": [TAIL], "rejected": []}}
    result = plan(state, KEY)
    assert not result.changed and result.state == state


@pytest.mark.parametrize("key", [None, "", "   "])
def test_without_a_key_only_onboarding_is_recorded(key: str | None) -> None:
    result = plan({"hasCompletedOnboarding": False}, key)
    assert result.state == {"hasCompletedOnboarding": True}
    assert len(result.changes) == 1


def test_a_tail_listed_both_ways_is_cleaned_up() -> None:
    state = {"customApiKeyResponses": {"approved": [TAIL], "rejected": [TAIL]}}
    assert needs_approval(state, KEY)
    assert plan(state, KEY).state["customApiKeyResponses"] == {"approved": [TAIL],
                                                               "rejected": []}


def test_unknown_fields_of_the_responses_are_kept() -> None:
    state = {"customApiKeyResponses": {"approved": [], "rejected": [], "future": 1}}
    assert plan(state, KEY).state["customApiKeyResponses"]["future"] == 1
