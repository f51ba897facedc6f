"""Hypothesis strategies: Anthropic Messages requests (valid, then mutated) and OpenAI
chat-completion chunk sequences (well formed, then broken).

The request strategy builds what clients send, Claude Code above all: text, images, tool
calls and results (with images and documents inside), thinking, documents, search results,
server-tool history, tool references, unknown block types; custom, built-in, server and
deferred tools; every top-level field. `mutate()` then breaks one to three places of a valid request
(driven by a `random.Random` that hypothesis seeds, so one example yields many requests):
a key removed, a value replaced by any JSON value, a list emptied, a block's type changed.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

from hypothesis import strategies as st

Json = Any

# -- JSON values -------------------------------------------------------------------------------
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63),
                     st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
json_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)
texts = st.one_of(st.text(max_size=40), st.sampled_from(
    ["", " ", "\n", "<think>why</think>answer", "</think>", "<tool_call>", "{\"a\": 1}",
     "<system-reminder>x</system-reminder>", "ünïcødé ✓ 🙂", "\x00\x1f", "\ud800"[:0]]))
names = st.one_of(st.sampled_from(["Bash", "Read", "Edit", "mcp__srv__tool", "web_search",
                                   "a.b", "x" * 70, "tool with spaces", ""]),
                  st.text(min_size=1, max_size=12))
ids = st.one_of(st.sampled_from(["toolu_01", "toolu_02", "srvtoolu_01", "call_1", ""]),
                st.text(max_size=10))

# -- content blocks -----------------------------------------------------------------------------
_b64 = st.sampled_from(["aGVsbG8=", "iVBORw0KGgo=", "not base64!", ""])
image_sources = st.one_of(
    st.fixed_dictionaries({"type": st.just("base64"), "media_type": st.sampled_from(
        ["image/png", "image/jpeg", "image/gif", "image/webp", "text/plain"]), "data": _b64}),
    st.fixed_dictionaries({"type": st.just("url"), "url": st.sampled_from(
        ["http://127.0.0.1:9/a.png", "", "ftp://x"])}),
    st.fixed_dictionaries({"type": st.just("file"), "file_id": ids}))
text_blocks = st.fixed_dictionaries({"type": st.just("text"), "text": texts},
                                    optional={"cache_control": st.just({"type": "ephemeral"}),
                                              "citations": st.none()})
image_blocks = st.fixed_dictionaries({"type": st.just("image"), "source": image_sources})
document_sources = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "media_type": st.just("text/plain"),
                           "data": texts}),
    st.fixed_dictionaries({"type": st.just("base64"), "media_type": st.sampled_from(
        ["application/pdf", "text/plain", "text/csv"]), "data": _b64}),
    st.fixed_dictionaries({"type": st.just("content"),
                           "content": st.one_of(texts, st.lists(st.one_of(
                               text_blocks, image_blocks), max_size=3))}),
    st.fixed_dictionaries({"type": st.just("url"), "url": st.just("http://127.0.0.1:9/a.pdf")}))
document_blocks = st.fixed_dictionaries(
    {"type": st.just("document"), "source": document_sources},
    optional={"title": texts, "context": texts, "citations": st.just({"enabled": True})})
search_result_blocks = st.fixed_dictionaries(
    {"type": st.just("search_result"), "source": st.text(max_size=20), "title": texts,
     "content": st.lists(text_blocks, max_size=2)})
tool_reference_blocks = st.fixed_dictionaries({"type": st.just("tool_reference"),
                                               "tool_name": names})
unknown_blocks = st.fixed_dictionaries({"type": st.text(min_size=1, max_size=12)},
                                       optional={"text": texts, "data": json_values})
inner_blocks = st.one_of(text_blocks, image_blocks, document_blocks, search_result_blocks,
                         tool_reference_blocks)
tool_result_blocks = st.fixed_dictionaries(
    {"type": st.just("tool_result"), "tool_use_id": ids,
     "content": st.one_of(texts, st.lists(inner_blocks, max_size=3), st.none())},
    optional={"is_error": st.booleans(), "cache_control": st.just({"type": "ephemeral"})})
tool_inputs = st.one_of(st.dictionaries(st.text(max_size=8), json_values, max_size=4),
                        st.just({}), st.text(max_size=20), st.none())
tool_use_blocks = st.fixed_dictionaries({"type": st.just("tool_use"), "id": ids,
                                         "name": names, "input": tool_inputs})
thinking_blocks = st.one_of(
    st.fixed_dictionaries({"type": st.just("thinking"), "thinking": texts,
                           "signature": st.text(max_size=10)}),
    st.fixed_dictionaries({"type": st.just("redacted_thinking"), "data": st.text(max_size=10)}))
server_blocks = st.lists(st.one_of(
    st.fixed_dictionaries({"type": st.just("server_tool_use"), "id": ids,
                           "name": st.just("web_search"),
                           "input": st.fixed_dictionaries({"query": texts})}),
    st.fixed_dictionaries({"type": st.just("web_search_tool_result"), "tool_use_id": ids,
                           "content": st.one_of(
                               st.lists(st.fixed_dictionaries({
                                   "type": st.just("web_search_result"), "url": st.just(
                                       "https://e.com"), "title": texts,
                                   "encrypted_content": st.text(max_size=20)}), max_size=2),
                               st.just({"type": "web_search_tool_result_error",
                                        "error_code": "unavailable"}))})), max_size=2)

user_content = st.one_of(texts, st.lists(st.one_of(
    text_blocks, image_blocks, document_blocks, tool_result_blocks, search_result_blocks,
    tool_reference_blocks, unknown_blocks), max_size=4))
assistant_content = st.one_of(texts, st.builds(
    lambda a, b: a + b,
    st.lists(st.one_of(text_blocks, thinking_blocks, tool_use_blocks, unknown_blocks),
             max_size=4), server_blocks))
messages = st.lists(st.one_of(
    st.fixed_dictionaries({"role": st.just("user"), "content": user_content}),
    st.fixed_dictionaries({"role": st.just("assistant"), "content": assistant_content}),
    st.fixed_dictionaries({"role": st.just("system"), "content": st.one_of(
        texts, st.lists(text_blocks, max_size=2))})), min_size=1, max_size=6)

# -- tools ---------------------------------------------------------------------------------------
schemas = st.one_of(
    st.fixed_dictionaries({"type": st.just("object"), "properties": st.dictionaries(
        st.text(min_size=1, max_size=8), st.fixed_dictionaries(
            {"type": st.sampled_from(["string", "integer", "array", "object", "boolean"])},
            optional={"description": texts}), max_size=3)},
        optional={"required": st.one_of(st.none(), st.lists(st.text(max_size=5), max_size=2)),
                  "$schema": st.just("http://json-schema.org/draft-07/schema#"),
                  "additionalProperties": st.booleans()}),
    st.dictionaries(st.text(max_size=8), json_values, max_size=3))
custom_tools = st.fixed_dictionaries(
    {"name": names, "input_schema": schemas},
    optional={"description": texts, "defer_loading": st.booleans(),
              "cache_control": st.just({"type": "ephemeral"}), "type": st.just("custom")})
builtin_tools = st.fixed_dictionaries(
    {"type": st.sampled_from(["bash_20250124", "text_editor_20250728", "text_editor_20250124",
                              "computer_20250124", "memory_20250818", "web_search_20250305",
                              "web_fetch_20250910", "code_execution_20250825"]),
     "name": st.sampled_from(["bash", "str_replace_based_edit_tool", "computer", "memory",
                              "web_search", "web_fetch", "code_execution"])},
    optional={"display_width_px": st.integers(1, 4000), "max_uses": st.integers(0, 9),
              "allowed_domains": st.lists(st.text(max_size=8), max_size=2)})
tool_choices = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["auto", "any", "none"])},
                          optional={"disable_parallel_tool_use": st.booleans()}),
    st.fixed_dictionaries({"type": st.just("tool"), "name": names}))

requests = st.fixed_dictionaries(
    {"model": st.sampled_from(["claude-haiku-4-5-20251001", "claude-sonnet-4-5", "claude-opus-4-1",
                               "test-model"]),
     "max_tokens": st.integers(1, 128_000), "messages": messages},
    optional={
        "system": st.one_of(texts, st.lists(text_blocks, max_size=3)),
        "tools": st.lists(st.one_of(custom_tools, builtin_tools), max_size=4),
        "tool_choice": tool_choices,
        "thinking": st.one_of(st.fixed_dictionaries({"type": st.just("enabled"),
                                                     "budget_tokens": st.integers(0, 64000)}),
                              st.just({"type": "disabled"}), st.just({"type": "adaptive"})),
        "stop_sequences": st.lists(st.text(max_size=5), max_size=3),
        "temperature": st.floats(0, 1), "top_p": st.floats(0, 1), "top_k": st.integers(0, 500),
        "stream": st.booleans(),
        "metadata": st.fixed_dictionaries({"user_id": st.text(max_size=20)}),
        "output_config": st.fixed_dictionaries({"effort": st.sampled_from(["low", "high"])}),
        "context_management": json_values,
        "service_tier": st.sampled_from(["auto", "standard_only"]),
    })


# -- mutations -----------------------------------------------------------------------------------
def _paths(value: Json, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    stack = [(value, prefix)]
    while stack:
        node, at = stack.pop()
        children = node.items() if isinstance(node, dict) else \
            enumerate(node) if isinstance(node, list) else ()
        for key, child in children:
            out.append((*at, key))
            stack.append((child, (*at, key)))
    return out


_RETYPES = ["text", "image", "tool_use", "tool_result", "document", "thinking",
            "redacted_thinking", "server_tool_use", "web_search_tool_result", "search_result",
            "tool_reference", "?", ""]
_ODD = [None, True, False, 0, -1, 1.5, 2**70, "", " ", "x", [], {}, [None], {"": None},
        {"type": "text"}, [{"type": "text", "text": 1}], "\u0000", "🙂" * 3]


def random_json(rng: random.Random, depth: int = 0) -> Json:
    """A small random JSON value (cheaper than a strategy: mutations draw thousands)."""
    roll = rng.random()
    if depth > 2 or roll < 0.5:
        return copy.deepcopy(rng.choice(_ODD))  # later mutations change it in place
    if roll < 0.75:
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(["type", "text", "content", "id", "x", ""]): random_json(rng, depth + 1)
            for _ in range(rng.randint(0, 3))}


def mutate(request: Json, rng: random.Random) -> Json:
    """`request` with one to three places broken: a key removed, a value replaced by any
    JSON value, a container emptied, a block's `type` changed, an element duplicated."""
    value = json.loads(json.dumps(request))
    for _ in range(rng.randint(1, 3)):
        paths = _paths(value)
        path = rng.choice(paths)
        kind = rng.choice(["replace", "replace", "delete", "empty", "retype", "duplicate"])
        if not path:
            value = random_json(rng) if kind == "replace" else value
            continue
        parent = value
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        if kind == "delete":
            del parent[key]
        elif kind == "empty":
            parent[key] = type(parent[key])() if isinstance(parent[key], (list, dict, str)) \
                else None
        elif kind == "retype" and isinstance(parent[key], dict):
            parent[key]["type"] = rng.choice(_RETYPES)
        elif kind == "duplicate" and isinstance(parent, list):
            parent.insert(key, json.loads(json.dumps(parent[key])))
        else:
            parent[key] = random_json(rng)
    return value


