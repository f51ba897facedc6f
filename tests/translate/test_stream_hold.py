"""The `</think>` hold-back's time bound and the block content kept for `close()`.

Leading text held to catch a lone `</think>` (checklist item 30) is released at
`probe_chars` characters or `probe_seconds` after the first held piece, whichever comes
first; time is the caller's `now`, so the translator stays sans-I/O.
"""

from __future__ import annotations

from typing import Any

import pytest

from continuum_cli.translate.ids import thinking_signature
from continuum_cli.translate.names import ToolNameMap
from continuum_cli.translate.stream import StreamTranslator
from continuum_cli.translate.think import DEFAULT_PROBE_SECONDS, ThinkSplitter

NAMES = ToolNameMap.build([])


def text(t: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": t}, "finish_reason": None}]}


def reason(t: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"reasoning_content": t}, "finish_reason": None}]}


def translator(**kw: Any) -> StreamTranslator:
    t = StreamTranslator(model="m", message_id="msg_h", tool_names=NAMES, **kw)
    t.start_events()
    return t


def deltas(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [p["delta"].get("text", "") for n, p in events if n == "content_block_delta"]


@pytest.mark.parametrize(
    ("times", "released_at"),
    [
        pytest.param([0.0, 0.05, 0.10, 0.16], 3, id="released-at-the-time-bound"),
        pytest.param([0.0, 0.01, 0.02, 0.03], None, id="held-within-the-bound"),
        pytest.param([5.0, 5.2, 5.3, 5.4], 1, id="bound-counts-from-the-first-piece"),
    ],
)
def test_held_text_released_after_probe_seconds(times: list[float],
                                                released_at: int | None) -> None:
    t = translator(think_probe_chars=512)
    outs = [t.feed(text(f"w{i} "), now) for i, now in enumerate(times)]
    first = next((i for i, out in enumerate(outs) if deltas(out)), None)
    assert first == released_at
    if released_at is not None:
        assert deltas(outs[released_at]) == ["".join(f"w{i} " for i in range(released_at + 1))]


def test_without_time_only_the_character_bound_applies() -> None:
    t = translator(think_probe_chars=512)
    assert all(not deltas(t.feed(text("word "))) for _ in range(50))
    assert deltas(t.feed(text("x" * 300)))


def test_opening_tag_still_recognised_after_the_time_bound() -> None:
    t = translator(think_probe_chars=512)
    assert t.feed(text("<thi"), 0.0) == []
    events = t.feed(text("nk>plan"), 1.0)
    assert [p["delta"]["type"] for n, p in events if n == "content_block_delta"] == [
        "thinking_delta"]


def test_closing_tag_within_the_bound_is_thinking() -> None:
    t = translator(think_probe_chars=512)
    t.feed(text("I should "), 0.0)
    events = t.feed(text("greet.</think>Hi"), 0.1)
    kinds = [p["delta"]["type"] for n, p in events if n == "content_block_delta"]
    assert kinds[0] == "thinking_delta" and "text_delta" in kinds


def test_tick_releases_held_text_without_a_new_chunk() -> None:
    t = translator(think_probe_chars=512)
    assert t.feed(text("Hello"), 10.0) == []
    assert t.tick(10.0 + DEFAULT_PROBE_SECONDS / 2) == []
    assert deltas(t.tick(10.0 + DEFAULT_PROBE_SECONDS)) == ["Hello"]
    assert t.tick(20.0) == []  # decided: nothing more to release


def test_splitter_expired_needs_a_clock() -> None:
    splitter = ThinkSplitter(probe_chars=512, probe_seconds=0.1)
    assert not splitter.expired(None)
    assert not splitter.expired(1.0)
    assert splitter.expired(1.1)


@pytest.mark.parametrize("pieces", [
    pytest.param(1, id="one-delta"),
    pytest.param(5000, id="many-deltas"),
])
def test_blocks_hold_the_whole_content_after_close(pieces: int) -> None:
    t = translator(think_probe_chars=0)
    for i in range(pieces):
        t.feed(reason(f"r{i};"))
    for i in range(pieces):
        t.feed(text(f"t{i};"))
    t.close()
    thinking = "".join(f"r{i};" for i in range(pieces))
    assert t.blocks == [
        {"type": "thinking", "thinking": thinking, "signature": thinking_signature(thinking)},
        {"type": "text", "text": "".join(f"t{i};" for i in range(pieces))},
    ]
