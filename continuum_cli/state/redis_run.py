'''RUN: the Lua script behind every admission and settlement in Redis (redis_limits.py).

One script settles what earlier requests left to add (output tokens, budget amounts, released
leases, ledger records) and then admits the next request, all atomically: one round trip per
request. ARGV (all strings): key prefix, usage stream, now, deadline (`dl`), ledger retention
(ms), then how many additions, releases, records and checks follow, then six words per
addition (kind, limit, span, amount, member, name), two per release (name, member), one per
record (its JSON) and six per check. The script builds its key names from these rather than
taking them as KEYS (Redis Cluster needs every key in KEYS; `state.redis_url` is one server).
Amounts and `now` travel as strings so that the script sees exactly what the router
computed.

What a call costs Redis is a few microseconds of set-up, then about 1-3 us per `redis.call`
and per `string.format` on this project's test machine; decoding a JSON document (an earlier
design) cost 15 us and returning a table of 26 strings 12 us. So:
* The arguments are plain words, and the reply is one string of numbers joined by spaces.
* A window (counters.py) is one hash, `<prefix>w:<name>`: field `<second>` =
  "<amount> <newest addition>" for each one-second bucket, and its running total: `u` = the
  sum of the buckets from second `o` on (older ones are deleted), `n` = the newest addition,
  `x` = when the hash expires (ms, pushed a whole span ahead at most once a span). A check is
  one HMGET of those and of the three buckets it may touch (this second's, and the two at the
  window's far edge); an addition is one HSET.
* A settlement's additions are folded into the check of the same key when the admission has
  one: its window or counter is then read and written once.
* A counter that exists is written with SET KEEPTTL, a new one with SET PXAT (its period's
  end).
`dl`: the caller's deadline in Redis time (ms; 0: none) -- past it the script does nothing and
returns "late <server ms>" (server_clock.py). Otherwise it returns "<admitted> <server ms>",
then "<ok> <used> <free_at> <newest>" per check (numbers as Lua prints them: 14 significant
digits).
'''