# -- OpenAI chunk sequences ----------------------------------------------------------------------
def _chunk(delta: Json, finish: str | None = None, **extra: Any) -> Json:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


_arguments = st.one_of(
    st.dictionaries(st.text(max_size=6), json_values, max_size=3).map(json.dumps),
    st.sampled_from(['{"command": "ls', "{'a': True,}", '{"a": 1}{"b": 2}', "[1, 2]", "",
                     '"{\\"a\\": 1}"', "not json", '{"a": "\\u12', '{"a": [1, {"b": nu']))


@st.composite
def tool_call_deltas(draw: st.DrawFn) -> list[Json]:
    """One call's deltas: id and name first (maybe missing or repeated), arguments split."""
    index = draw(st.integers(0, 3))
    text = draw(_arguments)
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=4)))
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    head: Json = {"index": index, "type": "function", "function": {"arguments": ""}}
    if draw(st.booleans()):
        head["id"] = draw(st.sampled_from(["call_a", "call_b", ""]))
    if draw(st.booleans()) or True:
        head["function"]["name"] = draw(st.sampled_from(["Bash", "Read", "unknown", ""]))
    out = [head]
    for piece in pieces:
        delta: Json = {"index": index, "function": {"arguments": piece}}
        if draw(st.integers(0, 9)) == 0:
            delta["id"] = head.get("id", "call_z")  # duplicated
        if draw(st.integers(0, 9)) == 0:
            delta["function"]["name"] = head["function"].get("name", "Bash")  # duplicated
        out.append(delta)
    return out


