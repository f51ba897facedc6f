"""The router's Prometheus metrics, on a registry of its own.

One `Metrics` per `Service`, never prometheus_client's global default registry: several
routers in one process (the tests, an embedding application) must not share or collide on
series. Recording is on the request path, so the labelled children are cached in plain dicts
(`Counter.labels()` takes a lock and validates its arguments on every call) and everything
else is computed at scrape time. Cost per request: bench/README.md ("Metrics").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from continuum_cli.metrics.labels import OTHER, model_label

# (backend name, status "ready" | "loading" | "down" | ..., requests in flight)
BackendView = tuple[str, str, int]

# LLM answers take from milliseconds (an error, a cached short answer) to minutes (a long
# generation): the default buckets stop at 10 s
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    120.0, 300.0, 600.0)
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """Every series the router exports; `render()` is the `/metrics` body."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "continuum_requests", "Requests answered, by route, HTTP status, backend and model "
            "(model: the model served; `other` for names the router does not know)",
            ["route", "status", "backend", "model"], registry=r)
        self.duration = Histogram(
            "continuum_request_duration_seconds", "Time from the request to the last byte of "
            "the answer", ["route", "backend"], buckets=DURATION_BUCKETS, registry=r)
        self.ttft = Histogram(
            "continuum_time_to_first_token_seconds", "Time from the request to the first byte "
            "of a streamed answer's body", ["route", "backend"], buckets=TTFT_BUCKETS,
            registry=r)
        self.upstream_errors = Counter(
            "continuum_upstream_errors", "Failed attempts to get an answer from a backend",
            ["backend", "kind"], registry=r)
        self.tokens = Counter(
            "continuum_tokens", "Tokens read (input) and generated (output), by model served",
            ["direction", "model"], registry=r)
        self.failovers = Counter(
            "continuum_failovers", "Requests moved away from a backend to another one",
            ["backend"], registry=r)
        self.reloads = Counter(
            "continuum_config_reloads", "Config reloads, by result (success | failure)",
            ["result"], registry=r)
        self.web_searches = Counter(
            "continuum_web_search_requests", "Calls to the web search provider, by result "
            "(ok, or the web_search_tool_result_error code)", ["provider", "result"],
            registry=r)
        self.backend_source: Callable[[], Iterable[BackendView]] = lambda: ()
        r.register(_BackendCollector(self))
        self.known_models: frozenset[str] = frozenset()
        self._request_children: dict[tuple[str, int, str, str], Any] = {}
        self._timing_children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._token_children: dict[str, tuple[Any, Any]] = {}

    # -- the request path ------------------------------------------------------------------

    def observe(self, route: str, status: int, backend: str, model: str, seconds: float,
                ttft: float | None = None, input_tokens: int = 0,
                output_tokens: int = 0) -> None:
        """One answered request; `model` is bounded here (unknown names become `other`)."""
        model = model_label(model, self.known_models)
        key = (route, status, backend, model)
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self.requests.labels(
                route, str(status), backend, model)
        child.inc()
        timing = self._timing_children.get((route, backend))
        if timing is None:
            timing = self._timing_children[(route, backend)] = (
                self.duration.labels(route, backend), self.ttft.labels(route, backend))
        timing[0].observe(seconds)
        if ttft is not None:
            timing[1].observe(ttft)
        if input_tokens or output_tokens:
            self._count_tokens(model, input_tokens, output_tokens)

    def _count_tokens(self, model: str, input_tokens: int, output_tokens: int) -> None:
        children = self._token_children.get(model)
        if children is None:
            children = self._token_children[model] = (
                self.tokens.labels("input", model), self.tokens.labels("output", model))
        if input_tokens > 0:
            children[0].inc(input_tokens)
        if output_tokens > 0:
            children[1].inc(output_tokens)

    # -- hooks for other parts of the router -----------------------------------------------

    def upstream_error(self, backend: str, kind: str) -> None:
        """A failed attempt on `backend` (called by the fleet; `kind` is bounded)."""
        self.upstream_errors.labels(backend, kind).inc()

    def failover(self, backend: str) -> None:
        """A request left `backend` for another one (the backend it failed over from)."""
        self.failovers.labels(backend).inc()

    def config_reload(self, result: str) -> None:
        self.reloads.labels(result).inc()

    def web_search(self, provider: str, result: str) -> None:
        self.web_searches.labels(provider, result).inc()

    def set_backend_source(self, source: Callable[[], Iterable[BackendView]]) -> None:
        """Where `continuum_backend_up` / `_in_flight` come from, read at scrape time."""
        self.backend_source = source

    def set_known_models(self, names: Iterable[str]) -> None:
        self.known_models = frozenset(names)

    # -- the scrape ------------------------------------------------------------------------

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition body and its content type (OpenMetrics when the scraper asks)."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type


class _BackendCollector:
    """`continuum_backend_up` and `continuum_backend_in_flight`, read from the router's live
    backend state when scraped (no bookkeeping on the request path)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> Iterator[Metric]:
        yield from _families()

    def collect(self) -> Iterator[Metric]:
        up, in_flight = _families()
        for name, status, count in self.metrics.backend_source():
            up.add_metric([name], 1.0 if status == "ready" else 0.0)
            in_flight.add_metric([name], float(count))
        yield up
        yield in_flight


def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
    return (GaugeMetricFamily("continuum_backend_up", "1 when the backend is ready to take "
                              "requests, 0 when it is loading or down", labels=["backend"]),
            GaugeMetricFamily("continuum_backend_in_flight", "Requests the backend is "
                              "answering now", labels=["backend"]))


__all__ = ["BackendView", "Metrics", "OTHER"]
