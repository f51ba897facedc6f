"""Map httpx exceptions and upstream error statuses onto the ApiError tree, in one place.

Rules (checklist §J): upstream 503 / queue full -> 529 overloaded (Claude Code retries);
context overflow in any wording -> 400 "prompt is too long: N tokens > M maximum" (not retried);
401/403 -> the router's backend credentials are wrong, said so with the config key to fix;
"this model cannot use tools / read images" in any engine's wording -> 400 naming the backend,
what the model cannot do and the fix (checklist items 11, 24), so Claude Code stops instead of
retrying a request that can never succeed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

from continuum_cli.backends.profiles import CapabilityError, capability_error, profile_for
from continuum_cli.config.models import Backend
from continuum_cli.errors import (
    ApiError,
    AuthenticationFailed,
    BackendUnreachable,
    InvalidRequest,
    NotFound,
    Overloaded,
    PermissionDenied,
    PromptTooLong,
    RateLimited,
    ResourcesExhausted,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from continuum_cli.upstream.transport import NoDescriptors
from continuum_cli.wire.json_text import loads as bounded_loads

_NUMBERS = re.compile(r"\d+")
_QUEUE_FULL = re.compile(r"queue (is )?full|no (available )?capacity|server busy|overloaded",
                         re.IGNORECASE)


@contextmanager
def map_httpx_errors(backend: Backend, *, mid_stream: bool = False) -> Iterator[None]:
    try:
        yield
    except httpx.TimeoutException as exc:
        kind = "connecting to" if isinstance(exc, httpx.ConnectTimeout) else "waiting for"
        raise _failed(UpstreamTimeout(f"timed out {kind} backend {backend.name}"),
                      "timeout", exc) from exc
    except NoDescriptors as exc:
        raise ResourcesExhausted(
            f"the router is out of file descriptors and cannot connect to backend "
            f"{backend.name} now ({_reason(exc)}); retry shortly",
            hint="raise the router's open-file limit (`ulimit -n`)") from exc
    except httpx.ConnectError as exc:
        raise _failed(BackendUnreachable(
            f"backend {backend.name} is unreachable ({_reason(exc)})",
            hint=f"start the backend or fix backends[].url for {backend.name}",
        ), "connect", exc) from exc
    except httpx.HTTPError as exc:
        where = "closed the stream mid-response" if mid_stream else "failed"
        raise _failed(UpstreamUnavailable(f"backend {backend.name} {where} ({_reason(exc)})"),
                      "reset", exc) from exc


def _failed(error: ApiError, failure: str, cause: Exception) -> ApiError:
    """Tag an error with how the exchange failed, for failover and passive ejection."""
    error.upstream_failure, error.upstream_cause = failure, type(cause).__name__
    return error


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text if text else type(exc).__name__


def upstream_message(text: str) -> str:
    """The human message inside an upstream error body (OpenAI, llama.cpp, vLLM, FastAPI)."""
    try:
        data: Any = bounded_loads(text)
    except ValueError:
        return text.strip()[:500]
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            return str(error.get("message") or error.get("detail") or error)[:500]
        if isinstance(error, str):
            return error[:500]
        if "detail" in data:
            return str(data["detail"])[:500]
        if "message" in data:
            return str(data["message"])[:500]
    return text.strip()[:500]


# statuses under which engines report a context overflow (LM Studio uses 500); a 429 that
# mentions tokens is a rate limit, never an overflow
_OVERFLOW_STATUSES = frozenset({400, 413, 422, 500})


def map_status(backend: Backend, status: int, text: str, headers: Mapping[str, str]) -> ApiError:
    error = _map_status(backend, status, text, headers)
    error.upstream_status = status
    return error


def _map_status(backend: Backend, status: int, text: str, headers: Mapping[str, str]
                ) -> ApiError:
    message = upstream_message(text)
    if status in _OVERFLOW_STATUSES and profile_for(backend.type).matches_overflow(text):
        return _overflow_from_fields(text) or prompt_too_long(message)
    lacking = capability_error(message) if status in _CAPABILITY_STATUSES else None
    if lacking is not None:
        return missing_capability(backend, lacking, message)
    return _by_status(backend, status, message, headers)


# llama.cpp reports a missing --jinja / mmproj as 500, OpenRouter as 404, vLLM/Ollama as 400
_CAPABILITY_STATUSES = frozenset({400, 404, 422, 500, 501})
_CANNOT = {"tools": "cannot use tools", "images": "cannot read images"}


def missing_capability(backend: Backend, lacking: CapabilityError, message: str
                       ) -> InvalidRequest:
    """400 invalid_request_error: which backend, what its model cannot do, how to fix it.

    Not an upstream 404/500: Claude Code would retry a 500 and report a 404 as a missing
    model, while the request can only succeed once the operator changes the backend or the
    model (checklist items 11, 24; OpenRouter's 404 "No endpoints found that support tool
    use" in musistudio/claude-code-router#583)."""
    cannot = _CANNOT.get(lacking.capability, "cannot serve this request")
    return InvalidRequest(f"backend {backend.name}: the model {cannot} ({message}); "
                          f"fix: {lacking.fix}")


def _overflow_from_fields(text: str) -> PromptTooLong | None:
    """llama.cpp names the counts: `{"error": {..., "n_prompt_tokens": N, "n_ctx": M}}`."""
    try:
        error = bounded_loads(text).get("error")
    except (ValueError, AttributeError):
        return None
    if isinstance(error, dict) and isinstance(error.get("n_prompt_tokens"), int) \
            and isinstance(error.get("n_ctx"), int):
        return PromptTooLong(error["n_prompt_tokens"], error["n_ctx"],
                             detail=str(error.get("message", "")))
    return None


def _by_status(backend: Backend, status: int, message: str,
               headers: Mapping[str, str]) -> ApiError:
    said = f"backend {backend.name}: {message}" if message else f"backend {backend.name}"
    if status in (400, 422):
        return InvalidRequest(f"{said}")
    if status == 401:
        return AuthenticationFailed(
            f"backend {backend.name} rejected the router's credentials ({message}); "
            f"check backends[].api_key for {backend.name}"
        )
    if status == 403:
        return PermissionDenied(f"{said}")
    if status == 404:
        return NotFound(f"{said}")
    if status in (408, 504):
        return UpstreamTimeout(f"{said}")
    if status == 429:
        return RateLimited(f"{said}", headers=_retry_headers(headers))
    if status == 503 or _QUEUE_FULL.search(message):
        return Overloaded(f"{said} (busy or loading; retry shortly)",
                          headers=_retry_headers(headers))
    return UpstreamUnavailable(f"{said} (HTTP {status})")


def _retry_headers(headers: Mapping[str, str]) -> dict[str, str]:
    value = headers.get("retry-after") if headers else None
    return {"retry-after": value} if value else {}


_SPLIT = re.compile(
    r"(?:maximum context length (?:is|of) (?P<max>\d+)).*?(?P<prompt>\d+) (?:tokens )?"
    r"(?:in|from) the (?:input )?messages,? (?:and )?(?P<completion>\d+) (?:tokens )?"
    r"(?:in|for) the completion", re.IGNORECASE | re.DOTALL)


def completion_budget(exc: PromptTooLong) -> tuple[int, int] | None:
    """(prompt tokens, context window) when the engine said the *completion* did not fit.

    vLLM and SGLang count `max_tokens` against the window: "maximum context length is 32768
    tokens. However, you requested 160000 tokens (30000 in the messages, 128000 in the
    completion)". Claude Code asks for 32k-128k tokens, so a caller can retry with the room
    that is left instead of failing every turn (checklist item 25).
    """
    match = _SPLIT.search(str(exc.detail))
    if not match:
        return None
    return int(match.group("prompt")), int(match.group("max"))


MIN_COMPLETION = 16  # below this much room a retry is pointless: the prompt is the problem
FIT_MARGIN = 8


def refit_max_tokens(exc: PromptTooLong) -> int | None:
    """The `max_tokens` to retry with after `exc`, or None when the prompt itself is too long."""
    budget = completion_budget(exc)
    if budget is None or budget[0] >= budget[1] - MIN_COMPLETION:
        return None
    return budget[1] - budget[0] - FIT_MARGIN


def prompt_too_long(message: str) -> PromptTooLong:
    """Pull "N tokens" and "M maximum" out of the engine's wording where it gives them.

    llama.cpp: "request (2031 tokens) exceeds the available context size (512 tokens)";
    vLLM: "This model's maximum context length is 4096 tokens. However, you requested 5000
    tokens (...)"."""
    numbers = [int(n) for n in _NUMBERS.findall(message)]
    tokens = maximum = None
    lowered = message.lower()
    split = _SPLIT.search(message)
    if split:
        tokens, maximum = int(split.group("prompt")), int(split.group("max"))
        if tokens < maximum:  # the prompt fits; max_tokens is what does not
            return PromptTooLong(tokens, maximum, detail=message, text=(
                f"max_tokens too large: {tokens} prompt tokens + "
                f"{split.group('completion')} requested > {maximum} maximum"))
    elif "maximum context length is" in lowered and len(numbers) >= 2:
        maximum, tokens = numbers[0], numbers[1]
    elif "context length of only" in lowered and len(numbers) >= 2:
        # LM Studio: "Trying to keep the first N tokens ... context length of only M tokens"
        tokens, maximum = numbers[0], numbers[1]
    elif "exceeds" in lowered and len(numbers) >= 2:
        tokens, maximum = numbers[0], numbers[1]
    return PromptTooLong(tokens, maximum, detail=message)
