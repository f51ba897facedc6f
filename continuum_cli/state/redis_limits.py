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

# One script settles what earlier requests left to add (output tokens, budget amounts,
# released leases, ledger records) and then admits the next request, all atomically: one round
# trip per request. ARGV[1] is one JSON document (decoded by Redis's built-in cjson):
# {p: key prefix, u: usage stream, now, ret: retention ms,
#  adds: [[kind, limit, span, amount, member, name]], rel: [[name, member]],
#  rec: [record JSON], checks: [[kind, limit, span, amount, member, name]]}.
# The script builds its key names from the document rather than taking them as KEYS: the
# client then encodes and sends one argument instead of dozens, which is most of what a call
# costs the router. (Redis Cluster needs every key in KEYS; `state.redis_url` is one server.)
# Amounts and `now` travel as strings so that window members and INCRBYFLOAT see exactly what
# the router computed.
#
# A window is a sorted set (member `<id>:<amount>`, score the time) and its total, a string
# `<key>:sum` = "<used> <newest> <expiry ms>": the running total, the newest entry's time and
# when the set expires. Keeping the newest time and the expiry there saves a ZRANGE per check
# and a PEXPIRE per add (the set's expiry is pushed a whole span ahead, at most once a span):
# the script's cost is the number of redis.call it makes.
# `dl`: the caller's deadline in Redis time (ms; 0: none) -- past it the script does nothing
# and returns {"late", server ms}. Otherwise it returns {admitted, server ms, then per check:
# ok, used, free_at, newest} as strings (Lua numbers returned to Redis are truncated to
# integers).
RUN = """
local doc = cjson.decode(ARGV[1])
-- past the caller's deadline (Redis time) the router has given up on this call: do nothing
-- (server_clock.py); every reply carries the server's time for the router's estimate
local clock = redis.call('TIME')
local server_ms = string.format('%.0f', tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000))
if doc.dl > 0 and tonumber(server_ms) > doc.dl then return {'late', server_ms} end
local P = doc.p
local now_s = doc.now
local now = tonumber(now_s)
local now_ms = math.floor(now * 1000)
local function fmt(x) return string.format('%.17g', x) end

local function amount_of(kind, member)
  if kind == 'count' then return 1 end
  return tonumber(string.match(member, ':([%d%.e%+%-]+)$')) or 0
end
local function read_total(aux)
  local v = redis.call('GET', aux)
  if not v then return 0, 0, 0 end
  local u, n, x = string.match(v, '^(%S+) (%S+) (%S+)$')
  if not u then return tonumber(v) or 0, 0, 0 end
  return tonumber(u), tonumber(n), tonumber(x)
end
local function write_total(aux, used, newest, expiry)
  redis.call('SET', aux, fmt(used) .. ' ' .. fmt(newest) .. ' ' .. expiry,
             'PX', math.max(1, expiry - now_ms))
end
local function window_add(key, kind, span, amount_s, member, used, newest, expiry)
  local amount = 1
  if kind ~= 'count' then amount = tonumber(amount_s) end
  redis.call('ZADD', key, now_s, member .. ':' .. amount)
  local span_ms = math.ceil(span * 1000)
  if expiry < now_ms + span_ms + 1000 then
    expiry = now_ms + 2 * span_ms + 1000
    redis.call('PEXPIRE', key, expiry - now_ms)
  end
  if now > newest then newest = now end
  write_total(key .. ':sum', used + amount, newest, expiry)
end
local function counter_add(key, amount_s, span, existed)
  local value = tonumber(redis.call('INCRBYFLOAT', key, amount_s))
  local amount = tonumber(amount_s)
  -- a new counter gets the period's end as its expiry (a second time is harmless)
  if not existed or math.abs(value - amount) <= 1e-9 * math.abs(amount) then
    redis.call('PEXPIREAT', key, math.ceil(span * 1000))
  end
end

for _, c in ipairs(doc.adds) do
  local kind, span, amount, key = c[1], c[3], tonumber(c[4]), P .. c[6]
  if amount > 0 then
    if kind == 'count' or kind == 'sum' then
      local used, newest, expiry = read_total(key .. ':sum')
      window_add(key, kind, span, c[4], c[5], used, newest, expiry)
    elseif kind == 'counter' then
      counter_add(key, c[4], span, true)
    end
  end
end
for _, r in ipairs(doc.rel) do
  redis.call('ZREM', P .. r[1], r[2])
end
if #doc.rec > 0 then
  local minid = tostring(math.floor(now * 1000 - doc.ret))
  for _, rec in ipairs(doc.rec) do
    redis.call('XADD', doc.u, 'MINID', '~', minid, '*', 'r', rec)
  end
end

local checks = doc.checks
local out, all_ok, seen = {}, 1, {}
local function need(amount) if amount < 1 then return 1 end return amount end
for i, c in ipairs(checks) do
  local kind, limit, span, amount, key = c[1], c[2], c[3], tonumber(c[4]), P .. c[6]
  local ok, used, free_at, newest = 1, 0, now, 0
  if kind == 'count' or kind == 'sum' then
    local expiry
    used, newest, expiry = read_total(key .. ':sum')
    local cutoff = now - span
    local gone = redis.call('ZRANGEBYSCORE', key, '-inf', fmt(cutoff))
    if #gone > 0 then
      for j = 1, #gone do used = used - amount_of(kind, gone[j]) end
      redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt(cutoff))
      used = math.max(0, used)
      if newest <= cutoff then newest = 0 end
      write_total(key .. ':sum', used, newest, expiry)
    end
    if newest <= cutoff then newest = 0 end
    seen[i] = {used, newest, expiry}
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
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now_s)
    used = redis.call('ZCARD', key)
    if used >= limit then
      ok = 0
      free_at = tonumber(redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2])
    end
  else
    local value = redis.call('GET', key)
    seen[i] = value ~= false
    used = tonumber(value or '0')
    if used >= limit then ok = 0 free_at = span end
  end
  if ok == 0 then all_ok = 0 end
  out[#out + 1] = tostring(ok)
  out[#out + 1] = fmt(used)
  out[#out + 1] = fmt(free_at)
  out[#out + 1] = fmt(newest)
end
if all_ok == 1 then
  for i, c in ipairs(checks) do
    local kind, span, amount, key = c[1], c[3], tonumber(c[4]), P .. c[6]
    if amount > 0 then
      if kind == 'count' or kind == 'sum' then
        local t = seen[i]
        window_add(key, kind, span, c[4], c[5], t[1], t[2], t[3])
      elseif kind == 'lease' then
        redis.call('ZADD', key, fmt(now + span), c[5])
        redis.call('PEXPIRE', key, math.ceil(span * 1000) + 1000)
      else
        counter_add(key, c[4], span, seen[i])
      end
    end
  end
end
table.insert(out, 1, server_ms)
table.insert(out, 1, tostring(all_ok))
return out
"""


