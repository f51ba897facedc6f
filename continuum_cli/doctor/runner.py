"""Run every doctor check concurrently and collect the results in a fixed order.

Order of work: the config is loaded first (everything else needs it), then the groups run
at once: backends (then aliases, which need the models the backends report), router,
server tool, web search, client environment and safety. `progress(group, results)` is
called as each group finishes so the CLI can show a live display.
"""

from __future__ import annotations

import asyncio
import os
import platform
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from continuum_cli import __version__
from continuum_cli.auth import find_key
from continuum_cli.backends.profiles import normalize_base_url, profile_for, server_root
from continuum_cli.config.loader import candidate_paths, find_config, load_config_text
from continuum_cli.config.models import ApiKey, Backend, Settings
from continuum_cli.doctor import checks, client, files_check, probes
from continuum_cli.doctor.claude_home import claude_home_checks
from continuum_cli.doctor.model import CheckResult, skipped, warned
from continuum_cli.errors import ConfigError, ProviderError

GROUPS = ("config", "backends", "aliases", "router", "web search", "client", "safety",
          "gateway")
Progress = Callable[[str, list[CheckResult]], None]


@dataclass(frozen=True)
class DoctorOptions:
    config: str | None = None
    url: str | None = None
    offline: bool = False
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    timeout: float = 3.0
    message_timeout: float = 20.0


@dataclass
class Report:
    results: list[CheckResult]
    environment: dict[str, str]

    @property
    def ok(self) -> bool:
        return not any(r.status == "fail" for r in self.results)

    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.results)
                for s in ("pass", "warn", "fail", "skip")}

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "summary": self.counts(), "environment": self.environment,
                "checks": [r.as_dict() for r in self.results]}


@dataclass
class Context:
    opts: DoctorOptions
    settings: Settings | None
    keys: tuple[ApiKey, ...]
    url: str
    http: httpx.AsyncClient


def environment(url: str) -> dict[str, str]:
    """Where doctor runs (style.md §1.7: a zipapp is tied to one OS, arch and Python)."""
    return {"continuum": __version__, "python": sys.version.split()[0],
            "platform": platform.platform(), "executable": sys.executable,
            "running_from": str(Path(__file__).resolve().parents[2]), "router_url": url}


async def run_doctor(opts: DoctorOptions, progress: Progress | None = None) -> Report:
    config_result, settings, keys = await load(opts)
    _notify(progress, "config", [config_result])
    url = client.router_url(settings or Settings(), opts.url)
    async with httpx.AsyncClient(trust_env=False, follow_redirects=False,
                                 verify=_verify(settings)) as http:
        ctx = Context(opts, settings, keys, url, http)
        groups = _groups(ctx)
        done = await asyncio.gather(*(_run(name, job, progress) for name, job in groups))
    return Report([config_result] + [r for results in done for r in results],
                  environment(url))


def _verify(settings: Settings | None) -> Any:
    """The router's own certificate is trusted (a self-signed one included)."""
    if settings is None or settings.server.tls is None:
        return True
    from continuum_cli.tls import client_context

    return client_context(settings.server.tls.cert)


def _notify(progress: Progress | None, name: str, results: list[CheckResult]) -> None:
    if progress is not None:
        progress(name, results)


async def _run(name: str, job: Awaitable[list[CheckResult]], progress: Progress | None
               ) -> list[CheckResult]:
    results = await job
    _notify(progress, name, results)
    return results


def _groups(ctx: Context) -> list[tuple[str, Awaitable[list[CheckResult]]]]:
    backends = asyncio.ensure_future(backend_checks(ctx))
    return [("backends", _first(backends)), ("aliases", alias_checks(ctx, backends)),
            ("router", router_checks(ctx)), ("web search", web_search_checks(ctx)),
            ("client", client_checks(ctx)), ("safety", safety_checks(ctx)),
            ("gateway", gateway_checks(ctx)),
            ("documents", files_check.documents_checks(ctx.settings))]


async def _first(task: Awaitable[tuple[list[CheckResult], Any]]) -> list[CheckResult]:
    return (await task)[0]


# -- 1. config -------------------------------------------------------------------------------

