-- modelrouter shared counters, schema v1: admit one request against every scope, or none.
--
-- KEYS, three per scope (all of one request in one hash slot):
--   rate: a string "<rpm level> <µs> <tpm level> <µs>", both token buckets of the scope
--   spend: a hash for the budget period: spent, rsum (reserved in flight), r:<rid>
--   resv: a sorted set, reservation id -> ms after which it is dropped
-- ARGV: 1 reservation id, 2 estimated tokens, 3 estimated cost (nano-USD),
--   4 reservation lifetime (ms), 5 lifetime of a budget with no period end (s),
--   then one spec per scope "<rpm> <tpm> <budget nano-USD> <spend expires at, epoch s>"
--   ("-" = not limited; 0 = no period end), then, on a seeding call only, one seed
--   per scope (nano-USD spent this period, from the store; "-" = none).
-- Returns one of
--   {1, now_ms, req_limit, req_remaining, req_reset_ms, tok_limit, tok_remaining, tok_reset_ms}
--       admitted: the stricter scope's gauges after the take (-1: no scope limits it)
--   {0, now_ms, reason, scope, wait_ms, a, b, c, <the six gauges, now>}
--       refused, nothing taken; reason 1 rpm, 2 tpm (a = the bucket's level), or
--       3 budget (a, b, c = spent, reserved, budget; no gauges); scope is 1-based
--   {2, now_ms, scope...}  these scopes' spend is unknown: call again with seeds
-- The rules are the per-process limiter's (modelrouter/governance/limiter.py, budget.py):
-- a budget admits while spent + reserved < budget; a bucket has room for 1 request
-- (rpm) or the estimate, at most a full bucket (tpm); the longest wait is answered.
-- Redis's clock (TIME) is the only clock, so replicas' clocks never meet in a counter.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now_ms = math.floor(now / 1000)
local tokens = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local n = #KEYS / 3
local seeding = #ARGV > 5 + n
local PER_MIN = 60000000

local function refill(level, at, cap)
  if cap <= 0 then return 0 end
  local elapsed = now - at
  if elapsed > 0 then level = level + elapsed * cap / PER_MIN end
  if level > cap then level = cap end
  return level
end

local function until_full_ms(level, cap)
  if cap <= 0 then return 0 end
  return math.ceil((cap - level) * 60000 / cap)
end

-- read every scope; budgets first, whose refusal retrying will not change
local specs, spends, rates = {}, {}, {}
local missing = {}
for i = 1, n do
  local rpm, tpm, budget, at = string.match(ARGV[5 + i], '^(%S+) (%S+) (%S+) (%S+)$')
  local s = {rpm = tonumber(rpm), tpm = tonumber(tpm), budget = tonumber(budget), at = tonumber(at)}
  specs[i] = s
  if s.budget then
    local hk = KEYS[i * 3 - 1]
    local v = redis.call('HMGET', hk, 'spent', 'rsum')
    if v[1] then
      spends[i] = {tonumber(v[1]), tonumber(v[2] or '0')}
    elseif seeding and ARGV[5 + n + i] ~= '-' then
      -- the script is atomic: set-if-absent, whichever replica seeds first
      local at_s = s.at
      if at_s == 0 then at_s = math.floor(now / 1000000) + tonumber(ARGV[5]) end
      redis.call('HSET', hk, 'spent', ARGV[5 + n + i], 'rsum', 0)
      redis.call('EXPIREAT', hk, at_s)
      -- a member that never expires keeps the set (and its deadline) alive
      redis.call('ZADD', KEYS[i * 3], 'inf', '~')
      redis.call('EXPIREAT', KEYS[i * 3], at_s)
      spends[i] = {tonumber(ARGV[5 + n + i]), 0}
    else
      missing[#missing + 1] = i
    end
  end
end
if #missing > 0 then
  local out = {2, now_ms}
  for _, i in ipairs(missing) do out[#out + 1] = i end
  return out
end

for i = 1, n do
  local sp = spends[i]
  if sp and sp[1] + sp[2] >= specs[i].budget then
    -- drop reservations of requests that never settled (a replica died), then look again
    local hk, zk = KEYS[i * 3 - 1], KEYS[i * 3]
    local gone = redis.call('ZRANGEBYSCORE', zk, '-inf', now_ms, 'LIMIT', 0, 256)
    if #gone > 0 then
      local fields = {}
      for j, rid in ipairs(gone) do fields[j] = 'r:' .. rid end
      local amounts = redis.call('HMGET', hk, unpack(fields))
      for _, amt in ipairs(amounts) do
        if amt then sp[2] = sp[2] - tonumber(amt) end
      end
      redis.call('HDEL', hk, unpack(fields))
      redis.call('ZREM', zk, unpack(gone))
      redis.call('HSET', hk, 'rsum', string.format('%d', sp[2]))
    end
    if sp[1] + sp[2] >= specs[i].budget then
      return {0, now_ms, 3, i, 0, sp[1], sp[2], specs[i].budget, -1, -1, -1, -1, -1, -1}
    end
  end
end

-- every bucket must have room; the longest wait names the refusal
local function gauges()
  -- the stricter (least remaining) scope's limit, remaining and ms until full, per kind
  local best = {{-1, -1, -1, 0}, {-1, -1, -1, 0}}
  for i = 1, n do
    local s, rt = specs[i], rates[i]
    if rt then
      for k = 1, 2 do
        local cap = s.rpm
        if k == 2 then cap = s.tpm end
        if cap then
          local level = rt[k]
          if best[k][1] == -1 or level < best[k][4] then
            best[k] = {cap, math.floor(level), until_full_ms(level, cap), level}
          end
        end
      end
    end
  end
  return best
end

local worst = nil
for i = 1, n do
  local s = specs[i]
  if s.rpm or s.tpm then
    local v = redis.call('GET', KEYS[i * 3 - 2])
    local rl, rt, tl, tt = 0, 0, 0, 0
    if v then
      rl, rt, tl, tt = string.match(v, '^(%S+) (%S+) (%S+) (%S+)$')
      rl, rt, tl, tt = tonumber(rl), tonumber(rt), tonumber(tl), tonumber(tt)
    end
    -- an unlimited kind is stored as level 0 at time 0: full once it gets a limit
    local r, k = 0, 0
    if s.rpm then r = refill(rl, rt, s.rpm) end
    if s.tpm then k = refill(tl, tt, s.tpm) end
    rates[i] = {r, k}
    for kind = 1, 2 do
      local cap, level, need = s.rpm, r, 1
      if kind == 2 then cap, level, need = s.tpm, k, math.min(tokens, s.tpm or 0) end
      if cap and (cap <= 0 or level < need) then
        local w = 60000
        if cap > 0 then w = math.ceil((need - level) * 60000 / cap) end
        if worst == nil or w > worst[5] then
          worst = {0, now_ms, kind, i, w, math.floor(level), 0, 0}
        end
      end
    end
  end
end
if worst then
  local g = gauges()
  for k = 1, 2 do
    for j = 1, 3 do worst[#worst + 1] = g[k][j] end
  end
  return worst
end

-- admitted: take from every bucket, reserve the cost in every budget
for i = 1, n do
  local s, rt = specs[i], rates[i]
  if rt then
    local ttl = 0
    if s.rpm then
      rt[1] = rt[1] - 1
      ttl = math.max(ttl, until_full_ms(rt[1], s.rpm))
    end
    if s.tpm then
      rt[2] = rt[2] - tokens
      ttl = math.max(ttl, until_full_ms(rt[2], s.tpm))
    end
    local rstamp, tstamp = 0, 0
    if s.rpm then rstamp = now end
    if s.tpm then tstamp = now end
    redis.call('SET', KEYS[i * 3 - 2],
      string.format('%.6f %d %.6f %d', rt[1], rstamp, rt[2], tstamp), 'PX', ttl + 1000)
  end
  local sp = spends[i]
  if sp then
    redis.call('HSET', KEYS[i * 3 - 1], 'r:' .. ARGV[1], ARGV[3],
      'rsum', string.format('%d', sp[2] + cost))
    redis.call('ZADD', KEYS[i * 3], now_ms + tonumber(ARGV[4]), ARGV[1])
  end
end
local g = gauges()
return {1, now_ms, g[1][1], g[1][2], g[1][3], g[2][1], g[2][2], g[2][3]}
