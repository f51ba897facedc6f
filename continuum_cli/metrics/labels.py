"""Bounded label values (pure): a label value a client can choose must not create a series.

Prometheus keeps every label combination as a time series in the router's memory and in the
server's; a client sending random model names would otherwise grow both without bound
(https://prometheus.io/docs/practices/naming/#labels: "do not use labels to store dimensions
with high cardinality"). Only names the operator configured or a backend reported become
label values; anything else is `other`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from continuum_cli.config.models import Settings

OTHER = "other"


def known_models(settings: Settings, discovered: Mapping[str, Iterable[str]]) -> frozenset[str]:
    """Every model name that may be a label: backend models (configured and discovered), alias
    names and alias targets."""
    names: set[str] = set(settings.model_aliases) | set(settings.model_aliases.values())
    for backend in settings.backends:
        names.update(backend.models)
        names.update(discovered.get(backend.name, ()))
    return frozenset(names)


def model_label(name: str | None, known: frozenset[str]) -> str:
    """`name` when the router knows it, `other` when a client made it up, "" when none."""
    if not name:
        return ""
    return name if name in known else OTHER


def route_label(path: str, routes: Iterable[str]) -> str:
    """The route table's name for a path, `other` for a path outside it."""
    return path if path in routes else OTHER


def token_counts(usage: object) -> tuple[int, int]:
    """(input, output) tokens of an Anthropic or OpenAI `usage` object; input counts every
    prompt token the model read, cached ones included."""
    if not isinstance(usage, dict):
        return 0, 0
    if "prompt_tokens" in usage or "completion_tokens" in usage:  # OpenAI
        return _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens"))
    read = sum(_int(usage.get(k)) for k in ("input_tokens", "cache_creation_input_tokens",
                                             "cache_read_input_tokens"))
    return read, _int(usage.get("output_tokens"))


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def record_usage(tags: dict[str, object], usage: object) -> None:
    """Put a request's token counts in its access tags (metrics, usage accounting)."""
    tags["input_tokens"], tags["output_tokens"] = token_counts(usage)

