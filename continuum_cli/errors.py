"""The one exception tree of continuum, and the one place error bodies are built.

    ContinuumError                 anything continuum reports to a person or a client
    ├── ConfigError                config.yaml missing/invalid, unset ${VAR} (CLI exit 2)
    ├── ProviderError              a web-search provider failed (carries `error_code`)
    └── ApiError                   an HTTP-facing error: class attributes `status`, `error_type`
        ├── InvalidRequest             400 invalid_request_error
        │   ├── PromptTooLong              400 invalid_request_error ("prompt is too long: N > M")
        │   └── ModelDenied                400 invalid_request_error (gateway sign-in, unknown model)
        ├── AuthenticationFailed       401 authentication_error
        ├── PermissionDenied           403 permission_error
        ├── NotFound                   404 not_found_error
        │   ├── ModelNotFound              404 not_found_error ("Model <name> not found")
        │   └── FileNotFound               404 not_found_error (unknown, deleted or another key's file)
        ├── MethodNotAllowed           405 invalid_request_error
        ├── RequestTimeout             408 timeout_error
        ├── RequestTooLarge            413 request_too_large
        ├── RateLimited                429 rate_limit_error
        │   └── BudgetExhausted            429 billing_error (a key's budget is used up)
        ├── InternalError              500 api_error
        ├── StoreUnavailable           503 api_error (the state store: unreachable, locked, slow)
        ├── UpstreamUnavailable        502 api_error (backend failed / broke the protocol)
        │   └── BackendUnreachable         502 api_error (connection refused; 529 under /anthropic)
        ├── UpstreamTimeout            504 timeout_error
        ├── Overloaded                 529 overloaded_error (Claude Code retries these)
        │   └── ResourcesExhausted         529, 503 on OpenAI routes (out of file descriptors)
        └── OAuthError                 an OAuth endpoint's answer (`error` code, RFC 6749 §5.2)

Status and error types follow https://docs.claude.com/en/api/errors. `envelope()` is the only
producer of the Anthropic `{"type":"error","error":{...}}` body and of the OpenAI
`{"error":{...}}` body (and of the OAuth `{"error","error_description"}` body of the gateway's
sign-in endpoints); the server's 500 fallback and in-stream `event: error` both call it.
"""

from __future__ import annotations

from typing import Any, Literal

Flavor = Literal["anthropic", "openai", "oauth"]


class ContinuumError(Exception):
    """Base of everything continuum raises on purpose. `hint` says how to fix it."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class ConfigError(ContinuumError):
    """The configuration cannot be used. `path` is the key path, `line` the YAML line (1-based)."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        file: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.path = path
        self.line = line
        self.file = file

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        elif self.line:
            where = f"line {self.line}: "
        return f"{where}{self.message}"


