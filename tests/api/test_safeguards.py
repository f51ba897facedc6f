"""Auto mode's `safeguards` field: no local model runs Anthropic's safety check, so a Messages
request asking for it is refused the way the Claude Code gateway protocol prescribes (400
invalid_request_error naming `safeguards`); the client then sends it again without."""

from __future__ import annotations

import anthropic
import httpx
import pytest

from tests.conftest import basic_config
from tests.fakes.scripted_backend import ScriptedBackend, Text

SAFEGUARDS = [{"type": "dangerous_tool_use", "classifier_context": {"v": 1}}]
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("stream", [False, True])
def test_safeguards_are_refused_with_a_message_naming_them(
        router_factory, scripted: ScriptedBackend, stream: bool) -> None:
    router = router_factory(basic_config(scripted))
    client = anthropic.Anthropic(base_url=router.anthropic_url, api_key="k", max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="test-model", max_tokens=16, messages=MESSAGES,
                               stream=stream, extra_body={"safeguards": SAFEGUARDS})
    body = caught.value.body
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"].startswith("safeguards:")
    assert scripted.chat_requests() == []  # nothing went upstream


def test_the_same_request_without_safeguards_is_answered(
        router_factory, scripted: ScriptedBackend) -> None:
    router = router_factory(basic_config(scripted))
    scripted.queue(Text("hello"))
    client = anthropic.Anthropic(base_url=router.anthropic_url, api_key="k", max_retries=0)
    message = client.messages.create(model="test-model", max_tokens=16, messages=MESSAGES,
                                     extra_body={"safeguards": None})
    assert message.content[0].text == "hello"


def test_count_tokens_ignores_safeguards(router_factory, scripted: ScriptedBackend) -> None:
    router = router_factory(basic_config(scripted))
    resp = httpx.post(router.anthropic_url + "/v1/messages/count_tokens",
                      json={"model": "test-model", "messages": MESSAGES,
                            "safeguards": SAFEGUARDS})
    assert resp.status_code == 200 and resp.json()["input_tokens"] > 0