async def load(opts: DoctorOptions) -> tuple[CheckResult, Settings | None, tuple[ApiKey, ...]]:
    try:
        path = find_config(opts.config)
    except ConfigError as exc:
        return checks.config_error(exc, ()), None, ()
    if path is None:
        return await _without_config(opts)
    text = path.read_text(encoding="utf-8")
    try:
        loaded = load_config_text(text, str(path), opts.env)
        keys = configured_keys(loaded.settings)
    except ConfigError as exc:
        return checks.config_error(exc, checks.missing_vars(text, opts.env)), None, ()
    return checks.config_ok(str(path), loaded.settings, loaded.env_vars), loaded.settings, keys


def configured_keys(settings: Settings) -> tuple[ApiKey, ...]:
    """`api_keys.keys` plus the entries of `api_keys.keys_file` (as the router loads them)."""
    from continuum_cli.api.state import load_keys_file

    return settings.api_keys.keys + load_keys_file(settings.api_keys.keys_file)


async def _without_config(opts: DoctorOptions
                          ) -> tuple[CheckResult, Settings | None, tuple[ApiKey, ...]]:
    """No file: judge what `continuum serve` would use (local backends, else embedded)."""
    from continuum_cli.backends.embedded import embedded_available
    from continuum_cli.upstream.probe import probe_local_backends

    _, found = await probe_local_backends()
    backends = tuple(found)
    if not backends and embedded_available():
        backends = (Backend(name="embedded", type="embedded", models=("smollm2-135m",)),)
    models = [m for b in backends for m in b.models]
    settings = Settings(backends=backends, model_aliases={"default": models[0]} if models else {})
    looked = ", ".join(str(p) for p in candidate_paths(opts.config))
    using = ", ".join(b.name for b in backends) or "nothing"
    return warned("config", f"no config file (looked in {looked}); `continuum serve` would use: "
                  f"{using}", "write config.yaml (README: Configure the router) to choose "
                  "backends and aliases yourself"), settings, ()


# -- 2. backends, 3. aliases ------------------------------------------------------------------

async def backend_checks(ctx: Context) -> tuple[list[CheckResult], dict[str, list[str]]]:
    if ctx.settings is None:
        return [skipped("backends", "config not loaded")], {}
    if not ctx.settings.backends:
        return [checks.no_backends()], {}
    pairs = await asyncio.gather(*(_backend(ctx, i, b)
                                   for i, b in enumerate(ctx.settings.backends)))
    served = {b.name: models for b, (_, models) in zip(ctx.settings.backends, pairs, strict=True)
              if models is not None}
    return [result for result, _ in pairs], served


async def _backend(ctx: Context, index: int, b: Backend
                   ) -> tuple[CheckResult, list[str] | None]:
    if b.type == "embedded" or not b.url:
        return await _embedded(ctx, index, b)
    url = normalize_base_url(b.url, b.type)
    headers = {"authorization": f"Bearer {b.api_key}"} if b.api_key else {}
    health_path = profile_for(b.type).health_path
    health_job = probes.request(ctx.http, "GET", server_root(url) + health_path,
                                timeout=ctx.opts.timeout, headers=headers) \
        if health_path else _none()
    models, health = await asyncio.gather(
        probes.request(ctx.http, "GET", url + "/models", timeout=ctx.opts.timeout,
                       headers=headers), health_job)
    return checks.backend(index, b, url, models, health)


async def _none() -> None:
    return None


async def _embedded(ctx: Context, index: int, b: Backend
                    ) -> tuple[CheckResult, list[str] | None]:
    from continuum_cli.backends.embedded import default_cache_dir, doctor_check, served_names

    # load=False: a real load takes the model's full start-up time and memory; doctor stays
    # quick, checks the file, and takes the load time from the running router's /health.
    report, health = await asyncio.gather(
        doctor_check(b, default_cache_dir(), load=False),
        probes.request(ctx.http, "GET", ctx.url + "/health", timeout=ctx.opts.timeout))
    report.load_seconds = report.load_seconds or _load_seconds(health.body, b.name)
    return checks.embedded(index, b, report), served_names(b)


def _load_seconds(health: Any, name: str) -> float | None:
    """The `load_seconds` the router's /health reports for backend `name`, if any."""
    entries = health.get("backends", []) if isinstance(health, dict) else []
    found = [e.get("load_seconds") for e in entries if isinstance(e, dict)
             and e.get("name") == name and isinstance(e.get("load_seconds"), (int, float))]
    return float(found[0]) if found else None


async def alias_checks(ctx: Context, backends: Awaitable[tuple[Any, dict[str, list[str]]]]
                       ) -> list[CheckResult]:
    _, served = await backends
    if ctx.settings is None:
        return [skipped("aliases", "config not loaded")]
    return [checks.alias(label, model, required, ctx.settings, served)
            for label, model, required in checks.CLAUDE_NAMES]


