"""Random OpenAI chunk sequences -- well formed or broken, cut at random points -- through
the production stream path (`UpstreamClient._chunks`: SSE decoding and chunk parsing;
`api.messages.sse_frames`: translation, batching, in-stream errors), and the Anthropic SSE
that comes out through the `anthropic` SDK's own stream parser and accumulator: it always
accumulates into a message, or ends with exactly one `event: error` (which the SDK raises)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import httpx2
import pytest
from hypothesis import event, given, note, settings
from hypothesis import strategies as st

from continuum_cli.api.messages import sse_frames
from continuum_cli.config.models import Backend
from continuum_cli.translate.names import ToolNameMap
from continuum_cli.translate.stream import StreamTranslator
from continuum_cli.upstream.client import UpstreamClient
from tests.property.conftest import examples
from tests.property.strategies import chunk_sequences, split, sse_bytes

BACKEND = Backend(name="scripted", type="vllm", url="http://127.0.0.1:1/v1")
PATH = "/anthropic/v1/messages"
STOP_REASONS = {"end_turn", "max_tokens", "tool_use", "stop_sequence", "refusal", None}


class _Response:
    """What `_chunks` reads from an httpx response: its raw body, in the given pieces."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece
            await asyncio.sleep(0)  # a read boundary: batches form as they do on a socket


async def _relay(pieces: list[bytes], names: list[str], stop: list[str], probe: int) -> bytes:
    chunks = UpstreamClient._chunks(None, BACKEND, _Response(pieces))  # type: ignore[arg-type]
    translator = StreamTranslator(model="claude-sonnet-4-5", message_id="msg_prop",
                                  tool_names=ToolNameMap.build(names), input_tokens=7,
                                  stop_sequences=stop or None, think_probe_chars=probe)
    return b"".join([frame async for frame in sse_frames(translator, chunks, 3600.0, PATH)])


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


class _Sdk:
    """The anthropic SDK over a transport that answers with the SSE under test."""

    def __init__(self) -> None:
        self.sse = b""
        transport = httpx2.MockTransport(lambda request: httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, content=self.sse))
        self.client = anthropic.Anthropic(api_key="k", base_url="http://router/anthropic",
                                          max_retries=0,
                                          http_client=httpx2.Client(transport=transport))

    def final_message(self, sse: bytes) -> Any:
        self.sse = sse
        with self.client.messages.stream(model="claude-sonnet-4-5", max_tokens=64, messages=[
                {"role": "user", "content": "hi"}]) as stream:
            for _ in stream:
                pass
            return stream.get_final_message()


SDK = _Sdk()


def events(sse: bytes) -> list[str]:
    return re.findall(rb"^event: (\S+)", sse, flags=re.M) and \
        [e.decode() for e in re.findall(rb"^event: (\S+)", sse, flags=re.M)]


@settings(max_examples=examples(400))
@given(st.data(), chunk_sequences(), st.booleans(),
       st.lists(st.sampled_from(["Bash", "Read", "mcp__x__y"]), max_size=3),
       st.lists(st.sampled_from(["STOP", "\n\n", "</"]), max_size=2),
       st.sampled_from([0, 0, 8, 512]))
def test_any_chunk_sequence_gives_a_stream_the_sdk_accepts(
        loop: asyncio.AbstractEventLoop, data: st.DataObject, chunks: list[Any], done: bool,
        names: list[str], stop: list[str], probe: int) -> None:
    raw = sse_bytes(chunks, done)
    pieces = data.draw(split(raw), label="reads")
    sse = loop.run_until_complete(_relay(pieces, names, stop, probe))
    note(sse.decode("utf-8", "replace")[-3000:])
    names_seen = events(sse)
    assert names_seen[0] == "message_start"
    if "error" in names_seen:
        event("ends with event: error")
        assert names_seen.count("error") == 1 and names_seen[-1] == "error"
        with pytest.raises(anthropic.APIStatusError):
            SDK.final_message(sse)
        return
    assert names_seen[-1] == "message_stop"
    message = SDK.final_message(sse)
    assert message.id == "msg_prop" and message.stop_reason in STOP_REASONS
    event(f"accumulated: {message.stop_reason}, "
          f"{sum(b.type == 'tool_use' for b in message.content)} tool_use block(s)")
    for block in message.content:
        if block.type == "tool_use":
            assert isinstance(block.input, dict) and block.name and block.id
        elif block.type == "text":
            assert isinstance(block.text, str)
