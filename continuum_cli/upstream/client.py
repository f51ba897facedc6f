"""The one upstream HTTP client: OpenAI-compatible chat completions over a pooled httpx client.

Every httpx exception and every upstream error status is mapped here, once, to the
`ApiError` tree (style rule 4); nothing above this module sees httpx.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx

from continuum_cli.backends.profiles import normalize_base_url, profile_for, server_root
from continuum_cli.config.models import Backend
from continuum_cli.errors import ApiError, Overloaded, UpstreamUnavailable
from continuum_cli.upstream.errors import map_httpx_errors, map_status, upstream_message
from continuum_cli.upstream.sse_decode import SSEDecoder
from continuum_cli.upstream.transport import Http1Transport, NoCookies
from continuum_cli.wire.json_text import loads as bounded_loads

log = logging.getLogger("continuum.upstream")
_FINISH_BODY_SECONDS = 0.05


class UpstreamClient:
    """Talks to every configured backend through one pooled `httpx.AsyncClient`."""

    def __init__(self, backends: tuple[Backend, ...], client: httpx.AsyncClient | None = None):
        transport = Http1Transport(max_connections=512, max_keepalive=64)
        self.http = client or httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(600.0, connect=5.0),
            follow_redirects=False,
            trust_env=False,
            cookies=NoCookies(),
        )
        # completions, the hot path, go straight to the client's pool: `AsyncClient.send`
        # adds cookie, auth and redirect handling a proxy must not apply, for about a sixth
        # of the router's CPU per request (bench/README.md)
        self._transport: httpx.AsyncBaseTransport | None = None if client else transport
        self._base: dict[str, str] = {
            b.name: normalize_base_url(b.url, b.type) for b in backends if b.url
        }
        self._urls: dict[tuple[str, str], httpx.URL] = {}
        # per backend, built once: httpx re-validates header dicts and rebuilds a `Timeout`
        # on every `build_request`, about a twentieth of the CPU of a proxied request
        self._prepared: dict[str, tuple[httpx.Headers, dict[str, Any]]] = {}

    def reconfigure(self, backends: tuple[Backend, ...]) -> None:
        """Follow a reload: base URLs, headers and timeouts from the new backends; the
        connections of addresses no backend uses any more close after their last request."""
        before = set(self._base.values())
        for backend in backends:
            if backend.url:
                self._base[backend.name] = normalize_base_url(backend.url, backend.type)
        names = {b.name for b in backends}
        self._base = {n: url for n, url in self._base.items() if n in names}
        self._urls.clear()
        self._prepared.clear()
        if isinstance(self._transport, Http1Transport):
            self._transport.retire({httpx.URL(u) for u in before - set(self._base.values())},
                                   keep={httpx.URL(u) for u in self._base.values()})

    def derive(self, backends: tuple[Backend, ...]) -> UpstreamClient:
        """A client for a new config (hot reload) on the same connection pool: a backend
        whose origin stays keeps its pooled connections. Base URLs known only at run time
        (embedded backends) carry over by name."""
        new = object.__new__(UpstreamClient)
        new.http, new._transport = self.http, self._transport
        new._base = {b.name: normalize_base_url(b.url, b.type) for b in backends if b.url}
        for backend in backends:
            if not backend.url and backend.name in self._base:
                new._base[backend.name] = self._base[backend.name]
        new._urls, new._prepared = {}, {}
        return new

    def origins(self) -> set[str]:
        """`host:port` of every backend address this client talks to."""
        return {f"{u.host}:{u.port}" for u in map(httpx.URL, self._base.values())}

    def retire_unused(self, previous: UpstreamClient) -> None:
        """After a reload: connections to addresses `previous` used and this client does not
        close now when idle, else after their last request (`Http1Transport.retire`)."""
        gone = set(previous._base.values()) - set(self._base.values())
        if gone and isinstance(self._transport, Http1Transport):
            self._transport.retire({httpx.URL(u) for u in gone},
                                   keep={httpx.URL(u) for u in self._base.values()})

    def set_base_url(self, backend_name: str, base_url: str) -> None:
        """For backends whose address is known only at run time (embedded)."""
        self._base[backend_name] = base_url.rstrip("/")
        self._urls = {k: v for k, v in self._urls.items() if k[0] != backend_name}
        self._prepared.pop(backend_name, None)

    def _url(self, backend: Backend, path: str) -> httpx.URL:
        """Parsed once per backend and path: httpx parses a `str` URL on every request, about
        a fiftieth of the router's CPU per proxied request (bench/README.md)."""
        url = self._urls.get((backend.name, path))
        if url is None:
            url = self._urls[(backend.name, path)] = httpx.URL(self.base_url(backend) + path)
        return url

    def base_url(self, backend: Backend) -> str:
        try:
            return self._base[backend.name]
        except KeyError:
            # an embedded backend still loading its model: retryable, like llama.cpp's own 503
            error = Overloaded(f"backend {backend.name} is still loading its model; retry "
                               "shortly", headers={"retry-after": "2"})
            error.upstream_failure = "loading"
            raise error from None

    async def aclose(self) -> None:
        await self.http.aclose()

    def _headers(self, backend: Backend) -> dict[str, str]:
        # identity: streams are relayed and parsed as raw bytes, and a compressing proxy in
        # front of a backend would otherwise hand us gzip where SSE is expected
        headers = {"content-type": "application/json", "accept": "application/json",
                   "accept-encoding": "identity"}
        if backend.api_key:
            headers["authorization"] = f"Bearer {backend.api_key}"
        return headers

    def _timeout(self, backend: Backend) -> httpx.Timeout:
        return httpx.Timeout(backend.timeout, connect=backend.connect_timeout)

    def _request(self, backend: Backend, path: str, content: bytes,
                 headers: Mapping[str, str] | None = None) -> httpx.Request:
        """A POST built from per-backend parts prepared once (`httpx.Request` copies them)."""
        prepared = self._prepared.get(backend.name)
        if prepared is None:
            merged = httpx.Headers(self.http.headers)
            merged.update(self._headers(backend))
            timeout = {"timeout": self._timeout(backend).as_dict()}
            prepared = self._prepared[backend.name] = (merged, timeout)
        base, extensions = prepared
        if headers:
            base = httpx.Headers(base)
            base.update(headers)
        return httpx.Request("POST", self._url(backend, path), content=content, headers=base,
                             extensions=extensions)

    async def _send(self, request: httpx.Request) -> httpx.Response:
        """The response once its head arrived; the body is read by the caller."""
        if self._transport is None:
            return await self.http.send(request, stream=True)
        response = await self._transport.handle_async_request(request)
        response.request = request
        return response

    async def chat(self, backend: Backend, body: dict[str, Any]) -> dict[str, Any]:
        """Non-streaming chat completion; returns the parsed completion."""
        request = self._request(backend, "/chat/completions", _dumps(_defaults(backend, body)))
        with map_httpx_errors(backend):
            resp = await self._send(request)
            try:
                await resp.aread()
            finally:
                await resp.aclose()
        if resp.status_code >= 400:
            raise map_status(backend, resp.status_code, resp.text, resp.headers)
        return completion_or_error(backend, _parse_json(backend, resp.content))

    async def read(self, backend: Backend, resp: httpx.Response) -> bytes:
        """The whole body of an open response, errors mapped (a cut body is a 502)."""
        with map_httpx_errors(backend, mid_stream=True):
            return await resp.aread()

    @asynccontextmanager
    async def stream_chat(
        self, backend: Backend, body: dict[str, Any]
    ) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """Open a streaming completion. Upstream errors raise here, before the first chunk, so
        the caller can still answer with a real HTTP status (checklist item 44)."""
        async with self.open(backend, "/chat/completions",
                             _dumps(_defaults(backend, body))) as resp:
            kind = resp.headers.get("content-type", "")
            if "application/json" in kind:
                yield _json_as_chunks(backend, await self.read(backend, resp))
            elif "text/event-stream" in kind or not kind:
                yield self._chunks(backend, resp)
            else:
                raise UpstreamUnavailable(
                    f"backend {backend.name} answered a stream request with {kind.split(';')[0]}"
                    ", not an event stream (is the url pointing at an OpenAI-compatible API?)")

    async def post(self, backend: Backend, path: str, content: bytes) -> httpx.Response:
        """Send a request and read the whole answer (status < 400): `open` + `read` without
        the context managers, for non-streaming passthrough."""
        with map_httpx_errors(backend):
            resp = await self._send(self._request(backend, path, content))
        try:
            if resp.status_code >= 400:
                await self._raise_status(backend, resp)
            await self.read(backend, resp)
        finally:
            await resp.aclose()
        return resp

    async def _raise_status(self, backend: Backend, resp: httpx.Response) -> None:
        with map_httpx_errors(backend):
            text = (await resp.aread()).decode("utf-8", "replace")
        raise map_status(backend, resp.status_code, text, resp.headers)

    @asynccontextmanager
    async def open(
        self, backend: Backend, path: str, content: bytes, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[httpx.Response]:
        """Send a request and yield the response once its headers arrived (status < 400).
        Leaving the block closes the upstream connection: that is how a client disconnect
        stops the backend from generating."""
        request = self._request(backend, path, content, headers)
        with map_httpx_errors(backend):
            resp = await self._send(request)
        try:
            if resp.status_code >= 400:
                await self._raise_status(backend, resp)
            yield resp
        finally:
            await resp.aclose()

    async def iter_raw(self, backend: Backend, resp: httpx.Response) -> AsyncIterator[bytes]:
        """The raw body bytes of an open response, errors mapped (for passthrough relays)."""
        with map_httpx_errors(backend, mid_stream=True):
            async for raw in resp.aiter_raw():
                yield raw

    async def _chunks(self, backend: Backend, resp: httpx.Response
                      ) -> AsyncIterator[dict[str, Any]]:
        decoder = SSEDecoder()
        body = resp.aiter_raw()
        finished = False  # a finish_reason arrived: the answer is complete even without [DONE]
        with map_httpx_errors(backend, mid_stream=True):
            async for raw in body:
                for event in decoder.feed(raw):
                    if _is_done(event.data):
                        await _finish_body(body)
                        return
                    chunk = _parse_chunk(backend, event.data)
                    if chunk is not None:
                        finished = finished or _has_finish(chunk)
                        yield chunk
        for event in decoder.flush():
            chunk = None if _is_done(event.data) else _parse_chunk(backend, event.data)
            if chunk is not None:
                finished = finished or _has_finish(chunk)
                yield chunk
        if not finished:
            raise UpstreamUnavailable(f"backend {backend.name} ended the stream before the "
                                      "answer was complete")

    async def list_models(self, backend: Backend, timeout: float = 3.0) -> list[str]:
        url = self.base_url(backend) + "/models"
        with map_httpx_errors(backend):
            resp = await self.http.get(url, headers=self._headers(backend), timeout=timeout)
        if resp.status_code >= 400:
            raise map_status(backend, resp.status_code, resp.text, resp.headers)
        data = _parse_json(backend, resp.content).get("data") or []
        return [str(m.get("id")) for m in data if isinstance(m, dict) and m.get("id")]

    async def tokenize(self, backend: Backend, text: str, timeout: float = 10.0,
                       model: str | None = None) -> int | None:
        """Token count from the backend's own tokenizer, or None if it has none. llama.cpp
        reads `content`; vLLM reads `prompt` and, on a multi-model server, `model`."""
        path = profile_for(backend.type).tokenize_path
        if not path:
            return None
        url = server_root(self.base_url(backend)) + path
        try:
            payload = {"content": text, "prompt": text, **({"model": model} if model else {})}
            resp = await self.http.post(url, json=payload, headers=self._headers(backend),
                                        timeout=timeout)
            if resp.status_code >= 400:
                return None
            data = bounded_loads(resp.content)
        except (httpx.HTTPError, ValueError):
            return None
        return _token_count(data)

    async def context_window(self, backend: Backend, timeout: float = 3.0) -> int | None:
        """The backend's context size: llama.cpp `/props` (n_ctx), else a `max_model_len`
        (vLLM) or `context_length` field on its `/v1/models` entries; None if it says none."""
        urls = [self.base_url(backend) + "/models"]
        if profile_for(backend.type).tokenize_path == "/tokenize" and backend.type != "vllm":
            urls.insert(0, server_root(self.base_url(backend)) + "/props")
        for url in urls:
            try:
                resp = await self.http.get(url, headers=self._headers(backend), timeout=timeout)
                window = _window(bounded_loads(resp.content)) if resp.status_code == 200 \
                    else None
            except (httpx.HTTPError, ValueError):
                window = None
            if window:
                return window
        return None

    async def health(self, backend: Backend, timeout: float | None = None) -> tuple[str, str]:
        """("ready"|"loading"|"down", detail): the backend's readiness probe, which is
        `backends[].health_check.path` (from the server root) or the type's (llama.cpp and
        vLLM `/health`, else the model list). A 503 means the model is still loading."""
        check = backend.health_check
        path = check.path or profile_for(backend.type).health_path
        base = self.base_url(backend)
        url = server_root(base) + path if path else base + "/models"
        try:
            resp = await self.http.get(url, headers=self._headers(backend),
                                       timeout=timeout or check.timeout)
        except httpx.HTTPError as exc:
            return "down", f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if resp.status_code == 503:
            said = upstream_message(resp.text) if resp.content else ""
            return "loading", f"503: {said or 'backend is loading its model'}"
        if resp.status_code >= 400:
            return "down", f"HTTP {resp.status_code} from {path or '/v1/models'}"
        return "ready", f"HTTP {resp.status_code}"


async def _finish_body(body: AsyncIterator[bytes]) -> None:
    """Read what follows `[DONE]` (the chunked terminator, normally in the same read) so httpx
    returns the upstream connection to its pool: a response left unfinished is closed, and
    the next stream then pays a new TCP connection before its first event (bench/README.md).
    A backend that keeps the body open after `[DONE]` is not waited for."""
    async def consume() -> None:
        async for _ in body:
            pass

    with contextlib.suppress(asyncio.TimeoutError, httpx.HTTPError):
        await asyncio.wait_for(consume(), _FINISH_BODY_SECONDS)


_WINDOW_KEYS = ("max_model_len", "context_length", "max_context_length", "n_ctx")


def _window(data: Any) -> int | None:
    if not isinstance(data, dict):
        return None
    settings = data.get("default_generation_settings")
    if isinstance(settings, dict) and isinstance(settings.get("n_ctx"), int):
        return int(settings["n_ctx"])
    entries = [data, *[m for m in data.get("data") or [] if isinstance(m, dict)]]
    sizes = [e[k] for e in entries for k in _WINDOW_KEYS if isinstance(e.get(k), int)]
    return max(sizes) if sizes else None


def _token_count(data: Any) -> int | None:
    if isinstance(data, dict):
        if isinstance(data.get("tokens"), list):
            return len(data["tokens"])
        for key in ("count", "token_count", "num_tokens"):
            if isinstance(data.get(key), int):
                return int(data[key])
    return None


def _dumps(body: Mapping[str, Any]) -> bytes:
    # "replace": a lone surrogate (Claude Code cuts tool output inside a UTF-16 pair and sends
    # `\ud83d` alone) becomes "?" instead of failing the request
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "replace")


