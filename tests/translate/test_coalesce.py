"""Adjacent deltas of one block merge into one frame; nothing else changes."""

from __future__ import annotations

import pytest

from continuum_cli.translate.sse_encode import coalesce_deltas


def delta(index: int, kind: str, value: str) -> tuple[str, dict]:
    field = {"text_delta": "text", "thinking_delta": "thinking",
             "input_json_delta": "partial_json"}[kind]
    return ("content_block_delta", {"type": "content_block_delta", "index": index,
                                    "delta": {"type": kind, field: value}})


STOP0 = ("content_block_stop", {"type": "content_block_stop", "index": 0})
SIG = ("content_block_delta", {"type": "content_block_delta", "index": 0,
                               "delta": {"type": "signature_delta", "signature": "s"}})


@pytest.mark.parametrize("events,expected", [
    pytest.param([delta(0, "text_delta", "a"), delta(0, "text_delta", "b")],
                 [delta(0, "text_delta", "ab")], id="text"),
    pytest.param([delta(1, "input_json_delta", '{"a"'), delta(1, "input_json_delta", ":1}")],
                 [delta(1, "input_json_delta", '{"a":1}')], id="json"),
    pytest.param([delta(0, "thinking_delta", "x"), SIG, delta(0, "thinking_delta", "y")],
                 [delta(0, "thinking_delta", "x"), SIG, delta(0, "thinking_delta", "y")],
                 id="signature-not-merged"),
    pytest.param([delta(0, "text_delta", "a"), STOP0, delta(1, "text_delta", "b")],
                 [delta(0, "text_delta", "a"), STOP0, delta(1, "text_delta", "b")],
                 id="other-block"),
    pytest.param([delta(0, "thinking_delta", "a"), delta(0, "text_delta", "b")],
                 [delta(0, "thinking_delta", "a"), delta(0, "text_delta", "b")],
                 id="different-kind"),
    pytest.param([], [], id="empty"),
])
def test_coalesce(events, expected) -> None:
    assert coalesce_deltas(events) == expected


def test_inputs_are_not_mutated() -> None:
    events = [delta(0, "text_delta", "a"), delta(0, "text_delta", "b")]
    coalesce_deltas(events)
    assert events[0][1]["delta"]["text"] == "a"