RUN = """
local clock = redis.call('TIME')
local server_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local dl = tonumber(ARGV[4])
if dl > 0 and server_ms > dl then return {'late', server_ms} end
local P = ARGV[1]
local now_s = ARGV[3]
local now = tonumber(now_s)
local now_ms = math.floor(now * 1000)
local second = math.floor(now)
local n_adds, n_rel, n_rec, n_checks = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
-- the i-th group of six words from ARGV[at]: {kind, limit, span, amount, member, name}
local function item(at, i)
  local j = at + 6 * (i - 1)
  return {ARGV[j], tonumber(ARGV[j + 1]), tonumber(ARGV[j + 2]), ARGV[j + 3], ARGV[j + 4], ARGV[j + 5]}
end
local at_rel = 10 + 6 * n_adds
local at_rec = at_rel + 2 * n_rel
local at_checks = at_rec + n_rec
local function is_window(kind) return kind == 'count' or kind == 'sum' end
local function key_of(c) if is_window(c[1]) then return P .. 'w:' .. c[6] end return P .. c[6] end

-- bucket b: field b holds its amount, field -b its newest addition
local function window_read(key, span)
  local gone = math.floor(now - span) - 1  -- this bucket and older ones have wholly left
  local edge = gone + 1                      -- left too once its newest addition has
  local m = redis.call('HMGET', key, 'u', 'o', 'n', 'x', second, -second, edge, -edge, gone)
  local w = {key = key, span = span, used = tonumber(m[1]) or 0, first = tonumber(m[2]),
             newest = tonumber(m[3]) or 0, expiry = tonumber(m[4]) or 0, b = second,
             amount = tonumber(m[5]) or 0, last = tonumber(m[6]) or 0, changed = false}
  if not m[1] or w.newest <= now - span then  -- new, or everything in it has left
    if m[1] then redis.call('DEL', key) end
    w.used, w.first, w.newest, w.expiry, w.amount, w.last = 0, second, 0, 0, 0, 0
    return w
  end
  local last = gone
  if m[7] and (tonumber(m[8]) or 0) <= now - span then last = edge end
  if w.first > last then return w end
  local fields, values = {}, {}
  if w.first >= gone then  -- the usual case: what left was read above
    for b = w.first, last do
      fields[#fields + 1] = b
      fields[#fields + 1] = -b
      if b == gone then values[#values + 1] = m[9] else values[#values + 1] = m[7] end
    end
  elseif w.first > gone - 4 * span then
    local asked = {}
    for b = w.first, last do
      asked[#asked + 1] = b
      fields[#fields + 1] = b
      fields[#fields + 1] = -b
    end
    values = redis.call('HMGET', key, unpack(asked))
  else  -- long unswept (late output of a long stream): count the buckets again
    local all = redis.call('HGETALL', key)
    w.used = 0
    for j = 1, #all, 2 do
      local b = tonumber(all[j])
      if b and b > last then w.used = w.used + tonumber(all[j + 1])
      elseif b and (b > 0 or -b <= last) then fields[#fields + 1] = b end
    end
  end
  for j = 1, #values do
    if values[j] then w.used = w.used - tonumber(values[j]) end
  end
  if #fields > 0 then redis.call('HDEL', key, unpack(fields)) end
  w.used, w.first, w.changed = math.max(0, w.used), last + 1, true
  return w
end
local function window_put(w, kind, amount)
  if kind == 'count' then amount = 1 end
  if w.b < w.first then  -- a replica whose clock is behind: never below `o`
    local m = redis.call('HMGET', w.key, w.first, -w.first)
    w.b, w.amount, w.last = w.first, tonumber(m[1]) or 0, tonumber(m[2]) or 0
  end
  w.amount = w.amount + amount
  if now > w.last then w.last = now end
  w.used = w.used + amount
  if now > w.newest then w.newest = now end
  w.put, w.changed = true, true
end
local function window_write(w)
  local args = {'u', w.used, 'o', w.first, 'n', w.newest}
  if w.put then
    args[7], args[8], args[9], args[10] = w.b, w.amount, -w.b, w.last
  end
  local span_ms = math.ceil(w.span * 1000)
  local renew = w.put and w.expiry < now_ms + span_ms + 1000
  if renew then
    w.expiry = now_ms + 2 * span_ms + 1000
    args[#args + 1] = 'x'
    args[#args + 1] = w.expiry
  end
  redis.call('HSET', w.key, unpack(args))
  if renew then redis.call('PEXPIRE', w.key, w.expiry - now_ms) end
end
-- a counter: value (nil: none yet); written with its period's end as expiry
local function counter_write(key, value, existed, span)
  if existed then redis.call('SET', key, value, 'KEEPTTL')
  else redis.call('SET', key, value, 'PXAT', math.ceil(span * 1000)) end
end

-- the settlement: additions by key (folded into a check of the same key below), releases,
-- ledger records
local pending, order = {}, {}
for i = 1, n_adds do
  local c = item(10, i)
  local amount = tonumber(c[4])
  if amount > 0 and c[1] ~= 'lease' then
    local key = key_of(c)
    local p = pending[key]
    if not p then
      p = {kind = c[1], span = c[3], amount = 0}
      pending[key] = p
      order[#order + 1] = key
    end
    if c[1] == 'count' then p.amount = p.amount + 1 else p.amount = p.amount + amount end
  end
end
for i = 0, n_rel - 1 do
  redis.call('ZREM', P .. ARGV[at_rel + 2 * i], ARGV[at_rel + 2 * i + 1])
end
if n_rec > 0 then
  local minid = math.floor(now * 1000 - tonumber(ARGV[5]))
  for i = 0, n_rec - 1 do
    redis.call('XADD', ARGV[2], 'MINID', '~', minid, '*', 'r', ARGV[at_rec + i])
  end
end

-- the checks
local checks = {}
for i = 1, n_checks do checks[i] = item(at_checks, i) end
local out, all_ok, seen = {}, 1, {}
local function need(amount) if amount < 1 then return 1 end return amount end
local function free_at_window(w, excess)
  local all, amounts, lasts, page = redis.call('HGETALL', w.key), {}, {}, {}
  for j = 1, #all, 2 do
    local b = tonumber(all[j])
    if b and b > 0 and b >= w.first then amounts[b] = tonumber(all[j + 1])
    elseif b and b < 0 then lasts[-b] = tonumber(all[j + 1]) end
  end
  for b, a in pairs(amounts) do
    local t = lasts[b] or now
    if t > now - w.span then page[#page + 1] = {b, a, t} end
  end
  table.sort(page, function(x, y) return x[1] < y[1] end)
  local freed = 0
  for _, e in ipairs(page) do
    freed = freed + e[2]
    if freed >= excess then return e[3] + w.span end
  end
  return now + w.span
end
-- a number for the reply: an integer (Redis returns Lua numbers truncated), or its text
local function word(x)
  if x == math.floor(x) then return x end
  return tostring(x)
end
for i, c in ipairs(checks) do
  local kind, limit, span, amount, key = c[1], c[2], c[3], tonumber(c[4]), key_of(c)
  local ok, used, free_at, newest = 1, 0, now, 0
  local p = pending[key]
  pending[key] = nil
  if is_window(kind) then
    local w = window_read(key, span)
    if p then window_put(w, p.kind, p.amount) end
    seen[i] = w
    used, newest = w.used, w.newest
    local excess = used + need(amount) - limit
    if excess > 0 then
      ok = 0
      if need(amount) > limit then free_at = -0.001 else free_at = free_at_window(w, excess) end
    end
  elseif kind == 'lease' then
    used = redis.call('ZCOUNT', key, '(' .. now_s, '+inf')
    if used >= limit then
      ok = 0
      redis.call('ZREMRANGEBYSCORE', key, '-inf', now_s)  -- leases of replicas that died
      free_at = tonumber(redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2] or now_s)
    end
  else
    local value = redis.call('GET', key)
    used = tonumber(value or '0')
    seen[i] = {existed = value ~= false, changed = p ~= nil}
    if p then used = used + p.amount end
    seen[i].value = used
    if used >= limit then ok = 0 free_at = span end
  end
  if ok == 0 then all_ok = 0 free_at = math.floor(free_at * 1000) else free_at = 0 end
  out[#out + 1] = ok
  out[#out + 1] = word(used)
  out[#out + 1] = free_at
  out[#out + 1] = math.floor(newest * 1000)
end
for i, c in ipairs(checks) do
  local kind, span, amount, key = c[1], c[3], tonumber(c[4]), key_of(c)
  local s = seen[i]
  local add = all_ok == 1 and amount > 0
  if is_window(kind) then
    if add then window_put(s, kind, amount) end
    if s.changed then window_write(s) end
  elseif kind == 'lease' then
    if add then
      redis.call('ZADD', key, now + span, c[5])
      redis.call('PEXPIRE', key, math.ceil(span * 1000) + 1000)
    end
  elseif add or s.changed then
    counter_write(key, s.value + (add and amount or 0), s.existed, span)
  end
end
-- additions to keys no check read
for _, key in ipairs(order) do
  local p = pending[key]
  if p and is_window(p.kind) then
    local w = window_read(key, p.span)
    window_put(w, p.kind, p.amount)
    window_write(w)
  elseif p then
    local value = redis.call('GET', key)
    counter_write(key, tonumber(value or '0') + p.amount, value ~= false, p.span)
  end
end
table.insert(out, 1, server_ms)
table.insert(out, 1, all_ok)
return out
"""
