"""The cost of tokens for a model as served (`pricing`: USD per million tokens)."""

from __future__ import annotations

from collections.abc import Mapping

from continuum_cli.config.models import ModelPrice


def price_for(pricing: Mapping[str, ModelPrice], *models: str | None) -> ModelPrice | None:
    """The first of `models` (served name first, then the name asked for) with a price."""
    for model in models:
        if model and model in pricing:
            return pricing[model]
    return None


def cost_usd(price: ModelPrice | None, input_tokens: float, output_tokens: float,
             cached_tokens: float = 0) -> float | None:
    """USD for the tokens; `input_tokens` excludes the cached ones. None: no price known."""
    if price is None:
        return None
    cached = price.cached_input if price.cached_input is not None else price.input
    return (input_tokens * price.input + cached_tokens * cached
            + output_tokens * price.output) / 1_000_000
