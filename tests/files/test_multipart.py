"""The streaming multipart/form-data parser: table-driven, every split point of every body."""

from __future__ import annotations

import pytest

from continuum_cli.files.multipart import (
    MultipartError,
    MultipartParser,
    PartData,
    PartEnd,
    PartStart,
    boundary_of,
)

B = b"XyZ-boundary"


def body(*parts: bytes, preamble: bytes = b"", epilogue: bytes = b"",
         close: bytes = b"--") -> bytes:
    out = preamble
    for part in parts:
        out += b"--" + B + b"\r\n" + part + b"\r\n"
    return out + b"--" + B + close + epilogue


def field(name: str, value: bytes, filename: str | None = None,
          ctype: str | None = None) -> bytes:
    disposition = f'Content-Disposition: form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    head = disposition + (f"\r\nContent-Type: {ctype}" if ctype else "")
    return head.encode() + b"\r\n\r\n" + value


def parse(chunks: list[bytes]) -> list[tuple[str, str | None, str | None, bytes]]:
    """(name, filename, content type, content) per part, from events fed in `chunks`."""
    parser = MultipartParser(B)
    events = [e for c in chunks for e in parser.feed(c)] + parser.close()
    parts: list[tuple[str, str | None, str | None, bytes]] = []
    current: PartStart | None = None
    data = b""
    for event in events:
        if isinstance(event, PartStart):
            assert current is None
            current, data = event, b""
        elif isinstance(event, PartData):
            assert current is not None and event.data
            data += event.data
        else:
            assert isinstance(event, PartEnd) and current is not None
            parts.append((current.name, current.filename, current.content_type, data))
            current = None
    assert current is None
    return parts


CASES = [
    pytest.param(body(field("file", b"hello", "a.txt", "text/plain")),
                 [("file", "a.txt", "text/plain", b"hello")], id="one_file"),
    pytest.param(body(field("purpose", b"user_data"), field("file", b"%PDF-1.4\r\n", "x.pdf")),
                 [("purpose", None, None, b"user_data"), ("file", "x.pdf", None, b"%PDF-1.4\r\n")],
                 id="field_then_file"),
    pytest.param(body(field("file", b"", "empty.bin")), [("file", "empty.bin", None, b"")],
                 id="empty_file"),
    pytest.param(body(field("file", b"--" + B[:-1] + b"\r\n--" + B[:5] + b"x", "t")),
                 [("file", "t", None, b"--" + B[:-1] + b"\r\n--" + B[:5] + b"x")],
                 id="content_looks_like_boundary"),
    pytest.param(body(field("file", b"\r\n\r\n\r\n", "crlf")),
                 [("file", "crlf", None, b"\r\n\r\n\r\n")], id="content_of_crlfs"),
    pytest.param(body(field("a", b"1"), preamble=b"ignored preamble\r\n",
                      epilogue=b"\r\nignored epilogue"),
                 [("a", None, None, b"1")], id="preamble_and_epilogue"),
    pytest.param(body(b'Content-Disposition: form-data; name="f"; '
                      b"filename*=UTF-8''r%C3%A9sum%C3%A9.pdf\r\n\r\nx"),
                 [("f", "résumé.pdf", None, b"x")], id="rfc5987_filename"),
    pytest.param(body(b'content-disposition: FORM-DATA; name="q"; filename="a \\"b\\".txt"'
                      b"\r\n\r\nv"),
                 [("q", 'a "b".txt', None, b"v")], id="escaped_quotes_case_insensitive"),
    pytest.param(b"--" + B + b"  \r\n" + field("a", b"1") + b"\r\n--" + B + b"--",
                 [("a", None, None, b"1")], id="padding_after_delimiter"),
    pytest.param(body(field("bin", bytes(range(256)) * 3, "b.bin")),
                 [("bin", "b.bin", None, bytes(range(256)) * 3)], id="binary"),
]


@pytest.mark.parametrize(("raw", "expected"), CASES)
def test_whole_body(raw: bytes, expected: list[tuple[str, str | None, str | None, bytes]]
                    ) -> None:
    assert parse([raw]) == expected


@pytest.mark.parametrize(("raw", "expected"), CASES)
def test_every_split_point(raw: bytes, expected: list[tuple[str, str | None, str | None, bytes]]
                           ) -> None:
    for cut in range(len(raw) + 1):
        assert parse([raw[:cut], raw[cut:]]) == expected, cut


@pytest.mark.parametrize(("raw", "expected"), CASES[:5])
def test_every_pair_of_split_points(raw: bytes,
                                    expected: list[tuple[str, str | None, str | None, bytes]]
                                    ) -> None:
    for a in range(0, len(raw) + 1, 3):
        for b in range(a, len(raw) + 1, 5):
            assert parse([raw[:a], raw[a:b], raw[b:]]) == expected, (a, b)


def test_byte_by_byte() -> None:
    raw = CASES[1].values[0]
    assert parse([raw[i:i + 1] for i in range(len(raw))]) == CASES[1].values[1]


def test_held_back_bytes_are_bounded() -> None:
    """A large part is handed on as it arrives: at most a delimiter's length waits."""
    parser = MultipartParser(B)
    parser.feed(b"--" + B + b"\r\n" + field("file", b"", "big"))
    handed = 0
    for _ in range(100):
        handed += sum(len(e.data) for e in parser.feed(b"x" * 65536) if isinstance(e, PartData))
        assert 100 * 65536 >= handed >= (_ + 1) * 65536 - len(B) - 4


ERRORS = [
    pytest.param(b"--" + B + b"\r\n" + field("a", b"1"), "ended before", id="no_close"),
    pytest.param(b"no boundary at all", "ended before", id="no_delimiter"),
    pytest.param(body(b"Content-Type: text/plain\r\n\r\nx"), "Content-Disposition",
                 id="no_disposition"),
    pytest.param(body(b"Content-Disposition: form-data\r\n\r\nx"), "no field name",
                 id="no_name"),
    pytest.param(body(b"Content-Disposition: attachment; name=\"a\"\r\n\r\nx"),
                 "Content-Disposition", id="not_form_data"),
    pytest.param(body(b"garbage header line\r\n\r\nx"), "malformed multipart header",
                 id="bad_header"),
    pytest.param(b"--" + B + b"junk\r\n", "boundary line", id="junk_after_delimiter"),
    pytest.param(body(b"X-Big: " + b"a" * 20000 + b"\r\n\r\nx"), "too large",
                 id="huge_headers"),
]


@pytest.mark.parametrize(("raw", "message"), ERRORS)
def test_malformed(raw: bytes, message: str) -> None:
    parser = MultipartParser(B)
    with pytest.raises(MultipartError, match=message):
        parser.feed(raw)
        parser.close()


def test_too_many_parts() -> None:
    parser = MultipartParser(B, max_parts=3)
    with pytest.raises(MultipartError, match="too many parts"):
        parser.feed(body(*[field(f"f{i}", b"x") for i in range(4)]))


@pytest.mark.parametrize(("header", "expected"), [
    ("multipart/form-data; boundary=abc", b"abc"),
    ('multipart/form-data; boundary="a b:c"', b"a b:c"),
    ("Multipart/Form-Data;charset=utf-8;BOUNDARY=----x", b"----x"),
])
def test_boundary_of(header: str, expected: bytes) -> None:
    assert boundary_of(header) == expected


@pytest.mark.parametrize("header", ["application/json", "multipart/form-data",
                                    "multipart/form-data; boundary=" + "x" * 71, ""])
def test_boundary_of_refuses(header: str) -> None:
    with pytest.raises(MultipartError):
        boundary_of(header)