def _defaults(backend: Backend, body: dict[str, Any]) -> dict[str, Any]:
    """`backends[].request_defaults` under the fields the request set itself."""
    if not backend.request_defaults:
        return body
    return {**backend.request_defaults, **body}


def _has_finish(chunk: dict[str, Any]) -> bool:
    # a plain loop: this runs on every chunk until the finish arrives
    for choice in chunk.get("choices") or ():
        if isinstance(choice, dict) and choice.get("finish_reason"):
            return True
    return False


def completion_or_error(backend: Backend, data: dict[str, Any]) -> dict[str, Any]:
    """A 200 body that is an error (`{"error": …}`, vLLM's `{"object": "error"}`) or has no
    choices is not an answer: raise instead of returning an empty turn."""
    if "error" in data and not data.get("choices"):
        raise _stream_error(backend, data["error"])
    if data.get("object") == "error":
        code = data.get("code") if isinstance(data.get("code"), int) else 500
        raise map_status(backend, code, json.dumps(data), {})
    if not isinstance(data.get("choices"), list) or not data["choices"]:
        raise UpstreamUnavailable(f"backend {backend.name} answered without a completion")
    return data


def _parse_json(backend: Backend, content: bytes) -> dict[str, Any]:
    try:
        data = bounded_loads(content)
    except ValueError:
        raise UpstreamUnavailable(f"backend {backend.name} answered with invalid JSON") from None
    if not isinstance(data, dict):
        raise UpstreamUnavailable(f"backend {backend.name} answered with a non-object JSON body")
    return data


