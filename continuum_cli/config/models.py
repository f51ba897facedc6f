"""The config.yaml schema: strict (typos fail loudly), frozen, validation only.

Loading, `${VAR}` expansion and error reporting with line numbers live in `loader.py`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import (BaseModel, ConfigDict, Field, StrictInt, field_validator,
                      model_validator)

BackendType = Literal["vllm", "ollama", "llamacpp", "lmstudio", "mlxcel", "generic", "embedded"]
ProviderName = Literal["serper", "brave", "exa"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_UNIT_BYTES = {"b": 1, "kb": 1000, "kib": 1024, "mb": 10**6, "mib": 2**20, "gb": 10**9,
               "gib": 2**30}


def parse_duration(value: object) -> float:
    """`10`, `10s`, `1.5m`, `250ms`, `30d` -> seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 10s")
    if isinstance(value, (int, float)):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration (use e.g. 10s, 500ms, 2m)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def parse_size(value: object) -> int:
    """`1048576`, `64MiB`, `16 KiB` -> bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 64MiB")
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a size (use e.g. 64MiB, 16KiB)")
    return int(match.group(1)) * _UNIT_BYTES[(match.group(2) or "b").lower()]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsSettings(_Strict):
    """`server.tls`: serve HTTPS with this PEM certificate (chain) and private key."""
    cert: str
    key: str


class ServerSettings(_Strict):
    bind_address: str = "127.0.0.1:8000"
    tls: TlsSettings | None = None
    max_header_bytes: int = 64 * 1024
    max_body_bytes: int = 64 * 2**20
    header_timeout: float = 30.0
    keepalive_timeout: float = 75.0
    shutdown_grace: float = 10.0
    ping_interval: float = 10.0
    # /metrics to every address even in api_keys blocking mode (else loopback clients only)
    metrics_public: bool = False

    @field_validator("max_header_bytes", "max_body_bytes", mode="before")
    @classmethod
    def _size(cls, v: object) -> int:
        return parse_size(v)

    @field_validator("header_timeout", "keepalive_timeout", "shutdown_grace", "ping_interval",
                     mode="before")
    @classmethod
    def _duration(cls, v: object) -> float:
        return parse_duration(v)

    @field_validator("bind_address")
    @classmethod
    def _bind(cls, v: str) -> str:
        split_bind_address(v)
        return v

    @property
    def host(self) -> str:
        return split_bind_address(self.bind_address)[0]

    @property
    def port(self) -> int:
        return split_bind_address(self.bind_address)[1]


def split_bind_address(value: str) -> tuple[str, int]:
    """`0.0.0.0:8000`, `[::1]:8000`, `:8000`, `8000` -> (host, port)."""
    text = value.strip()
    host, _, port = text.rpartition(":")
    if not _:
        host, port = "127.0.0.1", text
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not host:port (e.g. 127.0.0.1:8000)")
    return host, int(port)


class HealthCheck(_Strict):
    """`backends[].health_check`: the active readiness probe (the fleet's health checks)."""

    # None: the type's readiness probe (`/health` for vllm, llamacpp, embedded; the model
    # list elsewhere), see backends/profiles.py
    path: str | None = None
    interval: float = Field(default=5.0, gt=0, le=3600)
    timeout: float = Field(default=2.0, gt=0, le=600)

    @field_validator("interval", "timeout", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float:
        return parse_duration(v)

    @field_validator("path")
    @classmethod
    def _path(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith("/"):
            raise ValueError(f"{v!r} must be a path starting with / (e.g. /health)")
        return v


class Backend(_Strict):
    name: str
    type: BackendType = "generic"
    url: str | None = None
    api_key: str | None = None
    models: tuple[str, ...] = ()
    timeout: float = 600.0
    connect_timeout: float = 5.0
    # upper bound on max_tokens for every request to this backend (Claude Code asks for
    # 32k-128k; a small local model may never stop before its context is full)
    max_output_tokens: int | None = Field(default=None, ge=1)
    # turn `<tool_call>{...}</tool_call>` / bare `{"name": ..., "arguments": ...}` text back
    # into tool calls, for backends whose tool parser is missing (checklist item 23)
    recover_tool_calls: bool = False
    # OpenAI request fields sent when the client did not set them, e.g. {temperature: 0.2,
    # seed: 1}: Claude Code sends no temperature on main turns, and a local model's server
    # default may not suit it
    request_defaults: dict[str, Any] = {}
    # the model's context window in tokens, for backends that do not report it (Ollama,
    # LM Studio, generic); wins over what the backend reports (llama.cpp /props, vLLM
    # max_model_len). Bounds max_tokens, and is the base of `scale_usage_to`
    context_window: int | None = Field(default=None, ge=1)
    # report token counts (usage, count_tokens) as if the context window were this size:
    # Claude Code assumes 200000 for claude-* names and compacts near that, long after a
    # smaller local window is full (checklist item 47)
    scale_usage_to: int | None = Field(default=None, ge=1)
    # share of traffic among the ready backends of a model (routing)
    weight: float = Field(default=1.0, gt=0, le=1000)
    health_check: HealthCheck = HealthCheck()
    # embedded only: a GGUF file; None means the default SmolLM2 model
    model_path: str | None = None
    context_size: int | None = None
    threads: int | None = None
    # embedded only: a Jinja chat template that replaces the GGUF's own (llama.cpp's
    # --chat-template-file), e.g. to give a model without one a tool-call format
    chat_template_file: str | None = None

    @field_validator("timeout", "connect_timeout", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float:
        return parse_duration(v)

    @field_validator("models", mode="before")
    @classmethod
    def _one_model(cls, v: object) -> object:
        # `models: my-model` means a list of one; anything else must be a list of names
        if isinstance(v, str):
            return (v,)
        if v is not None and not isinstance(v, (list, tuple)):
            raise ValueError("must be a list of model names")
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("backend name must not be empty")
        return v

    @model_validator(mode="after")
    def _url_required(self) -> Backend:
        if self.type != "embedded" and not self.url:
            raise ValueError(f"backend {self.name!r} of type {self.type} needs a `url`")
        return self


class WebSearchSettings(_Strict):
    enabled: bool = False
    provider: ProviderName = "brave"
    api_key: str | None = None
    base_url: str | None = None
    max_results: int = Field(default=8, ge=1, le=50)
    timeout: float = 10.0
    injection: Literal["off", "server_tool", "always"] = "server_tool"
    max_tool_iterations: int = Field(default=5, ge=1, le=50)
    # Claude Code's sub-request ("Perform a web search for the query: ...") carries the query;
    # taking it directly skips one model turn. `model` forces the extraction turn every time.
    query_extraction: Literal["direct", "model"] = "direct"

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float:
        return parse_duration(v)

    @model_validator(mode="after")
    def _key_required(self) -> WebSearchSettings:
        if self.enabled and not (self.api_key or "").strip():
            raise ValueError(
                f"web_search is enabled but has no api_key for provider {self.provider}; set "
                f"api_key: \"${{{PROVIDER_KEY_ENV[self.provider]}}}\" and export that variable"
            )
        return self


PROVIDER_KEY_ENV = {"brave": "BRAVE_API_KEY", "serper": "SERPER_API_KEY", "exa": "EXA_API_KEY"}


class KeyLimits(_Strict):
    """Per-key rate limits (issue "limits"); every one optional, each must be positive."""

    requests_per_minute: StrictInt | None = Field(default=None, gt=0)
    input_tokens_per_minute: StrictInt | None = Field(default=None, gt=0)
    output_tokens_per_minute: StrictInt | None = Field(default=None, gt=0)
    concurrent_requests: StrictInt | None = Field(default=None, gt=0)


class Budget(_Strict):
    """A calendar budget (UTC): `tokens` (input + output) or `cost_usd` (needs `pricing`)."""

    period: Literal["daily", "weekly", "monthly"]
    tokens: StrictInt | None = Field(default=None, gt=0)
    cost_usd: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_cap(self) -> Budget:
        if (self.tokens is None) == (self.cost_usd is None):
            raise ValueError("a budget sets exactly one of `tokens` or `cost_usd`")
        return self


def _distinct_budgets(budgets: tuple[Budget, ...] | None) -> tuple[Budget, ...] | None:
    seen = set()
    for budget in budgets or ():
        kind = (budget.period, "tokens" if budget.tokens is not None else "cost_usd")
        if kind in seen:
            raise ValueError(f"two {kind[0]} budgets on {kind[1]}; keep one")
        seen.add(kind)
    return budgets


class KeyDefaults(_Strict):
    """For keys that set none of their own (and, in permissive mode, the router as a whole)."""

    limits: KeyLimits | None = None
    budgets: tuple[Budget, ...] | None = None

    _budgets = field_validator("budgets")(_distinct_budgets)


class ApiKey(_Strict):
    key: str
    name: str = "unnamed"
    enabled: bool = True
    expires_at: datetime | None = None
    limits: KeyLimits | None = None
    budgets: tuple[Budget, ...] | None = None
    admin: bool = False  # may read GET /admin/usage
    # the person behind the key: Claude Code shows it after a gateway sign-in, asks them to
    # confirm it, and shows it in /status
    email: str | None = None

    _budgets = field_validator("budgets")(_distinct_budgets)


class ApiKeysSettings(_Strict):
    mode: Literal["permissive", "blocking"] = "permissive"
    keys: tuple[ApiKey, ...] = ()
    keys_file: str | None = None
    defaults: KeyDefaults = KeyDefaults()


class ModelPrice(_Strict):
    """USD per million tokens, for one model as served."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)  # default: the input price


class StateSettings(_Strict):
    """The state store: limits, budgets, the usage ledger, files metadata, gateway tokens."""

    path: str | None = None  # SQLite file; None: continuum.db in the user data dir
    redis_url: str | None = None  # shared by every replica; wins over `path`
    on_error: Literal["open", "closed"] = "open"
    timeout: float = Field(default=0.05, gt=0)  # no request waits longer on the store

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float:
        return parse_duration(v)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix:// "
                             "(e.g. redis://127.0.0.1:6379/0)")
        return v or None


class GatewayModel(_Strict):
    """One entry of the gateway's `/v1/models` list: an Anthropic-style id that
    `model_aliases` maps to a served model, and the name Claude Code's picker shows."""
    id: str
    display_name: str | None = None

    @field_validator("id")
    @classmethod
    def _anthropic_style(cls, v: str) -> str:
        # the client's model-family logic keys on claude-{family}-{major}-{minor}
        # (gateway protocol, "Models")
        if not re.fullmatch(r"claude-[a-z0-9.-]+", v):
            raise ValueError(f"{v!r} is not an Anthropic-style model id (e.g. claude-sonnet-4-5)")
        return v


class GatewaySettings(_Strict):
    """The Claude Code gateway protocol (`/login`, managed settings, model discovery)."""
    enabled: bool = False
    token_ttl: float = 8 * 3600.0
    refresh_ttl: float = 30 * 86400.0
    device_code_ttl: float = 600.0
    poll_interval: float = 5.0
    login_notice: str | None = Field(default=None, max_length=500)
    managed_settings: dict[str, Any] | None = None
    # per key name: that key's sign-ins get this settings object instead (None: no policy)
    managed_settings_by_key: dict[str, dict[str, Any] | None] = {}
    models: tuple[GatewayModel, ...] = ()
    otlp_forward: str | None = None
    # the base URL people use (e.g. https://gw.example.com/anthropic) when a proxy in front
    # does not pass Host / X-Forwarded-Host; default: taken from each request
    public_url: str | None = None
    # proxies whose X-Forwarded-For names the client, for the sign-in attempt limits
    trusted_proxies: tuple[str, ...] = ()

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        import ipaddress

        for net in v:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"{net!r} is not an address or network (e.g. 10.0.0.0/8)")
        return v

    @field_validator("token_ttl", "refresh_ttl", "device_code_ttl", "poll_interval",
                     mode="before")
    @classmethod
    def _duration(cls, v: object) -> float:
        seconds = parse_duration(v)
        if seconds < 1:
            raise ValueError("must be at least 1s")
        return seconds

    @field_validator("otlp_forward", "public_url")
    @classmethod
    def _collector(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^/\s]+", v):
            raise ValueError(f"{v!r} is not an http(s) URL (e.g. http://collector:4318)")
        return v


class RoutingSettings(_Strict):
    """`routing:` how a request picks among the backends that serve its model."""

    # least_outstanding: fewest requests in flight per unit of weight; round_robin: in turn,
    # by weight; priority: the first ready backend in file order
    strategy: Literal["least_outstanding", "round_robin", "priority"] = "least_outstanding"
    max_attempts: int = Field(default=3, ge=1, le=20)  # backends tried, the first included
    # model -> models tried in order when no backend of the model is ready
    fallbacks: dict[str, tuple[str, ...]] = {}

    @field_validator("strategy", mode="before")
    @classmethod
    def _lower(cls, v: object) -> object:
        return v.lower() if isinstance(v, str) else v

    @field_validator("fallbacks", mode="before")
    @classmethod
    def _lists(cls, v: object) -> object:
        # `qwen3-coder: qwen2.5-coder:7b` means a list of one
        if isinstance(v, dict):
            return {k: (t,) if isinstance(t, str) else t for k, t in v.items()}
        return v

    @model_validator(mode="after")
    def _no_self_fallback(self) -> RoutingSettings:
        for model, targets in self.fallbacks.items():
            if model in targets:
                raise ValueError(f"routing.fallbacks: {model!r} lists itself as a fallback")
            if not targets:
                raise ValueError(f"routing.fallbacks: {model!r} lists no fallback model")
        return self


class FilesSettings(_Strict):
    """The Files API store (`/anthropic/v1/files`, `/v1/files`)."""

    # blobs live here under names the router makes; default: `files` in the user data dir.
    # Replicas sharing `state.redis_url` need this on a shared volume.
    dir: str | None = None
    # Anthropic's own per-file limit; enforced while the upload is received
    max_bytes: int = Field(default=500 * 10**6, ge=1)

    @field_validator("max_bytes", mode="before")
    @classmethod
    def _size(cls, v: object) -> int:
        return parse_size(v)


class DocumentsSettings(_Strict):
    """PDFs turned into text for models that cannot read them."""

    max_pages: int = Field(default=100, ge=1)  # Anthropic's own page limit per PDF
    timeout: float = Field(default=20.0, gt=0)  # per document, in a worker process
    max_bytes: int = Field(default=32 * 2**20, ge=1)  # a PDF (or text file) to read
    workers: int = Field(default=2, ge=1, le=32)  # extraction processes at most
    memory_limit: int = Field(default=1024 * 2**20, ge=64 * 2**20)  # per worker (RLIMIT_AS)

    @field_validator("max_bytes", "memory_limit", mode="before")
    @classmethod
    def _size(cls, v: object) -> int:
        return parse_size(v)

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float:
        return parse_duration(v)


class LoggingSettings(_Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["rich", "json"] = "rich"

    @field_validator("level", "format", mode="before")
    @classmethod
    def _lower(cls, v: object) -> object:
        return v.lower() if isinstance(v, str) else v


class Settings(_Strict):
    server: ServerSettings = ServerSettings()
    backends: tuple[Backend, ...] = ()
    web_search: WebSearchSettings = WebSearchSettings()
    model_aliases: dict[str, str] = {}
    api_keys: ApiKeysSettings = ApiKeysSettings()
    gateway: GatewaySettings = GatewaySettings()
    logging: LoggingSettings = LoggingSettings()
    state: StateSettings = StateSettings()
    routing: RoutingSettings = RoutingSettings()
    pricing: dict[str, ModelPrice] = {}
    files: FilesSettings = FilesSettings()
    documents: DocumentsSettings = DocumentsSettings()

    @model_validator(mode="after")
    def _unique_backends(self) -> Settings:
        names = [b.name for b in self.backends]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"backend names must be unique; repeated: {', '.join(dupes)}")
        return self

    @model_validator(mode="after")
    def _gateway_needs_keys(self) -> Settings:
        # a person signs in with their key: the token carries that key's name and limits
        if self.gateway.enabled and self.api_keys.mode != "blocking":
            raise ValueError("gateway.enabled needs api_keys.mode: blocking (people sign in "
                             "with their continuum key)")
        return self
