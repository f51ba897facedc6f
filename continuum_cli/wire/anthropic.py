"""The inbound Anthropic Messages request, parsed leniently (checklist item 1).

Claude Code adds fields and block types with every release (`context_management`,
`output_config`, `safeguards`, `tool_reference`, `role:"system"` messages, server tools without
`input_schema`). A closed schema answers those with 422 and breaks the client, so every model
here allows extra fields and content blocks stay plain dicts. Only the few things we cannot
work without are checked, and a failure is an `InvalidRequest` (400) naming the field.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from continuum_cli.errors import InvalidRequest
from continuum_cli.wire.json_text import parse_json_body

Block = dict[str, Any]
CLIENT_TOOL_KINDS = ("bash", "text_editor", "computer", "memory")
_ROLES = ("user", "assistant", "system")


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


class ToolDef(_Lenient):
    """A custom tool (`name`, `input_schema`) or a server tool (`type: web_search_...`)."""

    name: str = ""
    type: str | None = None
    description: str | None = None
    input_schema: dict[str, Any] | None = None

    @property
    def is_server_tool(self) -> bool:
        """Anthropic-executed tools carry a versioned `type` and no schema."""
        return self.type not in (None, "", "custom") and self.builtin_kind is None

    @property
    def builtin_kind(self) -> str | None:
        """`bash`, `text_editor`, `computer` or `memory` for an Anthropic-defined tool the
        client executes (`text_editor_20250728`, ...): versioned and schema-less like a
        server tool, but a function for the model (translate/builtin_tools.py)."""
        kind, _, version = (self.type or "").rpartition("_")
        return kind if kind in CLIENT_TOOL_KINDS and version.isdigit() else None


class Message(_Lenient):
    role: str
    content: str | list[Block] = ""

    @field_validator("role")
    @classmethod
    def _known_role(cls, role: str) -> str:
        if role not in _ROLES:
            raise ValueError(f"unexpected role {role!r}; expected user, assistant or system")
        return role

    def blocks(self) -> list[Block]:
        """Content as a list of blocks (a string is one text block)."""
        if isinstance(self.content, str):
            return [{"type": "text", "text": self.content}]
        return self.content


class MessagesRequest(_Lenient):
    model: str
    messages: list[Message]
    system: str | list[Block] | None = None
    tools: list[ToolDef] | None = None
    tool_choice: dict[str, Any] | None = None
    max_tokens: int | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    thinking: dict[str, Any] | None = None
    stream: bool = False
    metadata: dict[str, Any] | None = None
    output_config: dict[str, Any] | None = None

    @field_validator("max_tokens", "top_k", mode="before")
    @classmethod
    def _integer(cls, value: Any) -> Any:
        # pydantic's lax mode would take "10" and True; Anthropic wants a JSON integer
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError("must be an integer")

    def custom_tools(self) -> list[ToolDef]:
        return [t for t in self.tools or [] if not t.is_server_tool]

    def server_tools(self) -> list[ToolDef]:
        return [t for t in self.tools or [] if t.is_server_tool]


def walk_blocks(blocks: list[Any]) -> Iterator[Block]:
    """Every block object of `blocks` in document order, with the blocks inside each
    `tool_result`'s content list right after it, however deep they nest -- without
    recursion, so a hostile nesting cannot exhaust the stack."""
    stack = [iter(blocks)]
    while stack:
        for block in stack[-1]:
            if not isinstance(block, dict):
                continue
            yield block
            inner = block.get("content") if block.get("type") == "tool_result" else None
            if isinstance(inner, list):
                stack.append(iter(inner))
                break
        else:
            stack.pop()


def parse_messages_request(
    body: bytes | str | dict[str, Any], *, require_max_tokens: bool = True
) -> MessagesRequest:
    """Parse a Messages (or count_tokens, `require_max_tokens=False`) request body."""
    data = _load_json(body)
    try:
        req = MessagesRequest.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(_describe(exc)) from None
    _check_required(req, require_max_tokens)
    return req


def _load_json(body: bytes | str | dict[str, Any]) -> dict[str, Any]:
    return body if isinstance(body, dict) else parse_json_body(body)


def _check_required(req: MessagesRequest, require_max_tokens: bool) -> None:
    if not req.messages:
        raise InvalidRequest("messages: at least one message is required")
    if require_max_tokens and req.max_tokens is None:
        raise InvalidRequest("max_tokens: field required")
    if req.max_tokens is not None and req.max_tokens < 1:
        raise InvalidRequest("max_tokens: must be greater than or equal to 1")


def _describe(exc: ValidationError) -> str:
    """First validation error as `a.b.0: reason`, in Anthropic's plain wording."""
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"] if not _is_union_tag(p)]
    if len(loc) >= 3 and loc[0] == "messages" and loc[2] == "content":
        # a union error: pydantic would only report the first alternative
        return f"messages.{loc[1]}.content: must be a string or a list of content blocks"
    if loc and loc[0] == "system":
        return "system: must be a string or a list of text blocks"
    where = ".".join(loc)
    return f"{where}: {_reason(err)}" if where else _reason(err)


def _is_union_tag(part: Any) -> bool:
    # pydantic adds `str` / `list[dict[str,any]]` to locations inside unions
    return isinstance(part, str) and ("[" in part or part in ("str", "int", "float", "bool"))


def _reason(err: Any) -> str:
    kind = err["type"]
    if kind == "missing":
        return "field required"
    if kind.startswith("int_"):
        return "must be an integer"
    if kind == "value_error":
        return str(err["ctx"]["error"]) if "ctx" in err else err["msg"]
    if kind in ("string_type", "list_type", "dict_type", "float_type", "bool_type"):
        return f"must be a {kind.split('_')[0].replace('dict', 'object')}"
    return err["msg"][:1].lower() + err["msg"][1:]
