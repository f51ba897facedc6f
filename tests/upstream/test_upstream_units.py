"""Pure upstream pieces: the SSE decoder and the upstream-error mapping table."""

from __future__ import annotations

import pytest

from continuum_cli import errors
from continuum_cli.config.models import Backend
from continuum_cli.upstream.errors import map_status, prompt_too_long, upstream_message
from continuum_cli.upstream.sse_decode import SSEDecoder

BACKEND = Backend(name="b1", type="llamacpp", url="http://x")


@pytest.mark.parametrize("pieces,expected", [
    ([b"data: a\n\n"], ["a"]),
    ([b"data: a\r\n\r\ndata: b\r\r"], ["a", "b"]),
    ([b"da", b"ta: sp", b"lit\n", b"\n"], ["split"]),
    ([b"data: a\r", b"\n\r\n"], ["a"]),
    ([b": comment\n\ndata: x\n\n"], ["x"]),
    ([b"event: e\ndata: 1\ndata: 2\n\n"], ["1\n2"]),
    ([b"data: \xe2\x80", b"\xa8ok\n\n"], ["\u2028ok"]),  # U+2028 is not a line break in SSE
    ([b"data: [DONE]\n\n"], ["[DONE]"]),
], ids=["lf", "crlf-cr", "split", "cr-lf-across", "comment", "multiline", "u2028", "done"])
def test_sse_decoder(pieces, expected) -> None:
    decoder = SSEDecoder()
    events = [e for p in pieces for e in decoder.feed(p)] + decoder.flush()
    assert [e.data for e in events] == expected


def test_sse_decoder_flushes_unterminated_frame() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: tail") == []
    assert [e.data for e in decoder.flush()] == ["tail"]


@pytest.mark.parametrize("status,body,cls", [
    (400, '{"error":{"message":"bad"}}', errors.InvalidRequest),
    (422, '{"detail":"validation"}', errors.InvalidRequest),
    (401, '{"error":{"message":"Invalid API Key"}}', errors.AuthenticationFailed),
    (403, "forbidden", errors.PermissionDenied),
    (404, '{"error":"model not found"}', errors.NotFound),
    (429, "slow down", errors.RateLimited),
    (503, '{"error":{"message":"Loading model"}}', errors.Overloaded),
    (500, '{"error":{"message":"queue is full"}}', errors.Overloaded),
    (500, "boom", errors.UpstreamUnavailable),
    (504, "gateway", errors.UpstreamTimeout),
    (400, '{"error":{"message":"request (2031 tokens) exceeds the available context size '
          '(512 tokens), try increasing it","type":"exceed_context_size_error"}}',
     errors.PromptTooLong),
    (500, "This model's maximum context length is 4096 tokens. However, you requested 5000 "
          "tokens", errors.PromptTooLong),
], ids=lambda v: str(v)[:30])
def test_map_status(status, body, cls) -> None:
    exc = map_status(BACKEND, status, body, {"retry-after": "3"})
    assert type(exc) is cls


def test_overflow_numbers_and_wording() -> None:
    exc = prompt_too_long("request (2031 tokens) exceeds the available context size (512 tokens)")
    assert (exc.tokens, exc.maximum) == (2031, 512)
    assert exc.message.startswith("prompt is too long: 2031 tokens > 512 maximum")
    vllm = prompt_too_long("This model's maximum context length is 4096 tokens. However, you "
                           "requested 5000 tokens (4000 in the messages, 1000 in the completion).")
    # the prompt (4000) fits: it is max_tokens that does not, and the message says so
    assert (vllm.tokens, vllm.maximum) == (4000, 4096)
    assert vllm.message.startswith("max_tokens too large: 4000 prompt tokens + 1000 requested")


def test_retry_after_is_kept_for_rate_limits() -> None:
    exc = map_status(BACKEND, 429, "x", {"retry-after": "3"})
    assert exc.headers == {"retry-after": "3"}


def test_bad_backend_key_names_the_config_key() -> None:
    exc = map_status(BACKEND, 401, '{"error":{"message":"Invalid API Key"}}', {})
    assert "backends[].api_key" in exc.message and "b1" in exc.message


@pytest.mark.parametrize("text,message", [
    ('{"error":{"message":"m1"}}', "m1"), ('{"detail":"d"}', "d"), ("plain", "plain"),
    ('{"error":"s"}', "s"), ('{"message":"top"}', "top"),
])
def test_upstream_message(text, message) -> None:
    assert upstream_message(text) == message
