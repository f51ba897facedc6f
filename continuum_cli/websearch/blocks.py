"""Pure builders for the web_search server-tool blocks, their SSE events, and domain rules.

Shapes follow websearch.md §1.3 (blocks), §1.4 (error result), §1.5 (stream order) and
§1.7 (our own `encrypted_content`, decoded again when a client replays the blocks).
No I/O; the only impurity is `new_tool_use_id()` drawing from `secrets`.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import string
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from continuum_cli.translate.server_blocks import render_server_result
from continuum_cli.wire.json_text import loads as bounded_loads

if TYPE_CHECKING:
    from continuum_cli.websearch.providers.base import SearchResult

Event = tuple[str, dict[str, Any]]
Block = dict[str, Any]

TOOL_NAME = "web_search"
# §1.7 [INF]: opaque to clients, recognisable by us on replay.
ENCRYPTED_PREFIX = "continuum:v1:"
_ID_ALPHABET = string.ascii_letters + string.digits
_SNIPPET_CAP = 2000

# §1.4: the SDK's codes; docs say `invalid_input` where the SDK says `invalid_tool_input`.
ERROR_CODES = (
    "invalid_tool_input", "unavailable", "max_uses_exceeded", "too_many_requests",
    "query_too_long", "request_too_large",
)
ERROR_MEANINGS = {
    "invalid_tool_input": "the search query was empty or malformed",
    "invalid_input": "the search query was empty or malformed",
    "unavailable": "the search provider is unavailable",
    "max_uses_exceeded": "the maximum number of searches for this request was reached",
    "too_many_requests": "the search provider's rate limit was hit",
    "query_too_long": "the query is longer than the search provider allows",
    "request_too_large": "the request was too large",
}


def new_tool_use_id() -> str:
    """`srvtoolu_` + 24 alphanumerics, like Anthropic's own ids (§1.3)."""
    return "srvtoolu_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


def server_tool_use_block(tool_use_id: str, query: str) -> Block:
    return {"type": "server_tool_use", "id": tool_use_id, "name": TOOL_NAME,
            "input": {"query": query}}


