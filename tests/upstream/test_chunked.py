"""The chunked-coding decoder (`upstream/chunked.py`): table-driven, fed whole and byte by
byte, so every split point a socket can produce is covered."""

from __future__ import annotations

import pytest

from continuum_cli.upstream.chunked import ChunkedDecoder, ChunkedError

VALID = [
    ("one chunk", b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
    ("several", b"3\r\nabc\r\n2\r\nde\r\n1\r\nf\r\n0\r\n\r\n", b"abcdef"),
    ("hex sizes, upper and lower", b"A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n",
     b"0123456789abcdefghij"),
    ("extensions are ignored", b"4;name=value\r\ndata\r\n0;last\r\n\r\n", b"data"),
    ("whitespace around the size", b"4 \r\ndata\r\n0\r\n\r\n", b"data"),
    ("trailers are dropped", b"2\r\nok\r\n0\r\nx-checksum: 1\r\nx-more: 2\r\n\r\n", b"ok"),
    ("bare LF line ends", b"2\nok\n0\n\n", b"ok"),
    ("CRLF inside the data", b"4\r\n\r\n\r\n\r\n0\r\n\r\n", b"\r\n\r\n"),
    ("empty body", b"0\r\n\r\n", b""),
    ("SSE events as a backend sends them",
     b"f\r\ndata: {\"a\":1}\n\n\r\ne\r\ndata: [DONE]\n\n\r\n0\r\n\r\n",
     b"data: {\"a\":1}\n\ndata: [DONE]\n\n"),
]


def decode(feeds: list[bytes]) -> tuple[bytes, ChunkedDecoder]:
    decoder = ChunkedDecoder()
    out = b""
    for data in feeds:
        decoder.feed(data)
        out += decoder.take()
    return out, decoder


@pytest.mark.parametrize(("name", "wire", "body"), VALID, ids=[v[0] for v in VALID])
def test_decodes_whole_and_split_at_every_byte(name: str, wire: bytes, body: bytes) -> None:
    for feeds in ([wire], [wire[i:i + 1] for i in range(len(wire))]):
        out, decoder = decode(feeds)
        assert (out, decoder.done, decoder.leftover) == (body, True, b"")


def test_every_two_way_split() -> None:
    wire, body = VALID[1][1], VALID[1][2]
    for cut in range(len(wire) + 1):
        out, decoder = decode([wire[:cut], wire[cut:]])
        assert (out, decoder.done) == (body, True), cut


def test_bytes_after_the_end_are_left_over() -> None:
    out, decoder = decode([b"2\r\nok\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n"])
    assert (out, decoder.done, decoder.leftover) == (b"ok", True, b"HTTP/1.1 200 OK\r\n")


def test_an_unfinished_body_is_not_done() -> None:
    out, decoder = decode([b"5\r\nhel"])
    assert (out, decoder.done) == (b"hel", False)


def test_everything_available_comes_out_as_one_piece() -> None:
    decoder = ChunkedDecoder()
    decoder.feed(b"3\r\nabc\r\n3\r\ndef\r\n3\r\ngh")
    assert decoder.take() == b"abcdefgh"
    assert decoder.take() == b""
    decoder.feed(b"i\r\n0\r\n\r\n")
    assert (decoder.take(), decoder.done) == (b"i", True)


@pytest.mark.parametrize("wire", [
    b"zz\r\nhello\r\n",  # not hex
    b"\r\nhello\r\n",  # no size
    b"5\r\nhello world\r\n",  # more data than the size
    b"-5\r\nhello\r\n",
    b"5" * 17 + b"\r\n",  # more than 64 bits of size
    b"1" * 20_000,  # a size line that never ends
])
def test_malformed_coding_is_an_error(wire: bytes) -> None:
    decoder = ChunkedDecoder()
    decoder.feed(wire)
    with pytest.raises(ChunkedError):
        decoder.take()


def test_pieces_are_bounded_and_nothing_is_lost() -> None:
    events = [b"data: {\"n\":%d}\n\n" % n for n in range(5000)]
    decoder = ChunkedDecoder()
    decoder.feed(b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n")
    pieces = []
    while not decoder.done:
        pieces.append(decoder.take(limit=1000))
    assert max(map(len, pieces)) == 1000
    assert b"".join(pieces) == b"".join(events)
