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
--       admitted: the stricter scope's numbers (-1 where no scope limits that kind)
--   {0, now_ms, reason, scope, wait_ms, spent, reserved, budget}
--       refused, nothing taken: reason 1 rpm, 2 tpm, 3 budget; scope is 1-based
--   {2, now_ms, scope...}  these scopes' spend is unknown: call again with seeds
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
  if sp and sp[1] + sp[2] + cost > specs[i].budget then
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
    if sp[1] + sp[2] + cost > specs[i].budget then
      return {0, now_ms, 3, i, 0, sp[1], sp[2], specs[i].budget}
    end
  end
end

-- every bucket must have room; the longest wait names the refusal
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
    local r = {0, 0}
    if s.rpm then r = {refill(rl, rt, s.rpm), now} end
    local k = {0, 0}
    if s.tpm then k = {refill(tl, tt, s.tpm), now} end
    rates[i] = {r, k}
    if s.rpm and (r[1] < 1 or s.rpm <= 0) then
      local w = 60000
      if s.rpm > 0 then w = math.ceil((1 - r[1]) * 60000 / s.rpm) end
      if worst == nil or w > worst[5] then worst = {0, now_ms, 1, i, w, 0, 0, 0} end
    end
    if s.tpm then
      local need = math.min(tokens, s.tpm)
      if k[1] < need or s.tpm <= 0 then
        local w = 60000
        if s.tpm > 0 then w = math.ceil((need - k[1]) * 60000 / s.tpm) end
        if worst == nil or w > worst[5] then worst = {0, now_ms, 2, i, w, 0, 0, 0} end
      end
    end
  end
end
if worst then return worst end

-- admitted: take from every bucket, reserve the cost in every budget
local best = {{-1, -1, -1}, {-1, -1, -1}}
for i = 1, n do
  local s, rt = specs[i], rates[i]
  if rt then
    local ttl = 0
    if s.rpm then
      rt[1][1] = rt[1][1] - 1
      local full = until_full_ms(rt[1][1], s.rpm)
      ttl = math.max(ttl, full)
      local left = math.floor(rt[1][1])
      if best[1][1] == -1 or left < best[1][2] then best[1] = {s.rpm, left, full} end
    end
    if s.tpm then
      rt[2][1] = rt[2][1] - tokens
      local full = until_full_ms(rt[2][1], s.tpm)
      ttl = math.max(ttl, full)
      local left = math.floor(rt[2][1])
      if best[2][1] == -1 or left < best[2][2] then best[2] = {s.tpm, left, full} end
    end
    redis.call('SET', KEYS[i * 3 - 2],
      string.format('%.6f %d %.6f %d', rt[1][1], rt[1][2], rt[2][1], rt[2][2]),
      'PX', ttl + 1000)
  end
  local sp = spends[i]
  if sp then
    redis.call('HSET', KEYS[i * 3 - 1], 'r:' .. ARGV[1], ARGV[3],
      'rsum', string.format('%d', sp[2] + cost))
    redis.call('ZADD', KEYS[i * 3], now_ms + tonumber(ARGV[4]), ARGV[1])
  end
end
return {1, now_ms, best[1][1], best[1][2], best[1][3], best[2][1], best[2][2], best[2][3]}
