"""GET /metrics: the Prometheus exposition of this router (continuum_cli/metrics/)."""

from __future__ import annotations

from continuum_cli.api.state import AppState
from continuum_cli.errors import NotFound, PermissionDenied
from continuum_cli.metrics.access import metrics_allowed
from continuum_cli.server.types import Request, Response


async def metrics(state: AppState, request: Request) -> Response:
    if not metrics_allowed(state.settings, request.client):
        raise PermissionDenied(
            "/metrics is served to loopback clients only while api_keys.mode is blocking",
            hint="scrape from the router's host, or set server.metrics_public: true")
    if state.metrics is None:
        raise NotFound("metrics are not enabled on this router")
    body, content_type = state.metrics.render(request.header("accept"))
    return Response(200, body, content_type)
