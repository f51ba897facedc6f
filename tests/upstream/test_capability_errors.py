"""A model that cannot use tools or read images (checklist items 11, 24): every engine's
wording becomes a 400 invalid_request_error naming the backend, what the model cannot do
and the fix -- in the mapping table, and end to end through the router with the official
anthropic SDK (which must not retry it)."""

from __future__ import annotations

import base64
import json

import anthropic
import pytest

from continuum_cli import errors
from continuum_cli.config.models import Backend
from continuum_cli.upstream.errors import map_status
from tests.fakes.scripted_backend import Completion, Error, ScriptedBackend

LLAMA_JINJA = "tools param requires --jinja flag"
VLLM_AUTO = ('"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser '
             "to be set")
OLLAMA_TOOLS = "registry.ollama.ai/library/gemma:2b does not support tools"
ROUTER_TOOLS = ("No endpoints found that support tool use. To learn more about provider "
                "routing, visit: https://openrouter.ai/docs/provider-routing")
LLAMA_MMPROJ = ("image input is not supported - hint: if this is unexpected, you may need to "
                "provide the mmproj")
LLAMA_OLD_IMAGE = "image input is not supported by this server"
VLLM_TEXT_ONLY = "facebook/opt-125m is not a multimodal model None"
VLLM_ZERO_IMAGES = "At most 0 image(s) may be provided in one request."
OLLAMA_IMAGE = ("Failed to create new sequence: failed to process inputs: this model is "
                "missing data required for image input")
LMSTUDIO_IMAGE = "Model does not support images. Please use a model that does."
ROUTER_IMAGE = "No endpoints found that support image input"


def body(message: str, **extra: object) -> str:
    return json.dumps({"error": {"message": message, **extra}})


@pytest.mark.parametrize(("type_", "status", "text", "cannot", "fix"), [
    pytest.param("llamacpp", 500, body(LLAMA_JINJA, code=500, type="server_error"),
                 "cannot use tools", "--jinja", id="llamacpp-jinja"),
    pytest.param("generic", 500, body(LLAMA_JINJA), "cannot use tools", "--jinja",
                 id="generic-fronting-llamacpp"),
    pytest.param("vllm", 400, json.dumps({"object": "error", "message": VLLM_AUTO,
                                          "type": "BadRequestError", "code": 400}),
                 "cannot use tools", "--enable-auto-tool-choice --tool-call-parser",
                 id="vllm-auto-tool-choice"),
    pytest.param("ollama", 400, body(OLLAMA_TOOLS, type="api_error"), "cannot use tools",
                 "ollama show", id="ollama-tools"),
    pytest.param("generic", 404, body(ROUTER_TOOLS, code=404), "cannot use tools",
                 "support tool use", id="openrouter-tools"),
    pytest.param("llamacpp", 500, body(LLAMA_MMPROJ), "cannot read images", "--mmproj",
                 id="llamacpp-mmproj"),
    pytest.param("llamacpp", 500, body(LLAMA_OLD_IMAGE), "cannot read images", "--mmproj",
                 id="llamacpp-older-wording"),
    pytest.param("vllm", 400, json.dumps({"object": "error", "message": VLLM_TEXT_ONLY}),
                 "cannot read images", "vision-language model", id="vllm-text-only"),
    pytest.param("vllm", 400, body(VLLM_ZERO_IMAGES), "cannot read images",
                 "--limit-mm-per-prompt", id="vllm-zero-images"),
    pytest.param("ollama", 500, json.dumps({"error": OLLAMA_IMAGE}), "cannot read images",
                 "lists `vision`", id="ollama-image"),
    pytest.param("lmstudio", 400, body(LMSTUDIO_IMAGE), "cannot read images",
                 "vision-capable model", id="lmstudio-image"),
    pytest.param("generic", 404, body(ROUTER_IMAGE), "cannot read images",
                 "vision-capable model", id="openrouter-image"),
    pytest.param("llamacpp", 500, LLAMA_JINJA, "cannot use tools", "--jinja",
                 id="plain-text-body"),
])
def test_capability_errors_are_400_with_the_fix(type_: str, status: int, text: str,
                                                cannot: str, fix: str) -> None:
    exc = map_status(Backend(name="box-7", type=type_, url="http://127.0.0.1:9"),
                     status, text, {})
    assert type(exc) is errors.InvalidRequest
    assert exc.status == 400 and exc.error_type == "invalid_request_error"
    assert exc.message.startswith("backend box-7: the model " + cannot)
    assert fix in exc.message.split("; fix: ", 1)[1]


