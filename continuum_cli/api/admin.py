"""GET /admin/usage: the usage ledger summarized (the JSON of `continuum usage --json`), for
keys marked `admin: true`."""

from __future__ import annotations

from urllib.parse import parse_qs

from continuum_cli.api.state import AppState
from continuum_cli.errors import AuthenticationFailed, InvalidRequest, PermissionDenied
from continuum_cli.server.types import Request, Response, json_response
from continuum_cli.usage.query import usage_report


def require_admin(request: Request) -> None:
    caller = request.caller
    if caller is None or not caller.authenticated:
        raise AuthenticationFailed("this endpoint needs an admin key: send a key marked "
                                   "`admin: true` in api_keys as x-api-key or Bearer")
    if not caller.admin:
        raise PermissionDenied(f"key {caller.name} is not an admin key; mark it `admin: true` "
                               "in api_keys to read usage")


async def usage(state: AppState, request: Request) -> Response:
    require_admin(request)
    query = parse_qs(request.query)
    by = query.get("by", ["key"])[-1]
    since = query.get("since", ["7d"])[-1]
    try:
        report = await usage_report(state.store, by, since)
    except ValueError as exc:
        raise InvalidRequest(str(exc).replace("--by", "`by`").replace("--since", "`since`")
                             ) from None
    return json_response(200, report, {"cache-control": "no-store"})
