"""The limit counters and the usage ledger in Redis: one Lua script per operation, so a check
and its additions are one atomic step on the server, whichever replica sends it. The
arithmetic mirrors `counters.py` (`window_state`, `lease_state`, `counter_state`).

Keys: `continuum:lim:<name>` (a sorted set for windows -- member `<id>:<amount>`, score the
time -- and leases -- score the expiry; a string for counters); `continuum:usage`, a stream
whose entry ids are the record times.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from continuum_cli.state.counters import NEVER, Admission, Check, CheckState, Settlement

PREFIX = "continuum:lim:"
USAGE_STREAM = "continuum:usage"

# Lua helpers shared by both scripts. A window is a sorted set (member `<id>:<amount>`, score
# the time) plus `<key>:sum`, its running total.
_HELPERS = """
local function amount_of(kind, member)
  if kind == 'count' then return 1 end
  return tonumber(string.match(member, ':([%d%.e%+%-]+)$')) or 0
end
local function window_add(key, total, kind, now, span, amount, member)
  if kind == 'count' then amount = 1 end
  redis.call('ZADD', key, now, member .. ':' .. amount)
  redis.call('INCRBYFLOAT', total, amount)
  local ttl = math.ceil(span * 1000) + 1000
  redis.call('PEXPIRE', key, ttl)
  redis.call('PEXPIRE', total, ttl)
end
"""

# One script settles what earlier requests left to add (output tokens, budget amounts,
# released leases, ledger records) and then admits the next request, all atomically: one round
# trip per request. KEYS: two per add, one per release, the usage stream, two per check.
# ARGV[1]: one JSON document (decoded by Redis's built-in cjson) --
# {now, ret: retention ms, adds: [[kind, limit, span, amount, member]], rel: [member],
# rec: [record JSON], checks: [[kind, limit, span, amount, member]]}. One argument instead of
# five per check: the client encodes and sends a few arguments rather than dozens, which is
# most of what a call costs the router. Amounts and `now` travel as strings so that
# INCRBYFLOAT and window members see exactly what the router computed.
# Returns {admitted, then per check: ok, used, free_at, newest} as strings (Lua numbers
# returned to Redis are truncated to integers).
RUN = _HELPERS + """
local doc = cjson.decode(ARGV[1])
local now_s = doc.now
local now = tonumber(now_s)
local adds, rels, recs, checks = doc.adds, doc.rel, doc.rec, doc.checks
local n_add, n_rel = #adds, #rels
for i = 1, n_add do
  local key, aux, c = KEYS[2 * i - 1], KEYS[2 * i], adds[i]
  local kind, span, amount = c[1], c[3], tonumber(c[4])
  if amount > 0 then
    if kind == 'count' or kind == 'sum' then
      window_add(key, aux, kind, now_s, span, c[4], c[5])
    elseif kind == 'counter' then
      redis.call('INCRBYFLOAT', key, c[4])
      redis.call('PEXPIREAT', key, math.ceil(span * 1000))
    end
  end
end
for i = 1, n_rel do
  redis.call('ZREM', KEYS[2 * n_add + i], rels[i])
end
local stream = KEYS[2 * n_add + n_rel + 1]
if #recs > 0 then
  local minid = tostring(math.floor(now * 1000 - doc.ret))
  for i = 1, #recs do
    redis.call('XADD', stream, 'MINID', '~', minid, '*', 'r', recs[i])
  end
