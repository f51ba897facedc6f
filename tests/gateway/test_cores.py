"""The gateway's pure cores, table-driven: codes, checksum, ETag matching, the device grant's
state machine, CSRF tokens, base URLs."""

from __future__ import annotations

import hashlib
import json

import pytest

from continuum_cli.errors import InvalidRequest, OAuthError, RequestTooLarge, envelope
from continuum_cli.gateway import checksum, codes, csrf, device, guard, urls


def test_user_codes_use_the_base20_alphabet_in_two_groups() -> None:
    seen = {codes.new_user_code() for _ in range(200)}
    assert len(seen) == 200
    for code in seen:
        first, second = code.split("-")
        assert len(first) == len(second) == 4
        assert set(first + second) <= set(codes.USER_CODE_ALPHABET)
    assert len(codes.USER_CODE_ALPHABET) == 20 and not set("AEIOUY01") & set(
        codes.USER_CODE_ALPHABET)


def test_device_codes_carry_at_least_256_bits() -> None:
    code = codes.new_device_code()
    assert len(code) * 6 >= 256 and code != codes.new_device_code()


@pytest.mark.parametrize("typed,expected", [
    pytest.param("WDJB-MJHT", "WDJB-MJHT", id="as_shown"),
    pytest.param("wdjb-mjht", "WDJB-MJHT", id="lower_case"),
    pytest.param(" wdjb mjht ", "WDJB-MJHT", id="spaces"),
    pytest.param("WDJBMJHT", "WDJB-MJHT", id="no_dash"),
    pytest.param("WDJB-MJH", None, id="too_short"),
    pytest.param("WDJB-MJHTX", None, id="too_long"),
    pytest.param("WDJA-MJHT", None, id="vowel_not_in_alphabet"),
    pytest.param("", None, id="empty"),
])
def test_normalize_user_code(typed: str, expected: str | None) -> None:
    assert codes.normalize_user_code(typed) == expected


def test_tokens_are_prefixed_random_and_stored_as_sha256() -> None:
    access, refresh = codes.new_access_token(), codes.new_refresh_token()
    assert codes.is_gateway_token(access) and codes.is_gateway_token(refresh)
    assert not codes.is_gateway_token("sk-some-api-key")
    assert codes.digest(access) == hashlib.sha256(access.encode()).hexdigest()


@pytest.mark.parametrize("settings,canonical", [
    pytest.param({}, "{}", id="empty"),
    pytest.param({"b": 1, "a": {"d": [1, {"z": 0, "y": 1}], "c": "x"}},
                 '{"a":{"c":"x","d":[1,{"y":1,"z":0}]},"b":1}', id="sorted_at_every_level"),
    pytest.param({"env": {"NAME": "café ✓"}}, '{"env":{"NAME":"café ✓"}}',
                 id="non_ascii_raw"),
    pytest.param({"n": 1.0, "m": 0.5}, '{"m":0.5,"n":1}', id="integral_float_as_js"),
    pytest.param({"q": 'say "hi"\n'}, '{"q":"say \\"hi\\"\\n"}', id="escapes"),
])
def test_checksum_hashes_javascript_json_of_sorted_keys(settings: dict, canonical: str) -> None:
    assert checksum.canonical_json(settings) == canonical
    expected = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    assert checksum.settings_checksum(settings) == expected
    assert json.loads(canonical) == json.loads(json.dumps(settings))


@pytest.mark.parametrize("header,match", [
    pytest.param(None, False, id="absent"),
    pytest.param("", False, id="empty"),
    pytest.param('"sha256:abc"', True, id="quoted"),
    pytest.param("sha256:abc", True, id="unquoted"),
    pytest.param('W/"sha256:abc"', True, id="weak"),
    pytest.param('"sha256:old", "sha256:abc"', True, id="list"),
    pytest.param('"sha256:old"', False, id="other"),
    pytest.param("*", False, id="star_answers_as_without_header"),
])
def test_if_none_match(header: str | None, match: bool) -> None:
    assert checksum.not_modified(header, "sha256:abc") is match


