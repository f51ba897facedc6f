"""Generated Anthropic requests, valid and mutated, through the request translator and the
token counter: a 400 naming the problem, or a translation that keeps the invariants a
backend's chat template needs -- never another exception."""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import given, note, settings
from hypothesis import strategies as st

from continuum_cli.backends.profiles import PROFILES
from continuum_cli.errors import InvalidRequest
from continuum_cli.translate.request import to_openai_request
from continuum_cli.translate.tokens import estimate_tokens, image_tokens, render_for_count
from continuum_cli.websearch.blocks import snippet_of
from continuum_cli.wire.anthropic import parse_messages_request
from tests.property.conftest import examples
from tests.property.strategies import mutate, requests

TYPES = sorted(PROFILES)


def check(body: Any, backend_type: str) -> None:
    """The property: every outcome is a translation that keeps the invariants, or a 400."""
    raw = json.dumps(body).encode()
    try:
        req = parse_messages_request(raw)
    except InvalidRequest:
        return
    try:
        tokens = estimate_tokens(req)
        assert isinstance(tokens, int) and tokens >= 1
        assert isinstance(render_for_count(req), str)
        assert image_tokens(req) >= 0
        translated = to_openai_request(req, upstream_model="up", snippet_of=snippet_of,
                                       profile=PROFILES[backend_type])
    except InvalidRequest as exc:
        assert exc.status == 400 and exc.message
        return
    assert_invariants(translated.body)


def assert_invariants(body: dict[str, Any]) -> None:
    json.dumps(body, allow_nan=False)  # what goes upstream is JSON
    assert body["model"] == "up"
    msgs = body["messages"]
    assert msgs, "nothing sent to the model"
    assert all(m["role"] in ("system", "user", "assistant", "tool") for m in msgs)
    for i, msg in enumerate(msgs):
        if msg["role"] == "user":
            assert msg["content"], f"empty user message {i}"
        calls = msg.get("tool_calls") or []
        assert msg["role"] == "assistant" or not calls
        ids = [c["id"] for c in calls]
        # every call is answered by a tool message, right after it, in call order
        answers = [m.get("tool_call_id") for m in msgs[i + 1:i + 1 + len(ids)]]
        assert answers == ids, f"calls {ids} answered by {answers}"
        for call in calls:
            assert isinstance(call["function"]["name"], str) and call["function"]["name"]
            assert isinstance(json.loads(call["function"]["arguments"]), dict)
        if msg["role"] == "tool":
            assert i > 0 and (msgs[i - 1].get("tool_calls") or msgs[i - 1]["role"] == "tool")
            assert isinstance(msg["content"], str) and msg["content"]
    for a, b in zip(msgs, msgs[1:], strict=False):
        # same-role turns are merged (a tool turn repeats for each call)
        assert a["role"] != b["role"] or a["role"] in ("tool", "system") or \
            (a["role"] == "assistant" and a.get("tool_calls"))
    for tool in body.get("tools") or []:
        assert tool["type"] == "function"
        params = tool["function"]["parameters"]
        assert params["type"] == "object" and isinstance(params["properties"], dict)


# ci: 250 valid requests, and 250 more each mutated 40 ways: 10 250 requests in all
MUTATIONS = 40


@settings(max_examples=examples(250))
@given(requests, st.sampled_from(TYPES))
def test_valid_requests(body: dict[str, Any], backend_type: str) -> None:
    check(body, backend_type)


@settings(max_examples=examples(250))
@given(requests, st.sampled_from(TYPES), st.randoms(use_true_random=False))
def test_mutated_requests(body: dict[str, Any], backend_type: str, rng: random.Random) -> None:
    for _ in range(MUTATIONS):
        mutant = mutate(body, rng)
        note(f"mutant: {json.dumps(mutant)[:2000]}")
        check(mutant, backend_type)