# -- 4. router, 5. server tool ----------------------------------------------------------------

def router_key(settings: Settings | None, env: Mapping[str, str],
               keys: Sequence[ApiKey]) -> str:
    """The key doctor presents: the client's when accepted, else a valid configured one, so
    the router check tests the router-to-backend path (check 7 judges the client's key)."""
    mine = (env.get("ANTHROPIC_API_KEY") or env.get("ANTHROPIC_AUTH_TOKEN") or "").strip()
    if settings is None or settings.api_keys.mode == "permissive":
        return mine or "continuum-doctor"
    if mine and find_key(mine, keys) is not None:
        return mine
    valid = next((k.key for k in keys if find_key(k.key, keys) is not None), None)
    return valid or mine or "continuum-doctor"


async def router_checks(ctx: Context) -> list[CheckResult]:
    settings = ctx.settings or Settings()
    model = checks.probe_model(settings)
    headers = probes.anthropic_headers(router_key(ctx.settings, ctx.opts.env, ctx.keys))
    health = await probes.request(ctx.http, "GET", ctx.url + "/health", timeout=ctx.opts.timeout)
    if not health.reached:
        return [checks.router(ctx.url, health, None, model),
                checks.server_tool(ctx.url, health)]
    hello = {"model": model, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    reply, tool = await asyncio.gather(
        probes.request(ctx.http, "POST", ctx.url + "/anthropic/v1/messages", body=hello,
                       headers=headers, timeout=ctx.opts.message_timeout),
        _server_tool_probe(ctx, model, headers))
    return [checks.router(ctx.url, health, reply, model), checks.server_tool(ctx.url, tool)]


def _server_tool_probe(ctx: Context, model: str, headers: Mapping[str, str]
                       ) -> Awaitable[Any]:
    # count_tokens parses the same request model as /v1/messages, so a router that rejects
    # the server tool there rejects it here, without running a search (and without spending
    # a provider query under --offline).
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 1}]}
    return probes.request(ctx.http, "POST", ctx.url + "/anthropic/v1/messages/count_tokens",
                          body=body, headers=headers, timeout=ctx.opts.timeout)


# -- 6. web search, 7. client, 8. safety -----------------------------------------------------

async def web_search_checks(ctx: Context) -> list[CheckResult]:
    if ctx.settings is None:
        return [skipped("web search", "config not loaded")]
    ws = ctx.settings.web_search
    if not ws.enabled:
        return [client.web_search_disabled()]
    if ctx.opts.offline:
        return [client.web_search_offline(ctx.settings)]
    from continuum_cli.websearch.providers import make_provider

    try:
        provider = make_provider(ws, ctx.http)
        found = await provider.search("continuum router", count=3)
    except (ProviderError, ConfigError) as exc:
        error = exc if isinstance(exc, ProviderError) else ProviderError(exc.message,
                                                                         hint=exc.hint)
        return [client.web_search_error(ws.provider, error)]
    return [client.web_search_ok(ws.provider, len(found.results), found.latency_ms)]


async def client_checks(ctx: Context) -> list[CheckResult]:
    env = ctx.opts.env
    results = [client.base_url(env.get("ANTHROPIC_BASE_URL"), ctx.url)]
    if ctx.settings is None:
        results.append(skipped("ANTHROPIC_API_KEY", "config not loaded"))
    else:
        results.append(client.api_key(env, ctx.settings, ctx.keys))
    results.append(client.billing_header(env))
    results.append(client.claude_cli(*await probes.claude_version(env)))
    return results + claude_home_checks(env)


async def gateway_checks(ctx: Context) -> list[CheckResult]:
    from continuum_cli.doctor import gateway

    if ctx.settings is None or not ctx.settings.gateway.enabled:
        return []  # nothing to check: the gateway is off
    url = ctx.url + "/anthropic/.well-known/oauth-authorization-server"
    found = await probes.request(ctx.http, "GET", url, timeout=ctx.opts.timeout)
    presented = await gateway.presented_fingerprint(ctx.url, ctx.opts.timeout)
    return [gateway.discovery(ctx.url, found), gateway.transport(ctx.settings),
            gateway.fingerprint_check(ctx.settings, presented)]


async def safety_checks(ctx: Context) -> list[CheckResult]:
    if ctx.settings is None:
        return [skipped("safety", "config not loaded")]
    return [checks.safety(ctx.settings)]
