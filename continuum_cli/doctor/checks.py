"""Pure verdicts: config, backends, aliases, router answers and safety -> `CheckResult`.

Each function takes what a probe saw (or plain settings) and returns the result with the
exact fix, so the wording of every fix is asserted by table tests. The seed's Troubleshooting
items map onto these: "HTTP 422: missing field input_schema" (`server_tool`), "Model
claude-haiku-4-5-20251001 not found" (`alias`), "Claude Code fails to connect" (`router` and
`client.py`), "WebSearch returns zero results" (`client.web_search_error`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from continuum_cli.backends.profiles import server_root
from continuum_cli.config.models import Backend, Settings
from continuum_cli.doctor.model import CheckResult, HttpOutcome, failed, passed, warned
from continuum_cli.errors import ConfigError, ModelNotFound
from continuum_cli.routing import Route, resolve

if TYPE_CHECKING:  # the embedded module starts processes; only its report type is used
    from continuum_cli.backends.embedded import EmbeddedReport

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")
_LOOPBACK = ("127.", "::1", "localhost")


def missing_vars(text: str, env: Mapping[str, str]) -> list[str]:
    """`${VAR}` names (without a `:-default`) that `env` lacks; whole-line comments ignored."""
    names: list[str] = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        for match in _VAR.finditer(line):
            name = match.group(1)
            if match.group(2) is None and name not in env and name not in names:
                names.append(name)
    return names


def config_error(exc: ConfigError, missing: Sequence[str]) -> CheckResult:
    if missing and "environment variable" in exc.message:
        where = f"{exc.file}: " if exc.file else ""
        plural = "s" if len(missing) > 1 else ""
        return failed("config", f"{where}environment variable{plural} {', '.join(missing)} "
                      "not set", "; ".join(f"export {name}=..." for name in missing))
    return failed("config", str(exc), exc.hint or "fix the line shown, then run "
                  "`continuum check` to validate the file")


def config_ok(path: str, settings: Settings, env_vars: Sequence[str]) -> CheckResult:
    used = f", ${{}} set: {', '.join(env_vars)}" if env_vars else ""
    return passed("config", f"{path}: valid, {len(settings.backends)} backend(s){used}")


def _shorten(names: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "") \
        if names else "(none)"


def backend(index: int, b: Backend, url: str, models: HttpOutcome,
            health: HttpOutcome | None) -> tuple[CheckResult, list[str] | None]:
    """The verdict on one backend, and the models it serves (None when unknown)."""
    name = f"backend {b.name}"
    where = f"backends[{index}].url"
    if not models.reached:
        return failed(name, f"{url}/models: {models.error}",
                      f"start the {b.type} server at {server_root(url)}, or fix `{where}`"), None
    if models.status == 503 or (health is not None and health.status == 503):
        return warned(name, f"{url}: loading its model (HTTP 503), not down",
                      "wait until the model has loaded; meanwhile Claude Code gets 529 and "
                      "retries"), None
    if models.status in (401, 403):
        return failed(name, f"{url}/models: HTTP {models.status}, the backend rejected the key",
                      f"set backends[{index}].api_key to the key the backend expects"), None
    served = _model_ids(models.body) if models.status == 200 else None
    if served is None:
        return failed(name, f"bad base URL: GET {url}/models answered HTTP {models.status}"
                      f"{'' if models.status != 200 else ' without a model list'}",
                      f"point `{where}` at the server root (http://host:port) or at its "
                      "OpenAI base URL ending in /v1"), None
    return _served_verdict(name, index, b, url, served), served


def _model_ids(body: object) -> list[str] | None:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        return None
    return [str(m["id"]) for m in body["data"] if isinstance(m, dict) and m.get("id")]


def _served_verdict(name: str, index: int, b: Backend, url: str,
                    served: list[str]) -> CheckResult:
    absent = [m for m in b.models if m not in served]
    if absent:
        return warned(name, f"{url} does not serve {', '.join(absent)}; it serves "
                      f"{_shorten(served)}",
                      f"load {absent[0]} in the backend, or list a served model in "
                      f"backends[{index}].models")
    return passed(name, f"{b.type} at {url}: ready, serves {_shorten(served)}")


# The names Claude Code sends (REPORT.md §4, §9): its side-query haiku, a sonnet, the default
# opus, and a claude-* name no family word catches (the seed's "Model ... not found").
CLAUDE_NAMES = (
    ("haiku", "claude-haiku-4-5-20251001", True),
    ("sonnet", "claude-sonnet-4-5", True),
    ("opus", "claude-opus-5-5", True),
    ("other claude-*", "claude-next-1", False),
)

_RULES = {"backend": "served directly", "exact": "exact alias", "default": "`default` alias",
          "only-backend": "the only backend takes every name"}


def rule_text(rule: str) -> str:
    if rule.startswith("family:"):
        return f"family alias `{rule.split(':', 1)[1]}`"
    return _RULES.get(rule, rule)


def alias(label: str, model: str, required: bool, settings: Settings,
          discovered: Mapping[str, Sequence[str]]) -> CheckResult:
    name = f"alias {label}"
    try:
        route = resolve(model, settings, {k: tuple(v) for k, v in discovered.items()})
    except ModelNotFound as exc:
        return _not_found(name, model, required, exc, settings, discovered)
    return _routed(name, model, route, discovered)


def _routed(name: str, model: str, route: Route,
            discovered: Mapping[str, Sequence[str]]) -> CheckResult:
    text = f"{model} -> {route.upstream_model} on {route.backend.name} ({rule_text(route.rule)})"
    served = discovered.get(route.backend.name)
    if served and route.upstream_model not in served:
        return warned(name, text + f"; {route.backend.name} does not list it",
                      f"map it to one of: {_shorten(list(served))}")
    return passed(name, text)


def _not_found(name: str, model: str, required: bool, exc: ModelNotFound, settings: Settings,
               discovered: Mapping[str, Sequence[str]]) -> CheckResult:
    evidence = f"Model {model} not found"
    if "which no backend serves" in (exc.hint or ""):
        return failed(name, evidence + " (alias target unserved)", exc.hint or "")
    example = example_model(settings, discovered)
    fix = ("model_aliases is not configured for it: add at least a `default:` entry mapping to "
           f"your backend's model (`continuum alias set default {example}`)")
    return failed(name, evidence, fix) if required else warned(name, evidence, fix)


def example_model(settings: Settings, discovered: Mapping[str, Sequence[str]]) -> str:
    for b in settings.backends:
        names = list(b.models) or list(discovered.get(b.name, ()))
        if names:
            return names[0]
    return "MODEL"


def probe_model(settings: Settings) -> str:
    """The model for the seed's curl check: a backend model when one is configured."""
    for b in settings.backends:
        if b.models:
            return b.models[0]
    return settings.model_aliases.get("default") or "claude-sonnet-4-5"