def encode_encrypted_content(result: SearchResult, *, provider: str, query: str) -> str:
    payload: dict[str, Any] = {"provider": provider, "query": query,
                               "snippet": result.snippet[:_SNIPPET_CAP],
                               "page_age": result.page_age}
    extra = result.extra.get("extra_snippets") if result.extra else None
    if extra:
        payload["extra_snippets"] = list(extra)[:5]
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return ENCRYPTED_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_encrypted_content(value: object) -> dict[str, Any] | None:
    """The payload of one of our own `encrypted_content` values; None for anything else
    (e.g. Anthropic-minted content, which only Anthropic can read)."""
    if not isinstance(value, str) or not value.startswith(ENCRYPTED_PREFIX):
        return None
    data = value[len(ENCRYPTED_PREFIX):]
    try:
        raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
        payload = bounded_loads(raw)
    except (binascii.Error, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def result_block(
    tool_use_id: str, results: Sequence[SearchResult], *, provider: str, query: str
) -> Block:
    content = [
        {"type": "web_search_result", "title": r.title or r.url, "url": r.url,
         "encrypted_content": encode_encrypted_content(r, provider=provider, query=query),
         "page_age": r.page_age}
        for r in results
    ]
    return {"type": "web_search_tool_result", "tool_use_id": tool_use_id, "content": content}


def error_result_block(tool_use_id: str, error_code: str) -> Block:
    return {"type": "web_search_tool_result", "tool_use_id": tool_use_id,
            "content": {"type": "web_search_tool_result_error", "error_code": error_code}}


def text_block(text: str) -> Block:
    return {"type": "text", "text": text}


def server_usage(searches: int) -> dict[str, int]:
    """`usage.server_tool_use`; both counters exist in the SDK model (§1.3)."""
    return {"web_search_requests": searches, "web_fetch_requests": 0}


# -- stream events (§1.5) -------------------------------------------------------------------


def _start(index: int, block: Block) -> Event:
    return "content_block_start", {"type": "content_block_start", "index": index,
                                   "content_block": block}


def _delta(index: int, delta: Block) -> Event:
    return "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}


def _stop(index: int) -> Event:
    return "content_block_stop", {"type": "content_block_stop", "index": index}


def server_tool_use_events(index: int, block: Block) -> list[Event]:
    """Start with empty `input`, the query as one `input_json_delta`, then stop: the same
    pattern as `tool_use` (§1.5); Claude Code shows progress by regex on that delta."""
    shell = {k: v for k, v in block.items() if k != "input"} | {"input": {}}
    partial = json.dumps(block["input"], ensure_ascii=False)
    return [_start(index, shell),
            _delta(index, {"type": "input_json_delta", "partial_json": partial}),
            _stop(index)]


def result_block_events(index: int, block: Block) -> list[Event]:
    """Result blocks arrive whole in `content_block_start`, with no deltas (§1.5)."""
    return [_start(index, block), _stop(index)]


def text_block_events(index: int, text: str) -> list[Event]:
    return [_start(index, text_block("")),
            _delta(index, {"type": "text_delta", "text": text}),
            _stop(index)]


# -- text for the model ---------------------------------------------------------------------


def snippet_of(item: Mapping[str, Any]) -> str | None:
    """The snippet behind one of our `web_search_result` items, for history replay and the
    tool message (`translate.server_blocks` renders; this decodes). Foreign results -> None."""
    decoded = decode_encrypted_content(item.get("encrypted_content"))
    if not decoded:
        return None
    parts = [str(decoded.get("snippet") or ""), *map(str, decoded.get("extra_snippets") or [])]
    return " ".join(p for p in parts if p).strip() or None


def results_text(use_block: Block, result: Block) -> str:
    """One rendering of a search (the same text the backend model reads as the tool result)."""
    return render_server_result(result, call=use_block, snippet_of=snippet_of)


def render_error(query: str, error_code: str) -> str:
    """A plain sentence for the client when a search failed and no model turn follows."""
    meaning = ERROR_MEANINGS.get(error_code, "the search failed")
    return f'The web search for "{query}" failed ({error_code}: {meaning}).'


# -- domain rules (§1.2: no scheme, subdomains included, subpaths supported) -----------------


def normalize_domain(rule: str) -> str:
    text = rule.strip().lower()
    for scheme in ("https://", "http://"):
        if text.startswith(scheme):
            text = text[len(scheme):]
    if text.startswith("*."):
        text = text[2:]
    return text.rstrip("/")


def normalize_domains(rules: Iterable[str] | None) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for rule in rules or ():
        normalized = normalize_domain(str(rule))
        if normalized:
            seen[normalized] = None
    return tuple(seen)


def domain_matches(url: str, rule: str) -> bool:
    """`example.com` matches `docs.example.com`; `example.com/blog` matches `/blog/post`
    but not `/blogger`."""
    domain, _, prefix = normalize_domain(rule).partition("/")
    try:
        parts = urlsplit(url if "://" in url else "http://" + url)
        host = (parts.hostname or "").rstrip(".")
    except ValueError:
        return False
    if not domain or not (host == domain or host.endswith("." + domain)):
        return False
    if not prefix:
        return True
    path, want = parts.path or "/", "/" + prefix
    return path == want or path.startswith(want + "/")


def url_allowed(url: str, allowed: Sequence[str], blocked: Sequence[str]) -> bool:
    if allowed and not any(domain_matches(url, rule) for rule in allowed):
        return False
    return not any(domain_matches(url, rule) for rule in blocked)


_R = TypeVar("_R", bound="SearchResult")


def filter_results(
    results: Iterable[_R], allowed: Sequence[str], blocked: Sequence[str]
) -> list[_R]:
    """Provider operators are best effort, so every result is checked again (§3.4)."""
    return [r for r in results if url_allowed(r.url, allowed, blocked)]
