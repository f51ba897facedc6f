"""The Files API with the official SDKs: Anthropic's beta files and OpenAI's files, one store."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.conftest import basic_config
from tests.fakes.scripted_backend import ScriptedBackend
from tests.rawhttp import exchange
from tests.router import RouterThread

MODEL = "claude-sonnet-4-5"


@pytest.fixture
def files_dir(tmp_path: Path) -> Path:
    return tmp_path / "blobs"


@pytest.fixture
def files_router(scripted: ScriptedBackend, router_factory: Callable[..., RouterThread],
                 files_dir: Path, tmp_path: Path) -> RouterThread:
    return router_factory(basic_config(scripted, files={"dir": str(files_dir)},
                                       state={"path": str(tmp_path / "state.db")}))


def claude(router: RouterThread, key: str = "k") -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=router.anthropic_url, api_key=key, max_retries=0)


def test_anthropic_sdk_upload_list_retrieve_download_delete(files_router: RouterThread,
                                                            files_dir: Path) -> None:
    client = claude(files_router)
    uploaded = [client.beta.files.upload(file=(f"note-{i}.txt", f"note {i}".encode(),
                                               "text/plain")) for i in range(5)]
    first = uploaded[0]
    assert first.type == "file" and first.filename == "note-0.txt"
    assert first.mime_type == "text/plain" and first.size_bytes == 6
    assert first.downloadable is True and first.created_at.tzinfo is not None
    assert first.id.startswith("file_")
    raw = client.beta.files.with_raw_response.retrieve_metadata(first.id).http_response.json()
    assert set(raw) == {"id", "type", "filename", "mime_type", "size_bytes", "created_at",
                        "downloadable"}
    assert sorted(os.listdir(files_dir)) == sorted(u.id for u in uploaded)  # router-made names

    # newest first, two per page, walked with the SDK's own paging
    newest_first = [u.id for u in reversed(uploaded)]
    page = client.beta.files.list(limit=2)
    assert [f.id for f in page.data] == newest_first[:2] and page.has_next_page()
    assert [f.id for f in client.beta.files.list(limit=2)] == newest_first
    raw = httpx.get(files_router.anthropic_url + "/v1/files", params={"limit": 2},
                    headers={"x-api-key": "k"}).json()
    assert raw["has_more"] is True and raw["first_id"] == newest_first[0]
    assert raw["last_id"] == newest_first[1]
    after = httpx.get(files_router.anthropic_url + "/v1/files",
                      params={"limit": 2, "after_id": raw["last_id"]}).json()
    assert [f["id"] for f in after["data"]] == newest_first[2:4] and after["has_more"]
    before = httpx.get(files_router.anthropic_url + "/v1/files",
                       params={"limit": 2, "before_id": newest_first[4]}).json()
    assert [f["id"] for f in before["data"]] == newest_first[2:4] and before["has_more"]
    last = httpx.get(files_router.anthropic_url + "/v1/files",
                     params={"limit": 2, "after_id": newest_first[3]}).json()
    assert [f["id"] for f in last["data"]] == newest_first[4:] and not last["has_more"]

    assert client.beta.files.retrieve_metadata(first.id) == first
    assert client.beta.files.download(first.id).read() == b"note 0"
    deleted = client.beta.files.delete(first.id)
    assert deleted.id == first.id and deleted.type == "file_deleted"
    with pytest.raises(anthropic.NotFoundError) as info:
        client.beta.files.retrieve_metadata(first.id)
    assert info.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert first.id not in os.listdir(files_dir)


def test_the_sdk_walks_a_list_from_a_cursor_in_either_direction(
        files_router: RouterThread) -> None:
    client = claude(files_router)
    ids = [client.beta.files.upload(file=(f"w{i}.txt", b"w", "text/plain")).id
           for i in range(7)]
    newest = list(reversed(ids))
    # the SDK resends the first call's query with each `page`: the walk goes on, in order
    older = client.beta.files.list(limit=2, extra_query={"after_id": newest[0]})
    assert [f.id for f in older] == newest[1:]
    newer = client.beta.files.list(limit=2, extra_query={"before_id": newest[6]})
    assert [f.id for f in newer] == [*newest[4:6], *newest[2:4], *newest[0:2]]
    first = newer.model_dump()
    assert (first["first_id"], first["last_id"], first["has_more"]) == \
        (newest[4], newest[5], True)
    assert first["next_page"] == f"page_before_{newest[4]}"
    raw = httpx.get(files_router.anthropic_url + "/v1/files",
                    params={"page": first["next_page"], "limit": 3}).json()
    assert [f["id"] for f in raw["data"]] == newest[1:4] and raw["has_more"]
    for path, cursor in (("/anthropic/v1/files", "page"), ("/anthropic/v1/files", "after_id"),
                         ("/anthropic/v1/files", "before_id"), ("/v1/files", "after")):
        for value in ("nonsense", "zzz", "page_zzz", "page_before_"):
            resp = httpx.get(files_router.url + path, params={cursor: value})
            assert resp.status_code == 400 and "earlier list answer" in resp.text, resp.text


def test_beta_header_accepted_not_required(files_router: RouterThread) -> None:
    body = {"file": ("a.txt", b"abc", "text/plain")}
    for headers in ({}, {"anthropic-beta": "files-api-2025-04-14"}):
        resp = httpx.post(files_router.anthropic_url + "/v1/files", files=body,
                          headers=headers)
        assert resp.status_code == 200 and resp.json()["size_bytes"] == 3


def test_a_file_document_reaches_the_backend_as_text(files_router: RouterThread,
                                                     scripted: ScriptedBackend) -> None:
    client = claude(files_router)
    uploaded = client.beta.files.upload(file=("facts.md", b"# Facts\nThe answer is 42.",
                                              "text/markdown"))
    client.beta.messages.create(
        model=MODEL, max_tokens=20, betas=["files-api-2025-04-14"],
        messages=[{"role": "user", "content": [
            {"type": "document", "source": {"type": "file", "file_id": uploaded.id},
             "context": "from the wiki"},
            {"type": "text", "text": "What is the answer?"}]}])
    sent = str(scripted.chat_requests()[-1].body["messages"])
    assert "The answer is 42." in sent and "Document: facts.md" in sent
    assert "from the wiki" in sent


def test_a_text_file_with_a_wrong_type_is_still_read_as_text(files_router: RouterThread,
                                                             scripted: ScriptedBackend) -> None:
    client = claude(files_router)
    source = "const answer: number = 42;\n"
    uploaded = client.beta.files.upload(file=("app.ts", source.encode(), "video/mp2t"))
    client.messages.create(model=MODEL, max_tokens=20, messages=[{"role": "user", "content": [
        {"type": "document", "source": {"type": "file", "file_id": uploaded.id}}]}])
    assert scripted.chat_requests()[-1].body["messages"][-1]["content"] == \
        f"Document: app.ts\n\n{source}"


def test_an_image_file_reaches_the_backend_as_a_data_url(files_router: RouterThread,
                                                         scripted: ScriptedBackend) -> None:
    png = bytes.fromhex("89504e470d0a1a0a") + b"rest-of-png"
    client = claude(files_router)
    uploaded = client.beta.files.upload(file=("pixel.png", png, "image/png"))
    client.beta.messages.create(
        model=MODEL, max_tokens=20, betas=["files-api-2025-04-14"],
        messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "file", "file_id": uploaded.id}},
            {"type": "text", "text": "What is it?"}]}])
    parts = scripted.chat_requests()[-1].body["messages"][-1]["content"]
    urls = [p["image_url"]["url"] for p in parts if p.get("type") == "image_url"]
    assert urls == ["data:image/png;base64," + base64.b64encode(png).decode()]


@pytest.mark.parametrize(("block", "message"), [
    ({"type": "container_upload", "file_id": "file_x"}, "code execution"),
    ({"type": "document", "source": {"type": "file", "file_id": "SHEET"}}, "code execution"),
    ({"type": "image", "source": {"type": "file", "file_id": "SHEET"}}, "is not an image"),
    ({"type": "document", "source": {"type": "file", "file_id": "file_unknown"}},
     "File not found"),
])
def test_unusable_file_references(files_router: RouterThread, block: dict[str, Any],
                                  message: str) -> None:
    client = claude(files_router)
    sheet = client.beta.files.upload(file=("t.xlsx", b"PK\x03\x04zip", "application/vnd."
                                           "openxmlformats-officedocument.spreadsheetml.sheet"))
    if block.get("source", {}).get("file_id") == "SHEET":
        block["source"]["file_id"] = sheet.id
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.create(model=MODEL, max_tokens=20,
                               messages=[{"role": "user", "content": [block]}])
    assert info.value.status_code in (400, 404)
    assert message in str(info.value.body)


def test_openai_sdk_on_the_same_store(files_router: RouterThread) -> None:
    client = openai.OpenAI(base_url=files_router.url + "/v1", api_key="k", max_retries=0)
    created = client.files.create(file=("data.jsonl", b'{"a": 1}\n'), purpose="batch")
    assert created.object == "file" and created.bytes == 9 and created.purpose == "batch"
    assert created.filename == "data.jsonl" and isinstance(created.created_at, int)
    assert client.files.retrieve(created.id).id == created.id
    assert client.files.content(created.id).read() == b'{"a": 1}\n'
    # the Anthropic side sees the same file
    assert claude(files_router).beta.files.retrieve_metadata(created.id).size_bytes == 9
    others = [client.files.create(file=(f"{i}.txt", b"x"), purpose="user_data")
              for i in range(3)]
    listed = client.files.list()
    assert [f.id for f in listed.data] == [o.id for o in reversed(others)] + [created.id]
    assert [f.id for f in client.files.list(purpose="batch").data] == [created.id]
    paged = client.files.list(limit=2, order="asc")
    assert [f.id for f in paged] == [created.id] + [o.id for o in others]
    deleted = client.files.delete(created.id)
    assert deleted.deleted is True and deleted.id == created.id
    with pytest.raises(openai.NotFoundError) as info:
        client.files.retrieve(created.id)
    assert info.value.status_code == 404
    with pytest.raises(openai.BadRequestError, match="purpose"):
        httpx_file = ("x.txt", b"x")
        client.files.create(file=httpx_file, purpose="")  # type: ignore[arg-type]


@pytest.mark.parametrize(("path", "body"), [
    ("/anthropic/v1/files/file_00000000aaaaaaaaaaaaaaaaa",
     {"type": "error", "error": {"type": "not_found_error",
                                 "message": "File not found: file_00000000aaaaaaaaaaaaaaaaa"}}),
    ("/anthropic/v1/files/../../etc/passwd/content", None),
    ("/v1/files/nonsense", {"error": {"message": "File not found: nonsense",
                                      "type": "not_found_error", "code": 404}}),
])
def test_unknown_ids_are_404_in_the_route_envelope(files_router: RouterThread, path: str,
                                                   body: dict[str, Any] | None) -> None:
    resp = httpx.get(files_router.url + path)
    assert resp.status_code == 404
    if body is not None:
        assert resp.json() == body


@pytest.mark.parametrize(("path", "fields", "message"), [
    ("/anthropic/v1/files", {"nofile": "x"}, "no `file` part"),
    ("/anthropic/v1/files", {"expires_in_seconds": "5"}, "expires_in_seconds"),
    ("/v1/files", {}, "purpose is required"),
    ("/v1/files", {"purpose": "nonsense"}, "purpose 'nonsense' is not one of assistants"),
])
def test_bad_uploads_are_400(files_router: RouterThread, files_dir: Path, path: str,
                             fields: dict[str, str], message: str) -> None:
    files = {"file": ("a.txt", b"abc")} if "nofile" not in fields else None
    resp = httpx.post(files_router.url + path, data=fields, files=files or {"other": ("x", b"")})
    assert resp.status_code == 400 and message in resp.text
    assert not files_dir.exists() or os.listdir(files_dir) == []
    assert httpx.post(files_router.url + path, content=b"{}",
                      headers={"content-type": "application/json"}).status_code == 400


@pytest.mark.parametrize("path", ["/anthropic/v1/files", "/v1/files"])
@pytest.mark.parametrize(("filename", "content", "message"), [
    ("empty.txt", b"", "the file is empty"),
    ("n" * 300 + ".pdf", b"%PDF-", "the filename is 304 characters long; at most 255"),
])
def test_empty_files_and_overlong_names_are_400(files_router: RouterThread, files_dir: Path,
                                                path: str, filename: str, content: bytes,
                                                message: str) -> None:
    resp = httpx.post(files_router.url + path, files={"file": (filename, content)},
                      data={"purpose": "user_data"})
    assert resp.status_code == 400 and message in resp.text, resp.text
    assert not files_dir.exists() or os.listdir(files_dir) == []
    assert httpx.get(files_router.url + path).json()["data"] == []


def test_openai_sdk_purposes_are_accepted(files_router: RouterThread) -> None:
    client = openai.OpenAI(base_url=files_router.url + "/v1", api_key="k", max_retries=0)
    for purpose in ("assistants", "batch", "fine-tune", "vision", "user_data", "evals"):
        made = client.files.create(file=("p.txt", b"p"), purpose=purpose)  # type: ignore[arg-type]
        assert made.purpose == purpose


def test_ownership_between_two_keys(scripted: ScriptedBackend,
                                    router_factory: Callable[..., RouterThread]) -> None:
    router = router_factory(basic_config(scripted, api_keys={"mode": "blocking", "keys": [
        {"key": "alice-key", "name": "alice"}, {"key": "bob-key", "name": "bob"}]}))
    alice, bob = claude(router, "alice-key"), claude(router, "bob-key")
    mine = alice.beta.files.upload(file=("a.txt", b"alice's", "text/plain"))
    theirs = bob.beta.files.upload(file=("b.txt", b"bob's", "text/plain"))
    assert [f.id for f in alice.beta.files.list()] == [mine.id]
    assert [f.id for f in bob.beta.files.list()] == [theirs.id]
    for call in (bob.beta.files.retrieve_metadata, bob.beta.files.delete,
                 lambda i: bob.beta.files.download(i).read()):
        with pytest.raises(anthropic.NotFoundError) as info:
            call(mine.id)
        assert info.value.message.endswith(f"File not found: {mine.id}") or \
            f"File not found: {mine.id}" in str(info.value.body)
    with pytest.raises(anthropic.NotFoundError):  # using it in a message: the same answer
        bob.messages.create(model=MODEL, max_tokens=5, messages=[{"role": "user", "content": [
            {"type": "document", "source": {"type": "file", "file_id": mine.id}}]}])
    assert alice.beta.files.download(mine.id).read() == b"alice's"
    with pytest.raises(anthropic.AuthenticationError):
        claude(router, "nobody").beta.files.list()


def test_files_survive_a_restart(scripted: ScriptedBackend, tmp_path: Path) -> None:
    config = basic_config(scripted, files={"dir": str(tmp_path / "b")},
                          state={"path": str(tmp_path / "s.db")})
    from tests.router import settings_for

    with RouterThread(settings_for(config)) as router:
        kept = claude(router).beta.files.upload(file=("k.txt", b"kept", "text/plain"))
    with RouterThread(settings_for(config)) as router:
        assert claude(router).beta.files.retrieve_metadata(kept.id).filename == "k.txt"
        assert claude(router).beta.files.download(kept.id).read() == b"kept"


def chunks(total: int, size: int = 1 << 20) -> Iterator[bytes]:
    piece = b"\0" * size
    sent = 0
    while sent < total:
        yield piece[:min(size, total - sent)]
        sent += size


def multipart_stream(total: int, boundary: str = "bnd0123") -> Iterator[bytes]:
    yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
           f"filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    yield from chunks(total)
    yield f"\r\n--{boundary}--\r\n".encode()


def test_a_600mb_upload_over_the_limit_is_413_and_leaves_nothing(
        scripted: ScriptedBackend, router_factory: Callable[..., RouterThread],
        tmp_path: Path) -> None:
    blobs = tmp_path / "b"
    router = router_factory(basic_config(scripted, files={"dir": str(blobs),
                                                          "max_bytes": "100MB"}))
    resp = httpx.post(router.anthropic_url + "/v1/files", content=multipart_stream(600 * 10**6),
                      headers={"content-type": "multipart/form-data; boundary=bnd0123"},
                      timeout=120)
    assert resp.status_code == 413
    assert resp.json()["error"] == {"type": "request_too_large", "message":
                                    "the file is larger than the 100000000 byte limit "
                                    "(files.max_bytes)"}
    assert os.listdir(blobs) == []
    # a declared length over the limit is refused before the body is sent (Expect:
    # 100-continue is not answered), in the OpenAI route's own envelope
    head = (f"POST /v1/files HTTP/1.1\r\nhost: x\r\ncontent-length: {600 * 10**6}\r\n"
            "content-type: multipart/form-data; boundary=bnd0123\r\n"
            "expect: 100-continue\r\n\r\n").encode()
    answer = exchange(router.port, head, until=b"}}", timeout=10)
    assert answer.startswith(b"HTTP/1.1 413 ") and b"100 Continue" not in answer
    assert b'"code":413' in answer and b"connection: close" in answer.lower()
    assert httpx.get(router.url + "/health").status_code == 200


def test_replicas_share_files_through_redis_and_a_shared_dir(
        scripted: ScriptedBackend, router_factory: Callable[..., RouterThread],
        redis_server: Any, tmp_path: Path) -> None:
    config = basic_config(scripted, files={"dir": str(tmp_path / "shared")},
                          state={"redis_url": redis_server.url})
    one, two = router_factory(config), router_factory(config)
    made = claude(one).beta.files.upload(file=("r.txt", b"replicated", "text/plain"),
                                         betas=["files-api-2025-04-14"])
    assert [f.id for f in claude(two).beta.files.list()] == [made.id]
    assert claude(two).beta.files.download(made.id).read() == b"replicated"
    claude(two).beta.files.delete(made.id)
    with pytest.raises(anthropic.NotFoundError):
        claude(one).beta.files.retrieve_metadata(made.id)


def test_an_expiring_upload_says_when(files_router: RouterThread) -> None:
    resp = httpx.post(files_router.anthropic_url + "/v1/files",
                      files={"file": ("e.txt", b"soon")}, data={"expires_in_seconds": "3600"})
    body = resp.json()
    created = datetime.fromisoformat(body["created_at"].replace("Z", "+00:00"))
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert round((expires - created).total_seconds()) == 3600


def test_list_by_ids(files_router: RouterThread) -> None:
    client = claude(files_router)
    made = [client.beta.files.upload(file=(f"{i}.txt", b"x", "text/plain")) for i in range(3)]
    resp = httpx.get(files_router.anthropic_url + "/v1/files",
                     params=[("ids", made[0].id), ("ids", made[2].id), ("ids", "file_nope")])
    assert [f["id"] for f in resp.json()["data"]] == [made[2].id, made[0].id]
    assert resp.json()["has_more"] is False and resp.json()["next_page"] is None


def test_a_gateway_sign_in_owns_files_as_its_key(scripted: ScriptedBackend,
                                                 router_factory: Callable[..., RouterThread]
                                                 ) -> None:
    from tests.gateway.helpers import ALICE_KEY, BOB_KEY, gateway_config, sign_in

    router = router_factory(gateway_config(scripted))
    token = sign_in(router.anthropic_url)["access_token"]
    signed_in = anthropic.Anthropic(base_url=router.anthropic_url, auth_token=token,
                                    max_retries=0)
    made = signed_in.beta.files.upload(file=("g.txt", b"via the gateway", "text/plain"))
    # the token acts as alice's key: alice sees the file, bob does not
    assert [f.id for f in claude(router, ALICE_KEY).beta.files.list()] == [made.id]
    assert claude(router, BOB_KEY).beta.files.list().data == []
    with pytest.raises(anthropic.NotFoundError):
        claude(router, BOB_KEY).beta.files.retrieve_metadata(made.id)
    assert signed_in.beta.files.download(made.id).read() == b"via the gateway"
