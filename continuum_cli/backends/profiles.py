"""What each backend type is known to do: ports, URL conventions, knobs, error texts.

Pure data. The translator reads `BackendProfile` to pick the thinking knob and the
tool_choice mapping; the upstream client reads it for the base URL, readiness and
`/tokenize`; error mapping reads `overflow_patterns` and `CAPABILITY_ERRORS`. The README's
backend table is this module in prose.
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


# Fixes for a backend that answers tool calls as text (checklist item 23), per type.
_VLLM_PARSER = ("start vLLM with --enable-auto-tool-choice --tool-call-parser <parser for the "
                "model> (hermes for Qwen2.5/Qwen3, llama3_json for Llama 3.x, mistral for "
                "Mistral)")
_JINJA = "start llama-server with --jinja (and the model's tool-capable chat template)"
_TOOL_MODEL = "pick a model whose chat template supports tool calls"


@dataclass(frozen=True)
class CapabilityError:
    """An engine's wording for "this model cannot do X" (checklist items 11, 24).

    `capability` is what the model lacks ("tools" or "images"); `fix` is what the operator
    changes. The pattern decides the fix, not the backend type: a `generic` backend may be
    any engine, and its wording says which one it is.
    """

    pattern: str
    capability: str
    fix: str

    def matches(self, text: str) -> bool:
        return re.search(self.pattern, text, re.IGNORECASE) is not None


CAPABILITY_ERRORS: tuple[CapabilityError, ...] = (
    # llama.cpp (500): "tools param requires --jinja flag"
    CapabilityError(r"requires --jinja", "tools", _JINJA),
    # vLLM (400): `"auto" tool choice requires --enable-auto-tool-choice and
    # --tool-call-parser to be set`
    CapabilityError(r"enable-auto-tool-choice", "tools", _VLLM_PARSER),
    # Ollama (400): "registry.ollama.ai/library/gemma:2b does not support tools"
    CapabilityError(r"does not support tools", "tools",
                    "pick a model with tool support (`ollama show <model>` lists `tools` "
                    "under Capabilities)"),
    # OpenRouter-style gateways (404): "No endpoints found that support tool use"
    CapabilityError(r"no endpoints found that support tool", "tools",
                    "pick a model whose providers support tool use"),
    # llama.cpp (500): "image input is not supported - hint: ... you may need to provide the
    # mmproj"; older builds: "image input is not supported by this server"
    CapabilityError(r"image input is not supported|not compiled for multimodal", "images",
                    "start llama-server with --mmproj <the model's projector .gguf>, or pick "
                    "a vision model"),
    # vLLM (400): "facebook/opt-125m is not a multimodal model"
    CapabilityError(r"is not a multimodal model", "images",
                    "serve a vision-language model (e.g. Qwen2.5-VL) on this backend"),
    # vLLM with --limit-mm-per-prompt image=0: "At most 0 image(s) may be provided ..."
    CapabilityError(r"at most 0 image", "images",
                    "raise vLLM's --limit-mm-per-prompt (it allows 0 images)"),
    # Ollama (500): "failed to process inputs: this model is missing data required for image
    # input"
    CapabilityError(r"missing data required for image input", "images",
                    "pick a vision model (`ollama show <model>` lists `vision` under "
                    "Capabilities)"),
    # LM Studio: "Model does not support images. Please use a model that does."
    CapabilityError(r"does not support images?\b", "images", "pick a vision-capable model"),
    # OpenRouter-style gateways (404): "No endpoints found that support image input"
    CapabilityError(r"no endpoints found that support image", "images",
                    "pick a vision-capable model"),
)


def capability_error(text: str) -> CapabilityError | None:
    """The capability an upstream error text says the model lacks, if it says one."""
    return next((c for c in CAPABILITY_ERRORS if c.matches(text)), None)


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
    # the backend cannot fetch image URLs itself (Ollama rejects them, checklist item 11):
    # continuum downloads them and sends data URLs
    inline_image_urls: bool = False
    # readiness: llama.cpp answers 503 on /health while loading
    health_path: str | None = None
    overflow_patterns: tuple[str, ...] = _COMMON_OVERFLOW
    # what to change when the backend answers tool calls as text (checklist item 23)
    tool_parser_fix: str = _TOOL_MODEL

    def matches_overflow(self, text: str) -> bool:
        return any(re.search(p, text, re.IGNORECASE) for p in self.overflow_patterns)


PROFILES: dict[str, BackendProfile] = {
    "vllm": BackendProfile(
        "vllm", 8000, tokenize_path="/tokenize", thinking_knob="chat_template_kwargs",
        continue_final_message=True, health_path="/health", tool_parser_fix=_VLLM_PARSER,
    ),
    "ollama": BackendProfile(
        "ollama", 11434, thinking_knob="think", honours_required_tool_choice=False,
        inline_image_urls=True,
        tool_parser_fix="pick a model with tool support (`ollama show <model>` lists `tools` "
                        "under Capabilities)",
    ),
    "llamacpp": BackendProfile(
        # "required" goes through: llama.cpp's grammar forces the call when the chat template
        # has a tool-call format it knows (README, backend table notes)
        "llamacpp", 8080, tokenize_path="/tokenize", thinking_knob="chat_template_kwargs",
        health_path="/health", tool_parser_fix=_JINJA,
    ),
    "lmstudio": BackendProfile(
        "lmstudio", 1234, thinking_knob="reasoning_effort", honours_required_tool_choice=True,
        accepts_top_k=True,
    ),
    "mlxcel": BackendProfile("mlxcel", 8080, thinking_knob="chat_template_kwargs"),
    "generic": BackendProfile("generic", 8000, thinking_knob="none", accepts_top_k=False),
    "embedded": BackendProfile(
        "embedded", 0, tokenize_path="/tokenize", thinking_knob="chat_template_kwargs",
        health_path="/health",
        tool_parser_fix="pick a model_path whose chat template supports tool calls, or set "
                        "chat_template_file",
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