end
local k = 2 * n_add + n_rel + 1
local n_check = #checks
local out, all_ok = {}, 1
local function need(amount) if amount < 1 then return 1 end return amount end
for i = 1, n_check do
  local key, aux, c = KEYS[k + 2 * i - 1], KEYS[k + 2 * i], checks[i]
  local kind, limit, span, amount = c[1], c[2], c[3], tonumber(c[4])
  local ok, used, free_at, newest = 1, 0, now, 0
  if kind == 'count' or kind == 'sum' then
    local cutoff = string.format('%.17g', now - span)
    local gone = redis.call('ZRANGEBYSCORE', key, '-inf', cutoff)
    if #gone > 0 then
      local left = 0
      for j = 1, #gone do left = left + amount_of(kind, gone[j]) end
      redis.call('ZREMRANGEBYSCORE', key, '-inf', cutoff)
      redis.call('INCRBYFLOAT', aux, -left)
    end
    used = math.max(0, tonumber(redis.call('GET', aux) or '0'))
    local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
    if #last > 0 then newest = tonumber(last[2]) end
    local excess = used + need(amount) - limit
    if excess > 0 then
      ok = 0
      if need(amount) > limit then free_at = -1 else
        free_at = now + span
        local page = redis.call('ZRANGE', key, 0, 999, 'WITHSCORES')
        local freed = 0
        for j = 1, #page, 2 do
          freed = freed + amount_of(kind, page[j])
          if freed >= excess then free_at = tonumber(page[j + 1]) + span break end
        end
      end
    end
  elseif kind == 'lease' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    used = redis.call('ZCARD', key)
    if used >= limit then
      ok = 0
      free_at = tonumber(redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2])
    end
  else
    used = tonumber(redis.call('GET', key) or '0')
    if used >= limit then ok = 0 free_at = span end
  end
  if ok == 0 then all_ok = 0 end
  out[#out + 1] = tostring(ok)
  out[#out + 1] = string.format('%.17g', used)
  out[#out + 1] = string.format('%.17g', free_at)
  out[#out + 1] = string.format('%.17g', newest)
end
if all_ok == 1 then
  for i = 1, n_check do
    local key, aux, c = KEYS[k + 2 * i - 1], KEYS[k + 2 * i], checks[i]
    local kind, span, amount = c[1], c[3], tonumber(c[4])
    if amount > 0 then
      if kind == 'count' or kind == 'sum' then
        window_add(key, aux, kind, now_s, span, c[4], c[5])
      elseif kind == 'lease' then
        redis.call('ZADD', key, string.format('%.17g', now + span), c[5])
        redis.call('PEXPIRE', key, math.ceil(span * 1000) + 1000)
      else
        redis.call('INCRBYFLOAT', key, c[4])
        redis.call('PEXPIREAT', key, math.ceil(span * 1000))
      end
    end
  end
end
table.insert(out, 1, tostring(all_ok))
return out
"""


def check_keys(checks: Sequence[Check]) -> list[str]:
    keys: list[str] = []
    for c in checks:
        keys += [PREFIX + c.key, PREFIX + c.key + ":sum"]
    return keys


def run_call(settlement: Settlement | None, checks: Sequence[Check], now: float,
             retention: float) -> tuple[list[str], list[str]]:
    """KEYS and ARGV of the RUN script: settle `settlement`, then admit `checks`."""
    s = settlement or Settlement()
    keys = check_keys(s.adds) + [PREFIX + k for k, _ in s.releases] + [USAGE_STREAM]
    keys += check_keys(checks)
    doc = {"now": repr(now), "ret": math.ceil(retention * 1000), "adds": check_args(s.adds),
           "rel": [m for _, m in s.releases],
           "rec": [json.dumps(r, separators=(",", ":")) for r in s.records],
           "checks": check_args(checks)}
    return keys, [json.dumps(doc, separators=(",", ":"))]


def check_args(checks: Sequence[Check]) -> list[list[Any]]:
    return [[c.kind, float(c.limit), float(c.span), _num(c.amount), c.member] for c in checks]


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def parse_admission(reply: Sequence[Any]) -> Admission:
    states = []
    for i in range(1, len(reply), 4):
        free_at = float(reply[i + 2])
        states.append(CheckState(reply[i] == "1", float(reply[i + 1]),
                                 NEVER if free_at < 0 else free_at, float(reply[i + 3])))
    return Admission(reply[0] == "1", tuple(states))


def stream_id(ts: float) -> str:
    return str(max(0, int(ts * 1000)))
