"""Gateway records in the state store: device grants, sessions, access and refresh tokens.

Namespaces (values are JSON dicts; every secret is stored only as its SHA-256):

    gw_device   digest(device_code) -> grant (device.py)      ttl: code lifetime + grace
    gw_user     user code           -> {"device": digest}      ttl: the same
    gw_session  session id          -> who signed in, when     ttl: refresh_ttl, renewed
    gw_access   digest(access)      -> {sid, key_name, expires} ttl: token_ttl
    gw_refresh  digest(refresh)     -> {sid, key_name, expires} ttl: refresh_ttl
    gw_rotated  digest(old refresh) -> {sid}                   ttl: refresh_ttl

A session is one sign-in; revoking it ends every token it issued. Single use comes from the
store's atomic `kv_take`, so two replicas never both redeem one code or one refresh token.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from continuum_cli.config.models import GatewaySettings
from continuum_cli.gateway import codes, device

log = logging.getLogger("continuum.gateway")
DEVICE, USER, SESSION, ACCESS, REFRESH, ROTATED = (
    "gw_device", "gw_user", "gw_session", "gw_access", "gw_refresh", "gw_rotated")
# an expired code is kept this much longer so that a late poll hears `expired_token`
# rather than `invalid_grant`
_EXPIRED_GRACE = 600.0
_USER_CODE_TRIES = 8


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_in: int
    key_name: str
    session: str


class GatewayStore:
    def __init__(self, store: Any, settings: GatewaySettings,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock

    async def start_device(self, meta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """A new device grant: (device_code, grant). The user code is unique among live ones."""
        ttl = self.settings.device_code_ttl
        for _ in range(_USER_CODE_TRIES):
            device_code, user_code = codes.new_device_code(), codes.new_user_code()
            digest = codes.digest(device_code)
            if await self.store.kv_put_new(USER, user_code, {"device": digest},
                                           ttl + _EXPIRED_GRACE):
                break
        else:  # 20^8 codes: only a store that answers "taken" to everything gets here
            raise RuntimeError("could not allocate a unique user code")
        # whole seconds: the interval the client is told is the one its polls are held to
        interval = math.ceil(self.settings.poll_interval)
        grant = device.new_grant(user_code, self.clock(), ttl, interval, meta)
        await self.store.kv_put(DEVICE, digest, grant, ttl + _EXPIRED_GRACE)
        return device_code, grant

    async def grant_for_user_code(self, user_code: str) -> tuple[str, dict[str, Any]] | None:
        link = await self.store.kv_get(USER, user_code)
        if link is None:
            return None
        grant = await self.store.kv_get(DEVICE, link["device"])
        return (link["device"], grant) if grant is not None else None

    async def decide(self, user_code: str, approve: bool, key_name: str | None,
                     via: str) -> str:
        """approved | denied | expired | already_decided | unknown."""
        found = await self.grant_for_user_code(user_code)
        if found is None:
            return "unknown"
        digest, grant = found
        decision, updated = device.decide(grant, self.clock(), approve, key_name, via)
        if updated is None:
            return decision
        ttl = max(grant["expires"] - self.clock(), 0) + _EXPIRED_GRACE
        if not await self.store.kv_update(DEVICE, digest, grant, updated, ttl):
            return "already_decided"  # another request decided it first
        return decision

    async def poll(self, device_code: str) -> tuple[str, Tokens | None]:
        digest = codes.digest(device_code)
        grant = await self.store.kv_get(DEVICE, digest)
        result = device.poll(grant, self.clock())
        if result.outcome == "approved":
            return await self._redeem(digest, grant or {})
        if result.outcome in ("access_denied", "expired_token"):
            await self.store.kv_delete(DEVICE, digest)
        elif result.grant is not None and grant is not None:
            ttl = max(grant["expires"] - self.clock(), 0) + _EXPIRED_GRACE
            await self.store.kv_update(DEVICE, digest, grant, result.grant, ttl)
        return result.outcome, None

    async def _redeem(self, digest: str, grant: dict[str, Any]) -> tuple[str, Tokens | None]:
        taken = await self.store.kv_take(DEVICE, digest)  # single use, across replicas
        if taken is None or taken.get("status") != "approved":
            return "invalid_grant", None
        await self.store.kv_delete(USER, taken["user_code"])
        session = codes.new_session_id()
        now = self.clock()
        record = {"key_name": taken["key_name"], "created": now, "refreshed": now,
                  "surface": taken.get("surface"), "client": taken.get("client"),
                  "user_agent": taken.get("user_agent"), "via": taken.get("approved_via")}
        await self.store.kv_put(SESSION, session, record, self.settings.refresh_ttl)
        return "approved", await self._issue(session, taken["key_name"])

    async def _issue(self, session: str, key_name: str) -> Tokens:
        now, s = self.clock(), self.settings
        access, refresh = codes.new_access_token(), codes.new_refresh_token()
        await self.store.kv_put(ACCESS, codes.digest(access),
                                {"sid": session, "key_name": key_name,
                                 "expires": now + s.token_ttl}, s.token_ttl)
        await self.store.kv_put(REFRESH, codes.digest(refresh),
                                {"sid": session, "key_name": key_name,
                                 "expires": now + s.refresh_ttl}, s.refresh_ttl)
        return Tokens(access, refresh, int(s.token_ttl), key_name, session)

    async def refresh(self, refresh_token: str) -> Tokens | None:
        """A new token pair for a live refresh token (rotated: the old one is spent), or None.

        Presenting a refresh token that was already rotated ends the whole session (OAuth 2.0
        Security BCP, RFC 9700 §4.14.2: reuse means it was copied)."""
        digest = codes.digest(refresh_token)
        record = await self.store.kv_take(REFRESH, digest)
        if record is None:
            reused = await self.store.kv_get(ROTATED, digest)
            if reused is not None:
                log.warning("gateway: a rotated refresh token was presented again; ending "
                            "session %s", reused["sid"])
                await self.revoke_session(reused["sid"])
            return None
        session = await self.store.kv_get(SESSION, record["sid"])
        if session is None:
            return None
        await self.store.kv_put(ROTATED, digest, {"sid": record["sid"]},
                                self.settings.refresh_ttl)
        updated = {**session, "refreshed": self.clock()}
        await self.store.kv_put(SESSION, record["sid"], updated, self.settings.refresh_ttl)
        return await self._issue(record["sid"], record["key_name"])

    async def bearer(self, token: str) -> dict[str, Any] | None:
        """The live access-token record ({sid, key_name, expires}) or None."""
        record = await self.store.kv_get(ACCESS, codes.digest(token))
        if record is None or record["expires"] <= self.clock():
            return None
        if await self.store.kv_get(SESSION, record["sid"]) is None:
            return None  # the session was revoked
        return record

    async def revoke(self, token: str) -> bool:
        """RFC 7009: revoking either token of a session ends the session (§2.1 allows it)."""
        digest = codes.digest(token)
        for ns in (ACCESS, REFRESH):
            record = await self.store.kv_get(ns, digest)
            if record is not None:
                return await self.revoke_session(record["sid"])
        return False

    async def revoke_session(self, session: str) -> bool:
        existed = await self.store.kv_delete(SESSION, session)
        for ns in (ACCESS, REFRESH):
            for key, record in await self.store.kv_list(ns):
                if record.get("sid") == session:
                    await self.store.kv_delete(ns, key)
        return existed

    async def sessions(self) -> list[tuple[str, dict[str, Any]]]:
        return await self.store.kv_list(SESSION)
