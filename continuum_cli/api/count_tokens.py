"""POST /anthropic/v1/messages/count_tokens: system + tools + messages (+ images).

Exact where the backend has a tokenizer endpoint (llama.cpp and vLLM `/tokenize`, cached per
backend and text), otherwise the documented estimate of `translate.tokens`. Never 0 for a
non-empty request (checklist item 45).
"""

from __future__ import annotations

import hashlib

from continuum_cli.api.files import resolve_content
from continuum_cli.api.state import AppState
from continuum_cli.errors import ModelNotFound
from continuum_cli.server.types import Request, Response, json_response
from continuum_cli.translate.tokens import estimate_tokens, image_tokens, render_for_count
from continuum_cli.translate.usage_scale import scaled_count
from continuum_cli.wire.anthropic import parse_messages_request

_CACHE_LIMIT = 4096


async def count_tokens(state: AppState, request: Request) -> Response:
    req = parse_messages_request(request.body, require_max_tokens=False)
    await resolve_content(state, request, req)  # documents count as the text they become
    estimate = estimate_tokens(req)
    try:
        route = await state.route(req.model)
    except ModelNotFound:
        return json_response(200, {"input_tokens": estimate})
    route = route.on(state.pick(route))  # a ready backend's tokenizer
    text = render_for_count(req)
    key = (route.backend.name, int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8)
                                              .digest(), "big"))
    counted = state.token_cache.get(key)
    if counted is None:
        counted = await state.upstream.tokenize(route.backend, text,
                                                model=route.upstream_model)
        if counted is not None:
            if len(state.token_cache) >= _CACHE_LIMIT:
                state.token_cache.clear()
            state.token_cache[key] = counted
    total = estimate if counted is None else max(1, counted + image_tokens(req))
    scale = state.usage_scale(route.backend)
    return json_response(200, {"input_tokens": scaled_count(total, scale) if scale else total})
