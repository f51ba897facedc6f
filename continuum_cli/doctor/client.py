"""The client side, pure: what Claude Code's environment should be (`client_env`, used by
`continuum claude` and `continuum env`), verdicts on the environment it has, and on the
web-search provider.

REPORT.md §2: Claude Code appends `/v1/messages` to `ANTHROPIC_BASE_URL` itself, so the base
must end in `/anthropic` (a base ending in `/v1` yields `/v1/v1/messages`). §3: it sends
`ANTHROPIC_API_KEY` as `x-api-key` and `ANTHROPIC_AUTH_TOKEN` as a Bearer token. §4: unless
`CLAUDE_CODE_ATTRIBUTION_HEADER=0`, `system[0]` is a per-request billing block.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from continuum_cli.auth import find_key
from continuum_cli.config.models import PROVIDER_KEY_ENV, ApiKey, Settings
from continuum_cli.doctor.model import CheckResult, failed, passed, skipped, warned
from continuum_cli.errors import ContinuumError, ProviderError

_SAME_HOST = {"localhost": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}
ENV_HINT = 'use `continuum claude`, or run `eval "$(continuum env)"` before `claude`'


def router_url(settings: Settings, explicit: str | None = None) -> str:
    """The router's base URL: `--url` (an ANTHROPIC_BASE_URL is accepted too) or the bind
    address, with a wildcard host replaced by loopback."""
    if explicit:
        url = explicit.strip().rstrip("/")
        return url[: -len("/anthropic")] if url.endswith("/anthropic") else url
    host, port = settings.server.host, settings.server.port
    host = _SAME_HOST.get(host, host)
    scheme = "https" if settings.server.tls is not None else "http"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


PLACEHOLDER_KEY = "continuum-local"


def client_env(settings: Settings, router: str, env: Mapping[str, str],
               keys: Sequence[ApiKey]) -> dict[str, str]:
    """The variables that wire Claude Code to this router. A key the client already has and
    the router accepts is kept; otherwise blocking mode gets the first usable configured key
    and permissive mode a placeholder (Claude Code asks for a login without any key)."""
    wanted = {"ANTHROPIC_BASE_URL": f"{router}/anthropic", "CLAUDE_CODE_ATTRIBUTION_HEADER": "0"}
    mine = [env[v].strip() for v in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")
            if env.get(v, "").strip()]
    if settings.api_keys.mode == "permissive":
        if not mine:
            wanted["ANTHROPIC_API_KEY"] = PLACEHOLDER_KEY
        return wanted
    if not any(find_key(k, keys) for k in mine):
        wanted["ANTHROPIC_API_KEY"] = _usable_key(keys)
    return wanted


def _usable_key(keys: Sequence[ApiKey]) -> str:
    for entry in keys:
        if find_key(entry.key, keys) is not None:
            return entry.key
    raise ContinuumError("api_keys is in blocking mode but has no enabled, unexpired key",
                         hint="add one under api_keys.keys (or keys_file), or use "
                         "mode: permissive")


def _endpoint(url: str) -> tuple[str, int | None]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return _SAME_HOST.get(host, host), port


def base_url(value: str | None, router: str) -> CheckResult:
    name, want = "ANTHROPIC_BASE_URL", f"{router}/anthropic"
    fix = f"export ANTHROPIC_BASE_URL={want}"
    if not value:
        return warned(name, "not set in this shell", f"{ENV_HINT} ({fix})")
    text = value.strip().rstrip("/")
    if text.endswith("/v1/messages"):
        return failed(name, f"{value} ends in /v1/messages; Claude Code appends that itself",
                      fix)
    if text.endswith("/v1"):
        return failed(name, f"{value} ends in /v1; Claude Code would call /v1/v1/messages", fix)
    if not text.endswith("/anthropic"):
        return failed(name, f"{value} does not end in /anthropic", fix)
    if _endpoint(text) != _endpoint(router):
        return failed(name, f"{value} points at another address than this router ({router})",
                      fix)
    return passed(name, f"{value} (this router)")


def api_key(env: Mapping[str, str], settings: Settings, keys: Sequence[ApiKey]) -> CheckResult:
    name = "ANTHROPIC_API_KEY"
    var = next((v for v in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN") if env.get(v)), None)
    blocking = settings.api_keys.mode == "blocking"
    if var is None:
        need = "a key from api_keys" if blocking else "any value (permissive mode)"
        return warned(name, "neither ANTHROPIC_API_KEY nor ANTHROPIC_AUTH_TOKEN is set; "
                      "Claude Code will ask you to log in", f"{ENV_HINT}; it needs {need}")
    if not blocking:
        return passed(name, f"{var} set; api_keys is permissive, any value works")
    match = find_key(env[var].strip(), keys)
    if match is None:
        names = ", ".join(k.name for k in keys if k.enabled) or "none configured"
        return failed(name, f"{var} is set but api_keys (blocking) does not accept it: the "
                      "router answers 401",
                      f"set {var} to an enabled, unexpired key from api_keys (keys: {names})")
    return passed(name, f"{var} accepted by api_keys as key `{match.name}`")


def billing_header(env: Mapping[str, str]) -> CheckResult:
    name = "billing header"
    if env.get("CLAUDE_CODE_ATTRIBUTION_HEADER", "").strip() == "0":
        return passed(name, "CLAUDE_CODE_ATTRIBUTION_HEADER=0: no per-request billing block")
    return warned(name, "CLAUDE_CODE_ATTRIBUTION_HEADER is not 0: Claude Code puts a "
                  "per-request x-anthropic-billing-header block first in the system prompt, "
                  "which defeats prefix caching on proxies that keep it (continuum strips it)",
                  f"export CLAUDE_CODE_ATTRIBUTION_HEADER=0 ({ENV_HINT})")


def claude_cli(path: str | None, version: str | None, error: str | None) -> CheckResult:
    name = "claude CLI"
    if path is None:
        return warned(name, "claude is not on PATH",
                      "install Claude Code: npm install -g @anthropic-ai/claude-code")
    if version is None:
        return warned(name, f"{path}: `claude --version` failed: {error}",
                      "reinstall Claude Code: npm install -g @anthropic-ai/claude-code")
    return passed(name, f"{version} at {path}")


def web_search_disabled() -> CheckResult:
    return skipped("web search", "web_search is disabled; Claude Code's WebSearch gets no "
                   "results", "enable web_search with a provider key (serper | brave | exa)")


def web_search_offline(settings: Settings) -> CheckResult:
    ws = settings.web_search
    return passed("web search", f"{ws.provider}: api_key set "
                  f"({PROVIDER_KEY_ENV[ws.provider]}); no query sent (--offline)")


def web_search_ok(provider: str, count: int, elapsed_ms: float) -> CheckResult:
    if count == 0:
        return warned("web search", f"{provider} answered, but with no results",
                      "try another query in Claude Code; if it persists, switch providers")
    return passed("web search", f"{provider}: one real query -> {count} result(s) in "
                  f"{elapsed_ms:.0f} ms")


def web_search_error(provider: str, exc: ProviderError) -> CheckResult:
    name = "web search"
    if exc.error_code == "too_many_requests":
        # Seed, "WebSearch returns zero results": the provider's rate limit.
        return warned(name, f"{exc.message}: you are hitting the provider's rate limit; its "
                      "free tier may be capped at a low QPS",
                      "upgrade the plan or switch providers (web_search.provider)")
    if "rejected the API key" in exc.message:
        return failed(name, exc.message, "verify the provider's API key is valid: "
                      f"{exc.hint or 'set web_search.api_key'}")
    return failed(name, exc.message, exc.hint or f"check {provider}'s status page")