@st.composite
def chunk_sequences(draw: st.DrawFn) -> list[Json]:
    """What an OpenAI-compatible backend streams, well formed or not: role, text, reasoning,
    tool calls (interleaved, out of order), finish, usage; then maybe fields dropped,
    duplicated or broken."""
    chunks: list[Json] = []
    if draw(st.booleans()):
        chunks.append(_chunk({"role": "assistant", "content": ""}))
    calls = draw(st.lists(tool_call_deltas(), max_size=3))
    parts: list[Json] = []
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["content", "reasoning_content", "reasoning"]))
        parts.append({kind: draw(texts)})
    for call in calls:
        parts.extend({"tool_calls": [d]} for d in call)
    order = draw(st.permutations(range(len(parts)))) if draw(st.booleans()) else \
        list(range(len(parts)))
    chunks.extend(_chunk(parts[i]) for i in order)
    finish = draw(st.sampled_from(["stop", "length", "tool_calls", "content_filter", None]))
    if finish is not None:
        chunks.append(_chunk({}, finish))
    if draw(st.booleans()):
        chunks.append({"id": "chatcmpl-1", "choices": [], "usage": {
            "prompt_tokens": draw(st.integers(0, 10**6)),
            "completion_tokens": draw(st.integers(0, 10**6))}})
    return _break(chunks, draw)


