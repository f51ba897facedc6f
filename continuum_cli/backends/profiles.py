"""What each backend type is known to do: ports, URL conventions, knobs, error texts.

Pure data. The translator reads `BackendProfile` to pick the thinking knob and the
tool_choice mapping; the upstream client reads it for the base URL, readiness and
`/tokenize`; error mapping reads `overflow_patterns`. The README's backend table is this
module in prose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

ThinkingKnob = str  # "chat_template_kwargs" | "reasoning_effort" | "think" | "none"

# Texts that mean "the prompt does not fit the context window", across engines.
_COMMON_OVERFLOW = (
    r"exceeds? the available context size",  # llama.cpp: "request (N tokens) exceeds ..."
    r"exceed_context_size",
    r"maximum context length",  # vLLM / OpenAI: "This model's maximum context length is M tokens"
    r"context length exceeded",
    r"context window",
    r"prompt is too long",
    r"input length .* exceeds",
    r"context length of only",  # LM Studio (as a 500): "...loaded with context length of only N"
    r"n_ctx",
    r"context_length_exceeded",
)


@dataclass(frozen=True)
class BackendProfile:
    type: str
    default_port: int
    # suffix that OpenAI routes live under; a URL given without it gets it appended
    api_prefix: str = "/v1"
    # path (relative to the server root, not api_prefix) of a tokenizer endpoint, if any
    tokenize_path: str | None = None
    thinking_knob: ThinkingKnob = "chat_template_kwargs"
    honours_required_tool_choice: bool = True
    accepts_top_k: bool = True
    # vLLM/SGLang style assistant prefill: continue_final_message + add_generation_prompt
    continue_final_message: bool = False
    # readiness: llama.cpp answers 503 on /health while loading
    health_path: str | None = None
    overflow_patterns: tuple[str, ...] = _COMMON_OVERFLOW

    def matches_overflow(self, text: str) -> bool:
        return any(re.search(p, text, re.IGNORECASE) for p in self.overflow_patterns)


PROFILES: dict[str, BackendProfile] = {
    "vllm": BackendProfile(
        "vllm", 8000, tokenize_path="/tokenize", thinking_knob="chat_template_kwargs",
        continue_final_message=True, health_path="/health",
    ),
    "ollama": BackendProfile(
        "ollama", 11434, thinking_knob="think", honours_required_tool_choice=False,
    ),
    "llamacpp": BackendProfile(
        "llamacpp", 8080, tokenize_path="/tokenize", thinking_knob="chat_template_kwargs",
        honours_required_tool_choice=False, health_path="/health",
    ),
    "lmstudio": BackendProfile(
        "lmstudio", 1234, thinking_knob="reasoning_effort", honours_required_tool_choice=True,
        accepts_top_k=True,
    ),
    "mlxcel": BackendProfile("mlxcel", 8080, thinking_knob="chat_template_kwargs"),
    "generic": BackendProfile("generic", 8000, thinking_knob="none", accepts_top_k=False),
    "embedded": BackendProfile(
        "embedded", 0, tokenize_path="/tokenize", thinking_knob="chat_template_kwargs",
        honours_required_tool_choice=False, health_path="/health",
    ),
}


def profile_for(backend_type: str) -> BackendProfile:
    return PROFILES.get(backend_type, PROFILES["generic"])


def normalize_base_url(url: str, backend_type: str) -> str:
    """Return the OpenAI base URL (ending in `/v1` or the given path) for a configured URL.

    `http://host:11434` for Ollama becomes `http://host:11434/v1`; a URL that already has a
    path (`http://host/openai/v1`) is kept as given, minus a trailing slash.
    """
    profile = profile_for(backend_type)
    text = url.strip()
    parts = urlsplit(text if "://" in text else "http://" + text)
    path = parts.path.rstrip("/")
    if path.endswith("/chat/completions"):
        path = path[: -len("/chat/completions")]
    if not path:
        path = profile.api_prefix
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def server_root(base_url: str) -> str:
    """The server root of an OpenAI base URL (`http://h:8080/v1` -> `http://h:8080`)."""
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[:-3]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))