class ProviderError(ContinuumError):
    """A search provider call failed. `error_code` is a web_search_tool_result_error code."""

    def __init__(
        self,
        message: str,
        *,
        error_code: str = "unavailable",
        status: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.error_code = error_code
        self.status = status


class ApiError(ContinuumError):
    """An error answered over HTTP. Subclasses set `status`, `error_type` and `openai_type`."""

    status: int = 500
    error_type: str = "api_error"
    openai_type: str = "server_error"
    # False: tell Claude Code not to retry (`x-should-retry: false`, REPORT.md §8); it would
    # otherwise retry a 401 ten times with backoff, minutes of a stalled session
    should_retry: bool | None = None
    # set by upstream/errors.py on errors a backend caused, for the fleet (failover, passive
    # ejection): the backend's HTTP status, or how the exchange failed ("connect", "timeout",
    # "reset"), and the name of the transport exception ("ConnectError")
    upstream_status: int | None = None
    upstream_failure: str | None = None
    upstream_cause: str | None = None
    openai_status: int | None = None  # the OpenAI routes' status, when it is another one

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        headers: dict[str, str] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.headers: dict[str, str] = dict(headers or {})
        if status is not None:
            self.status = status


class InvalidRequest(ApiError):
    status = 400
    error_type = "invalid_request_error"
    openai_type = "invalid_request_error"


class ModelDenied(InvalidRequest):
    """A model a gateway sign-in may not use: the Claude Code gateway protocol's Messages
    section asks for `400 invalid_request_error` for a model outside the allowlist, which
    here is what the router serves (backends' models and aliases)."""

    def __init__(self, model: str, message: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message or f"Model {model} not found", hint=hint)
        self.model = model


class PromptTooLong(InvalidRequest):
    """Context overflow. Never retried by Claude Code, which may compact instead."""

    def __init__(self, tokens: int | None, maximum: int | None, detail: str = "",
                 text: str | None = None) -> None:
        if not text and tokens and maximum:
            text = f"prompt is too long: {tokens} tokens > {maximum} maximum"
        text = text or "prompt is too long for the model's context window"
        super().__init__(f"{text} ({detail})" if detail else text)
        self.detail = detail
        self.tokens = tokens
        self.maximum = maximum


class AuthenticationFailed(ApiError):
    should_retry = False
    status = 401
    error_type = "authentication_error"
    openai_type = "authentication_error"


class PermissionDenied(ApiError):
    should_retry = False
    status = 403
    error_type = "permission_error"
    openai_type = "permission_error"


class NotFound(ApiError):
    status = 404
    error_type = "not_found_error"
    openai_type = "not_found_error"


class ModelNotFound(NotFound):
    """A model with no backend and no alias. The message text is the seed's troubleshooting key."""

    def __init__(self, model: str, *, hint: str | None = None) -> None:
        super().__init__(
            f"Model {model} not found",
            hint=hint
            or "add it to a backend's `models`, or map it in `model_aliases` (e.g. `default:`)",
        )
        self.model = model


class FileNotFound(NotFound):
    """A file id that does not exist, expired, was deleted or belongs to another key: the
    answer is the same for all, so it never tells that another key's file exists."""

    def __init__(self, file_id: str) -> None:
        super().__init__(f"File not found: {file_id[:80]}")
        self.file_id = file_id


class MethodNotAllowed(ApiError):
    status = 405
    error_type = "invalid_request_error"
    openai_type = "invalid_request_error"


class RequestTimeout(ApiError):
    status = 408
    error_type = "timeout_error"
    openai_type = "timeout_error"


class RequestTooLarge(ApiError):
    should_retry = False
    status = 413
    error_type = "request_too_large"
    openai_type = "invalid_request_error"


class RateLimited(ApiError):
    status = 429
    error_type = "rate_limit_error"
    openai_type = "rate_limit_error"


class BudgetExhausted(RateLimited):
    """A key's budget is used up until its period resets: retrying before then is useless."""

    should_retry = False
    error_type = "billing_error"
    openai_type = "insufficient_quota"


class InternalError(ApiError):
    status = 500
    error_type = "api_error"
    openai_type = "server_error"


class StoreUnavailable(ApiError):
    """The state store (SQLite or Redis) failed or was slower than `state.timeout`. Request-path
    callers decide with `state.on_error`; anything that lets it escape answers 503."""

    status = 503
    error_type = "api_error"
    openai_type = "server_error"


class UpstreamUnavailable(ApiError):
    status = 502
    error_type = "api_error"
    openai_type = "server_error"


class BackendUnreachable(UpstreamUnavailable):
    """The backend did not accept a connection. Under /anthropic this is answered as 529
    `overloaded_error`, which Claude Code retries (checklist item 42)."""


class UpstreamTimeout(ApiError):
    status = 504
    error_type = "timeout_error"
    openai_type = "timeout_error"


class Overloaded(ApiError):
    status = 529
    error_type = "overloaded_error"
    openai_type = "server_error"


class ResourcesExhausted(Overloaded):
    """The router ran out of file descriptors (EMFILE/ENFILE): 529 on Anthropic routes (Claude
    Code retries it), 503 on OpenAI routes (OpenAI clients retry that one). Not the
    backend's fault: no failover, no ejection (`upstream_failure = "local"`)."""

    openai_status = 503
    upstream_failure = "local"


class OAuthError(ApiError):
    """An OAuth 2.0 error answer (RFC 6749 §5.2, RFC 8628 §3.5, RFC 7009 §2.2.1): `code` is
    the `error` member (`authorization_pending`, `invalid_grant`, ...)."""

    status = 400
    error_type = "invalid_request_error"
    openai_type = "invalid_request_error"

    def __init__(self, code: str, description: str = "", *, status: int = 400,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(description or code, status=status, headers=headers)
        self.code = code


_OAUTH_CODES = {401: "invalid_client", 413: "invalid_request", 429: "slow_down"}


def _oauth_body(exc: ApiError) -> dict[str, Any]:
    code = getattr(exc, "code", None) or _OAUTH_CODES.get(
        exc.status, "invalid_request" if exc.status < 500 else "server_error")
    return {"error": code, "error_description": exc.message}


def envelope(exc: BaseException, flavor: Flavor = "anthropic") -> tuple[int, dict[str, Any]]:
    """Return `(status, body)` for any exception, in the protocol of the route that failed.

    Non-`ApiError` exceptions become a 500 whose message does not leak internals.
    """
    if not isinstance(exc, ApiError):
        exc = InternalError("internal error in continuum; see the router log")
    if flavor == "oauth":
        body = _oauth_body(exc)
    elif flavor == "openai":
        status = exc.openai_status or exc.status
        body = {"error": {"message": exc.message, "type": exc.openai_type, "code": status}}
        return status, body
    else:
        body = {"type": "error", "error": {"type": exc.error_type, "message": exc.message}}
    return exc.status, body
