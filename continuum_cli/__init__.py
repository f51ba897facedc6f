"""continuum: an Anthropic Messages API router for self-hosted OpenAI-compatible models."""

__version__ = "0.1.0"
