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
# ARGV: now, n_adds, n_releases, n_records, retention_ms, then 5 fields per add (kind, limit,
# span, amount, member), one member per release, the records (JSON), 5 fields per check.
# Returns {admitted, then per check: ok, used, free_at, newest} as strings (Lua numbers
# returned to Redis are truncated to integers).
RUN = _HELPERS + """
local now = tonumber(ARGV[1])
local n_add, n_rel, n_rec = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
for i = 1, n_add do
  local key, aux, b = KEYS[2 * i - 1], KEYS[2 * i], 5 + (i - 1) * 5
  local kind, span, amount = ARGV[b + 1], tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
  if amount > 0 then
    if kind == 'count' or kind == 'sum' then
      window_add(key, aux, kind, ARGV[1], span, ARGV[b + 4], ARGV[b + 5])
    elseif kind == 'counter' then
      redis.call('INCRBYFLOAT', key, ARGV[b + 4])
      redis.call('PEXPIREAT', key, math.ceil(span * 1000))
    end
  end
end
local a = 5 + n_add * 5
for i = 1, n_rel do
  redis.call('ZREM', KEYS[2 * n_add + i], ARGV[a + i])
end
a = a + n_rel
local stream = KEYS[2 * n_add + n_rel + 1]
if n_rec > 0 then
  local minid = tostring(math.floor(now * 1000 - tonumber(ARGV[5])))
  for i = 1, n_rec do
    redis.call('XADD', stream, 'MINID', '~', minid, '*', 'r', ARGV[a + i])
  end
end
a = a + n_rec
local k = 2 * n_add + n_rel + 1
local n_check = (#KEYS - k) / 2
local out, all_ok = {}, 1
local function need(amount) if amount < 1 then return 1 end return amount end
for i = 1, n_check do
  local key, aux, b = KEYS[k + 2 * i - 1], KEYS[k + 2 * i], a + (i - 1) * 5
  local kind, limit, span = ARGV[b + 1], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  local amount = tonumber(ARGV[b + 4])
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
    local key, aux, b = KEYS[k + 2 * i - 1], KEYS[k + 2 * i], a + (i - 1) * 5
    local kind, span, amount = ARGV[b + 1], tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
    if amount > 0 then
      if kind == 'count' or kind == 'sum' then
        window_add(key, aux, kind, ARGV[1], span, ARGV[b + 4], ARGV[b + 5])
      elseif kind == 'lease' then
        redis.call('ZADD', key, string.format('%.17g', now + span), ARGV[b + 5])
        redis.call('PEXPIRE', key, math.ceil(span * 1000) + 1000)
      else
        redis.call('INCRBYFLOAT', key, ARGV[b + 4])
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
    records = [json.dumps(r, separators=(",", ":")) for r in s.records]
    args = [repr(now), str(len(s.adds)), str(len(s.releases)), str(len(records)),
            str(math.ceil(retention * 1000)), *check_args(s.adds),
            *(m for _, m in s.releases), *records, *check_args(checks)]
    return keys, args


def check_args(checks: Sequence[Check]) -> list[str]:
    args: list[str] = []
    for c in checks:
        args += [c.kind, repr(float(c.limit)), repr(float(c.span)), _num(c.amount), c.member]
    return args


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