def test_policy_uuid_is_stable_per_checksum() -> None:
    assert checksum.policy_uuid("sha256:a") == checksum.policy_uuid("sha256:a")
    assert checksum.policy_uuid("sha256:a") != checksum.policy_uuid("sha256:b")


def _grant(**changes: object) -> dict:
    return {**device.new_grant("BCDF-GHJK", now=100.0, ttl=600, interval=5), **changes}


@pytest.mark.parametrize("grant,now,outcome", [
    pytest.param(None, 100.0, "invalid_grant", id="unknown"),
    pytest.param(_grant(), 105.0, "authorization_pending", id="first_poll"),
    pytest.param(_grant(last_poll=100.0), 106.0, "authorization_pending", id="on_time"),
    pytest.param(_grant(last_poll=100.0), 104.5, "authorization_pending", id="within_jitter"),
    pytest.param(_grant(last_poll=100.0), 101.0, "slow_down", id="too_fast"),
    pytest.param(_grant(), 700.0, "expired_token", id="expired"),
    pytest.param(_grant(status="approved"), 700.0, "expired_token", id="approved_but_expired"),
    pytest.param(_grant(status="denied"), 105.0, "access_denied", id="denied"),
    pytest.param(_grant(status="approved", key_name="a"), 105.0, "approved", id="approved"),
])
def test_poll_outcomes(grant: dict | None, now: float, outcome: str) -> None:
    assert device.poll(grant, now).outcome == outcome


def test_slow_down_adds_five_seconds_for_every_later_poll() -> None:
    result = device.poll(_grant(last_poll=100.0), 101.0)
    assert result.grant is not None and result.grant["interval"] == 10
    assert device.poll(result.grant, 107.0).outcome == "slow_down"  # 6s < 10s
    assert device.poll(result.grant, 110.0).outcome == "authorization_pending"


@pytest.mark.parametrize("grant,now,approve,decision", [
    pytest.param(_grant(), 105.0, True, "approved", id="approve"),
    pytest.param(_grant(), 105.0, False, "denied", id="deny"),
    pytest.param(_grant(), 800.0, True, "expired", id="expired"),
    pytest.param(_grant(status="approved"), 105.0, True, "already_decided", id="twice"),
])
def test_decide(grant: dict, now: float, approve: bool, decision: str) -> None:
    outcome, updated = device.decide(grant, now, approve, "alice", "page")
    assert outcome == decision
    if decision == "approved":
        assert updated is not None and updated["key_name"] == "alice"
        assert device.poll(updated, now + 5).outcome == "approved"
    elif decision == "denied":
        assert updated is not None and device.poll(updated, now + 5).outcome == "access_denied"
    else:
        assert updated is None


def test_csrf_tokens() -> None:
    secret, other = b"s" * 32, b"o" * 32
    token = csrf.issue(secret)
    assert csrf.valid(secret, token, token)
    assert not csrf.valid(secret, token, csrf.issue(secret))  # cookie and field differ
    assert not csrf.valid(other, token, token)  # signed with another secret
    assert not csrf.valid(secret, None, token) and not csrf.valid(secret, token, None)
    forged = token.split(".")[0] + "." + "0" * 64
    assert not csrf.valid(secret, forged, forged)
    assert csrf.cookie_value(f"a=b; {csrf.COOKIE}={token}; c=d") == token
    assert "Secure" in csrf.set_cookie(token, True) and "Secure" not in csrf.set_cookie(
        token, False)


