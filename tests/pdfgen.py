"""A tiny PDF writer for tests: text pages, image-only pages, and hostile files.

Real PDF 1.4 syntax with a correct cross-reference table, so pypdf (and any other reader)
parses the good ones without repair. Encryption goes through pypdf's own writer.
"""

from __future__ import annotations

import io
import zlib


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _text_stream(lines: list[str]) -> bytes:
    ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
    for line in lines:
        ops.append(f"({_escape(line)}) Tj T*")
    ops.append("ET")
    return "\n".join(ops).encode("latin-1")


_IMAGE_STREAM = b"q 100 0 0 100 72 600 cm BI /W 2 /H 2 /BPC 8 /CS /G ID \x00\xff\xff\x00 EI Q"


def build(objects: list[bytes], root: int = 1, info: int | None = None,
          trailer_extra: str = "") -> bytes:
    """A PDF of numbered `objects` (object i+1 is objects[i]) with a valid xref table."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    extra = f" /Info {info} 0 R" if info else ""
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root {root} 0 R{extra}{trailer_extra} >>\n"
              f"startxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def stream(data: bytes, extra: str = "") -> bytes:
    return f"<< /Length {len(data)}{extra} >>\nstream\n".encode() + data + b"\nendstream"


def pdf(pages: list[list[str] | None], title: str | None = None) -> bytes:
    """One page per entry: a list of text lines, or None for an image-only (scanned) page."""
    n = len(pages)
    # 1 catalog, 2 pages, 3 font, then (page, content) pairs, then the info dict
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(n))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode(),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    for i, lines in enumerate(pages):
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                       f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>"
                       .encode())
        objects.append(stream(_IMAGE_STREAM if lines is None else _text_stream(lines)))
    info = None
    if title is not None:
        objects.append(f"<< /Title ({_escape(title)}) >>".encode())
        info = len(objects)
    return build(objects, info=info)


def encrypted(data: bytes, password: str = "secret", owner: str | None = None) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(password, owner, algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def nested_pdf(depth: int = 200_000) -> bytes:
    """A page whose /Contents is an array nested `depth` deep."""
    nested = b"[" * depth + b"]" * depth
    return build([b"<< /Type /Catalog /Pages 2 0 R >>",
                  b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                  b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents " + nested
                  + b" >>"])


def bomb_pdf(megabytes: int = 2000) -> bytes:
    """A content stream that inflates from a few MB to `megabytes` of text operators."""
    chunk = b"(A) Tj " * (2**20 // 7)
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(b"BT /F1 12 Tf ")]
    for _ in range(megabytes):
        parts.append(compressor.compress(chunk))
    parts.append(compressor.compress(b" ET") + compressor.flush())
    data = b"".join(parts)
    return _one_page(stream(data, " /Filter /FlateDecode"))


def slow_pdf(operators: int = 3_000_000) -> bytes:
    """A valid page with millions of text operators: parsing it takes a long time."""
    body = b"BT /F1 12 Tf " + b"(x) Tj 1 0 Td " * operators + b"ET"
    return _one_page(stream(body))


def xref_loop_pdf() -> bytes:
    """A cross-reference chain whose /Prev points back at itself."""
    base = pdf([["loop"]])
    xref_at = int(base[base.rindex(b"startxref"):].split()[1])
    head = base[:base.rindex(b"trailer")]
    return head + (f"trailer\n<< /Size 6 /Root 1 0 R /Prev {xref_at} >>\nstartxref\n"
                   f"{xref_at}\n%%EOF\n").encode()


def _one_page(contents: bytes) -> bytes:
    return build([b"<< /Type /Catalog /Pages 2 0 R >>",
                  b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                  b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                  b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
                  contents,
                  b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"])