_START_ROUTER = ("start it with `continuum serve` (or run `continuum claude`, which starts it "
                 "for you), or pass the right address with --url")


def router(url: str, health: HttpOutcome, reply: HttpOutcome | None, model: str
           ) -> CheckResult:
    """The seed's curl check: POST /anthropic/v1/messages answers 200 from the backend."""
    if not health.reached:
        return failed("router", f"not reachable at {url}: {health.error}", _START_ROUTER)
    if reply is None or not reply.reached:
        detail = reply.error if reply is not None else "no answer"
        return failed("router", f"{url} answers /health but POST /anthropic/v1/messages "
                      f"failed: {detail}", "see the router log (`continuum serve` output)")
    if reply.status == 200 and isinstance(reply.body, dict) and reply.body.get("type") == \
            "message":
        return passed("router", f"POST {url}/anthropic/v1/messages ({model}) -> 200 in "
                      f"{reply.elapsed_ms:.0f} ms: {_reply_text(reply.body)!r}")
    return failed("router", f"POST {url}/anthropic/v1/messages ({model}) -> HTTP "
                  f"{reply.status}: {reply.error_message()}", _router_fix(reply))


def _reply_text(body: Mapping[str, object]) -> str:
    content = body.get("content")
    texts = [str(b.get("text", "")) for b in content or [] if isinstance(b, dict)] \
        if isinstance(content, list) else []
    text = " ".join(t for t in texts if t).strip()
    return text[:60] + ("..." if len(text) > 60 else "")