def run_call(settlement: Settlement | None, checks: Sequence[Check], now: float,
             retention: float, deadline_ms: int = 0) -> tuple[list[str], list[str]]:
    """KEYS (none: see RUN) and ARGV of the RUN script: settle `settlement`, then admit
    `checks`, unless Redis runs it after `deadline_ms` (its own clock; 0: no deadline)."""
    s = settlement or Settlement()
    doc = {"p": PREFIX, "u": USAGE_STREAM, "now": repr(now), "dl": deadline_ms,
           "ret": math.ceil(retention * 1000), "adds": check_args(s.adds),
           "rel": [[k, m] for k, m in s.releases],
           "rec": [json.dumps(r, separators=(",", ":")) for r in s.records],
           "checks": check_args(checks)}
    return [], [json.dumps(doc, separators=(",", ":"))]


def check_args(checks: Sequence[Check]) -> list[list[Any]]:
    return [[c.kind, float(c.limit), float(c.span), _num(c.amount), c.member, c.key]
            for c in checks]


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def server_ms(reply: Sequence[Any]) -> float:
    """The server's time in a RUN reply (ms)."""
    return float(reply[1])


def ran_late(reply: Sequence[Any]) -> bool:
    """Redis reached the call after its deadline and did nothing."""
    return reply[0] == "late"


def parse_admission(reply: Sequence[Any]) -> Admission:
    states = []
    for i in range(2, len(reply), 4):
        free_at = float(reply[i + 2])
        states.append(CheckState(reply[i] == "1", float(reply[i + 1]),
                                 NEVER if free_at < 0 else free_at, float(reply[i + 3])))
    return Admission(reply[0] == "1", tuple(states))


def stream_id(ts: float) -> str:
    return str(max(0, int(ts * 1000)))