def _break(chunks: list[Json], draw: st.DrawFn) -> list[Json]:
    for _ in range(draw(st.integers(0, 3))):
        if not chunks:
            break
        i = draw(st.integers(0, len(chunks) - 1))
        how = draw(st.sampled_from(["drop_choices", "empty_choices", "drop_delta",
                                    "null_delta", "duplicate", "bad_index", "drop"]))
        chunk = json.loads(json.dumps(chunks[i]))
        choice = (chunk.get("choices") or [{}])[0]
        if how == "drop_choices":
            chunk.pop("choices", None)
        elif how == "empty_choices":
            chunk["choices"] = []
        elif how == "drop_delta":
            choice.pop("delta", None)
        elif how == "null_delta":
            choice["delta"] = None
        elif how == "bad_index" and "delta" in choice and choice["delta"] and \
                choice["delta"].get("tool_calls"):
            choice["delta"]["tool_calls"][0]["index"] = draw(st.sampled_from([None, -1, "0", 99]))
        elif how == "duplicate":
            chunks.insert(i, chunk)
            continue
        elif how == "drop":
            chunks.pop(i)
            continue
        chunks[i] = chunk
    return chunks


def sse_bytes(chunks: list[Json], done: bool) -> bytes:
    body = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)
    return body + (b"data: [DONE]\n\n" if done else b"")


@st.composite
def split(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """`data` cut at random points (the reads a socket would return)."""
    cuts = sorted(set(draw(st.lists(st.integers(0, len(data)), max_size=12))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True) if b > a]