def _router_fix(reply: HttpOutcome) -> str:
    if reply.status == 401:
        return "add an enabled key to api_keys.keys (blocking mode), or use mode: permissive"
    if reply.status == 404 and "not found" in reply.error_message().lower():
        return "map the name in model_aliases (at least a `default:` entry)"
    if reply.status in (502, 503, 504, 529):
        return "the backend did not answer: start it or fix its url (see the backend check)"
    return "see the router log (`continuum serve` output) for this request"


def server_tool(url: str, reply: HttpOutcome) -> CheckResult:
    """The seed's "HTTP 422: missing field input_schema" item."""
    name = "server tool"
    if not reply.reached:
        return CheckResult(name, "skip", f"router not reachable at {url}")
    message = reply.error_message()
    if reply.status == 422 or (reply.status == 400 and "input_schema" in message):
        return failed(name, f"HTTP {reply.status}: {message}",
                      "this router predates web_search_20250305 support: update continuum "
                      "(the fix accepts both custom and server tool shapes)")
    if reply.status == 200:
        return passed(name, "accepts a web_search_20250305 tool without input_schema")
    return warned(name, f"could not test: HTTP {reply.status}: {message}",
                  "see the router check above")


def is_loopback(host: str) -> bool:
    return host.startswith(_LOOPBACK)


def safety(settings: Settings) -> CheckResult:
    bind, mode = settings.server.bind_address, settings.api_keys.mode
    if is_loopback(settings.server.host):
        return passed("safety", f"bound to {bind} (this machine only)")
    if mode == "permissive":
        return warned("safety", f"bound to {bind}, reachable from the network, with api_keys "
                      "in permissive mode: anyone who reaches this port can use your backends",
                      f"bind to 127.0.0.1:{settings.server.port} (server.bind_address), or set "
                      "api_keys.mode: blocking with keys")
    return passed("safety", f"bound to {bind}; api_keys in blocking mode")


def no_backends() -> CheckResult:
    return failed("backends", "no backend configured or found",
                  "add one under `backends:` in config.yaml, or start Ollama / LM Studio / "
                  "llama.cpp on its standard port")


def embedded(index: int, b: Backend, report: EmbeddedReport) -> CheckResult:
    """The embedded backend: model file present, sha256 of the pinned default model."""
    name = f"backend {b.name}"
    error = report.error
    if error is None:
        sha = "sha256 verified" if report.sha256_ok else "your model file (no pinned sha256)"
        load = f", loaded in {report.load_seconds:.1f} s" if report.load_seconds else ""
        return passed(name, f"embedded: {report.model_path} present, {sha}{load}")
    if b.model_path and not report.present:
        return failed(name, f"embedded: model_path {report.model_path} is not a file",
                      f"point backends[{index}].model_path at a .gguf file")
    if not report.present:
        return warned(name, f"embedded: {error}", "run `continuum serve` once (it fetches the "
                      "model), or set model_path")
    if "sha256" in error:
        return failed(name, f"embedded: {error}", f"delete {report.model_path}; the next "
                      "`continuum serve` fetches it again")
    return failed(name, f"embedded: {error}", "pip install 'continuum[local]' (`make run` "
                  "does this)" if "xllamacpp" in error else "see `continuum serve` output")