@pytest.mark.parametrize(("status", "text", "cls"), [
    pytest.param(400, body("At most 1 image(s) may be provided in one request."),
                 errors.InvalidRequest, id="image-limit-is-not-a-missing-capability"),
    pytest.param(401, body("does not support tools"), errors.AuthenticationFailed,
                 id="401-stays-auth"),
    pytest.param(429, body("No endpoints found that support tool use"), errors.RateLimited,
                 id="429-stays-rate-limit"),
    pytest.param(500, body("tool parser crashed"), errors.UpstreamUnavailable,
                 id="other-500"),
])
def test_other_errors_keep_their_mapping(status: int, text: str, cls: type) -> None:
    exc = map_status(Backend(name="b", type="vllm", url="http://x"), status, text, {})
    assert type(exc) is cls
    assert "cannot use tools" not in exc.message and "cannot read images" not in exc.message


# -- end to end ----------------------------------------------------------------------------
BASH = {"name": "Bash", "description": "Run a command",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()
IMAGE_TURN = [{"role": "user", "content": [
    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
    {"type": "text", "text": "What is this?"}]}]
TOOL_TURN = [{"role": "user", "content": "list the files"}]


def sdk(router) -> anthropic.Anthropic:
    # retries on: a 400 must not be retried, which is the point (Claude Code would loop)
    return anthropic.Anthropic(base_url=router.anthropic_url, api_key="k", max_retries=2)


def create(router, stream: bool, **kw: object) -> None:
    client = sdk(router)
    if stream:
        with client.messages.stream(model="test-model", max_tokens=64, **kw) as s:
            s.get_final_message()
    else:
        client.messages.create(model="test-model", max_tokens=64, **kw)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(("reply", "request_kw", "expected"), [
    pytest.param(Error(500, {"error": {"code": 500, "message": LLAMA_JINJA,
                                       "type": "server_error"}}),
                 {"tools": [BASH], "messages": TOOL_TURN},
                 ("cannot use tools", "--jinja"), id="llamacpp-without-jinja"),
    pytest.param(Error(400, {"object": "error", "message": VLLM_AUTO,
                             "type": "BadRequestError", "code": 400}),
                 {"tools": [BASH], "messages": TOOL_TURN},
                 ("cannot use tools", "--tool-call-parser"), id="vllm-without-parser"),
    pytest.param(Error(400, {"error": OLLAMA_TOOLS}), {"tools": [BASH], "messages": TOOL_TURN},
                 ("cannot use tools", "gemma:2b"), id="ollama-model-without-tools"),
    pytest.param(Error(500, {"error": {"code": 500, "message": LLAMA_MMPROJ}}),
                 {"messages": IMAGE_TURN}, ("cannot read images", "--mmproj"),
                 id="llamacpp-without-mmproj"),
    pytest.param(Error(404, {"error": {"message": ROUTER_IMAGE, "code": 404}}),
                 {"messages": IMAGE_TURN}, ("cannot read images", "vision-capable"),
                 id="gateway-without-vision"),
])
def test_router_answers_400_and_the_sdk_does_not_retry(
        router, scripted: ScriptedBackend, reply: Error, request_kw: dict[str, object],
        expected: tuple[str, str], stream: bool) -> None:
    scripted.queue(reply)
    with pytest.raises(anthropic.BadRequestError) as caught:
        create(router, stream, **request_kw)
    error = caught.value.body["error"]
    assert caught.value.status_code == 400 and error["type"] == "invalid_request_error"
    assert error["message"].startswith("backend scripted: the model ")
    assert all(part in error["message"] for part in expected)
    assert len(scripted.chat_requests()) == 1


def test_vllm_error_object_in_a_200_is_mapped_too(router, scripted: ScriptedBackend) -> None:
    scripted.queue(Completion({"object": "error", "message": VLLM_TEXT_ONLY,
                               "type": "BadRequestError", "code": 400}))
    with pytest.raises(anthropic.BadRequestError) as caught:
        create(router, False, messages=IMAGE_TURN)
    assert "cannot read images" in caught.value.body["error"]["message"]
