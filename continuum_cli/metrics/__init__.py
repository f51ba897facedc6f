"""Prometheus metrics of one router: the `Metrics` object, its labels and `/metrics` text."""

from continuum_cli.metrics.registry import BackendView, Metrics

__all__ = ["BackendView", "Metrics"]