@pytest.mark.parametrize("headers,scheme,public,expected", [
    pytest.param({"host": "127.0.0.1:8000"}, "http", None, "http://127.0.0.1:8000/anthropic",
                 id="plain"),
    pytest.param({"host": "gw.example.com"}, "https", None, "https://gw.example.com/anthropic",
                 id="tls_listener"),
    pytest.param({"host": "10.0.0.5:8000", "x-forwarded-proto": "https",
                  "x-forwarded-host": "gw.example.com"}, "http", None,
                 "https://gw.example.com/anthropic", id="x_forwarded"),
    pytest.param({"host": "10.0.0.5:8000", "forwarded": 'for=1.2.3.4;proto=https;host="gw:8443"'},
                 "http", None, "https://gw:8443/anthropic", id="rfc7239"),
    pytest.param({"host": "[::1]:8000"}, "http", None, "http://[::1]:8000/anthropic",
                 id="ipv6"),
    pytest.param({"host": "x"}, "http", "https://gw.example.com/anthropic/",
                 "https://gw.example.com/anthropic", id="public_url_wins"),
])
def test_base_url(headers: dict, scheme: str, public: str | None, expected: str) -> None:
    assert urls.base_url(headers, scheme, public) == expected


@pytest.mark.parametrize("host", ["", "evil.com/path", "a b", "host:99999999"])
def test_base_url_rejects_bad_hosts(host: str) -> None:
    with pytest.raises(InvalidRequest):
        urls.base_url({"host": host}, "http")


def test_metadata_endpoints_share_the_origin() -> None:
    meta = urls.metadata("https://gw.example.com/anthropic")
    for name in ("device_authorization_endpoint", "token_endpoint", "revocation_endpoint"):
        assert meta[name].startswith("https://gw.example.com/anthropic/")
    assert "authorization_endpoint" not in meta


@pytest.mark.parametrize("exc,status,body", [
    pytest.param(OAuthError("invalid_grant", "gone", status=401), 401,
                 {"error": "invalid_grant", "error_description": "gone"}, id="oauth_error"),
    pytest.param(RequestTooLarge("too big"), 413,
                 {"error": "invalid_request", "error_description": "too big"}, id="api_error"),
    pytest.param(KeyError("secret"), 500,
                 {"error": "server_error",
                  "error_description": "internal error in continuum; see the router log"},
                 id="foreign"),
])
def test_oauth_envelope(exc: BaseException, status: int, body: dict) -> None:
    assert envelope(exc, "oauth") == (status, body)


@pytest.mark.parametrize("client,forwarded,proxies,expected", [
    pytest.param("1.2.3.4:5000", "9.9.9.9", (), "1.2.3.4", id="no_proxies_header_ignored"),
    pytest.param("1.2.3.4:5000", "9.9.9.9", ("10.0.0.0/8",), "1.2.3.4",
                 id="peer_not_trusted"),
    pytest.param("10.0.0.2:5000", "9.9.9.9", ("10.0.0.0/8",), "9.9.9.9", id="one_proxy"),
    pytest.param("10.0.0.2:5000", "6.6.6.6, 9.9.9.9, 10.0.0.3", ("10.0.0.0/8",), "9.9.9.9",
                 id="rightmost_untrusted_hop"),
    pytest.param("10.0.0.2:5000", "", ("10.0.0.0/8",), "10.0.0.2", id="no_header"),
    pytest.param("::1:5000", "", (), "::1", id="ipv6_peer"),
])
def test_client_ip(client: str, forwarded: str, proxies: tuple[str, ...],
                   expected: str) -> None:
    assert guard.client_ip(client, forwarded, proxies) == expected


@pytest.mark.parametrize("body,expected", [
    pytest.param(b"grant_type=a&device_code=b&x=1", {"grant_type": "a", "device_code": "b",
                                                     "x": "1"}, id="form"),
    pytest.param(b"a=1&a=2", {"a": "1"}, id="first_value"),
    pytest.param(b'{"grant_type": "a", "n": 5}', {"grant_type": "a"}, id="json_object"),
    pytest.param(b"{broken", {"{broken": ""}, id="broken_json_read_as_form"),
    pytest.param(b"\xff\xfe", {"\ufffd\ufffd": ""}, id="not_utf8"),
    pytest.param(b"", {}, id="empty"),
])
def test_parse_form(body: bytes, expected: dict) -> None:
    from continuum_cli.gateway.oauth import parse_form

    assert parse_form(body) == expected