_raw_decode = json.JSONDecoder().raw_decode


def _is_done(data: str) -> bool:
    return data[:1] != "{" and data.strip() == "[DONE]"


def _parse_chunk(backend: Backend, data: str) -> dict[str, Any] | None:
    try:
        if data[:1] == "{":  # the usual event: json.loads without its wrapper's checks
            chunk, end = _raw_decode(data)
            if end != len(data) and data[end:].strip():
                raise ValueError("extra data after the JSON object")
        elif not data.strip():
            return None
        else:
            chunk = bounded_loads(data)
    except (ValueError, RecursionError):  # RecursionError: `[[[…` past the parser's depth
        raise UpstreamUnavailable(
            f"backend {backend.name} sent a malformed stream event: {data[:200]!r}"
        ) from None
    if isinstance(chunk, dict) and "error" in chunk and not chunk.get("choices"):
        raise _stream_error(backend, chunk["error"])
    return chunk if isinstance(chunk, dict) else None


def _stream_error(backend: Backend, error: Any) -> ApiError:
    """An `{"error": ...}` object sent inside an otherwise successful stream."""
    if isinstance(error, dict):
        status = error.get("code") if isinstance(error.get("code"), int) else 500
        return map_status(backend, status, json.dumps({"error": error}), {})
    return map_status(backend, 500, str(error), {})


async def _json_as_chunks(backend: Backend, content: bytes) -> AsyncIterator[dict[str, Any]]:
    """A backend that ignored `stream: true` and sent one JSON completion: replay it as chunks."""
    completion = completion_or_error(backend, _parse_json(backend, content))
    for choice in completion.get("choices") or []:
        message = choice.get("message") or {}
        delta = {k: v for k, v in message.items() if k != "tool_calls"}
        if message.get("tool_calls"):
            delta["tool_calls"] = [
                {**call, "index": i} for i, call in enumerate(message["tool_calls"])
            ]
        yield {"choices": [{"index": choice.get("index", 0), "delta": delta,
                            "finish_reason": choice.get("finish_reason")}]}
    if completion.get("usage"):
        yield {"choices": [], "usage": completion["usage"]}
