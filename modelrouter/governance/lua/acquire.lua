-- modelrouter shared counters, schema v1: admit one request against every scope, or none.
--
-- KEYS, four per scope (all in one hash slot):
--   rpm bucket (hash l=level t=µs), tpm bucket (same), budget hash for the period
--   (spent, rsum, r:<rid> = reserved nano-USD), reservation expiries (zset rid -> ms).
-- ARGV: 1 reservation id, 2 estimated tokens, 3 estimated cost (nano-USD, integer),
--   4 reservation lifetime (ms), 5 idle lifetime of a budget with no period end (s),
--   then five per scope: rpm, tpm, budget (nano-USD) -- "" = not limited --,
--   budget hash expires at (epoch s; 0 = idle lifetime), seed (nano-USD; "" = unknown).
-- Returns one of
--   {1, now_ms, req_limit, req_remaining, req_reset_ms, tok_limit, tok_remaining, tok_reset_ms}
--       admitted (-1 where no scope limits that kind; the stricter scope's values)
--   {0, now_ms, reason, scope, wait_ms, spent, reserved, budget}
--       refused, nothing taken: reason 1 rpm, 2 tpm, 3 budget; scope is 1-based
--   {2, now_ms, scope...}  these scopes' spend is unknown: call again with their seeds
-- Redis's clock (TIME) is the only clock: replicas' clocks never meet in a counter.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now_ms = math.floor(now / 1000)
local rid = ARGV[1]
local tokens = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local resv_ms = tonumber(ARGV[4])
local idle_s = tonumber(ARGV[5])
local n = (#ARGV - 5) / 5
local PER_MIN = 60000000

local function bucket(key, cap)
  -- level after refilling since the last write; a missing bucket is full
  local v = redis.call('HMGET', key, 'l', 't')
  local level = tonumber(v[1])
  if not level then return cap end
  local elapsed = now - tonumber(v[2])
  if elapsed > 0 then level = level + elapsed * cap / PER_MIN end
  if level > cap then level = cap end
  return level
end

local function until_full_ms(level, cap)
  if cap <= 0 then return 0 end
  return math.ceil((cap - level) * 60000 / cap)
end

local function wait_ms(level, need, cap)
  if cap <= 0 then return 60000 end
  return math.ceil((need - level) * 60000 / cap)
end

-- pass 1: budgets known? (drop expired reservations on the way)
local missing = {}
for i = 1, n do
  local a = 5 + (i - 1) * 5
  if ARGV[a + 3] ~= '' then
    local hk, zk = KEYS[(i - 1) * 4 + 3], KEYS[(i - 1) * 4 + 4]
    local gone = redis.call('ZRANGEBYSCORE', zk, '-inf', now_ms, 'LIMIT', 0, 64)
    for _, old in ipairs(gone) do
      local amt = redis.call('HGET', hk, 'r:' .. old)
      if amt then
        redis.call('HDEL', hk, 'r:' .. old)
        redis.call('HINCRBY', hk, 'rsum', -tonumber(amt))
      end
      redis.call('ZREM', zk, old)
    end
    if redis.call('HEXISTS', hk, 'spent') == 0 then
      if ARGV[a + 5] ~= '' then
        redis.call('HSETNX', hk, 'spent', ARGV[a + 5])
      else
        missing[#missing + 1] = i
      end
    end
  end
end
if #missing > 0 then
  local out = {2, now_ms}
  for _, i in ipairs(missing) do out[#out + 1] = i end
  return out
end

-- pass 2: budgets first (a spent budget is the answer that retrying will not change)
for i = 1, n do
  local a = 5 + (i - 1) * 5
  if ARGV[a + 3] ~= '' then
    local budget = tonumber(ARGV[a + 3])
    local hk = KEYS[(i - 1) * 4 + 3]
    local v = redis.call('HMGET', hk, 'spent', 'rsum')
    local spent, rsum = tonumber(v[1]), tonumber(v[2] or '0')
    if spent + rsum + cost > budget then
      return {0, now_ms, 3, i, 0, spent, rsum, budget}
    end
  end
end

-- pass 3: every bucket must have room; the longest wait names the refusal
local levels = {}
local worst = nil
for i = 1, n do
  local a = 5 + (i - 1) * 5
  for k = 1, 2 do
    local cap = ARGV[a + k]
    if cap ~= '' then
      cap = tonumber(cap)
      local level = bucket(KEYS[(i - 1) * 4 + k], cap)
      local need = 1
      if k == 2 then need = math.min(tokens, cap) end
      levels[(i - 1) * 2 + k] = level
      if level < need or cap <= 0 then
        local w = wait_ms(level, need, cap)
        if worst == nil or w > worst[5] then worst = {0, now_ms, k, i, w, 0, 0, 0} end
      end
    end
  end
end
if worst then return worst end

-- admitted: take from every bucket, reserve the cost in every budget
local best = {{-1, -1, -1}, {-1, -1, -1}}
for i = 1, n do
  local a = 5 + (i - 1) * 5
  for k = 1, 2 do
    local level = levels[(i - 1) * 2 + k]
    if level then
      local cap = tonumber(ARGV[a + k])
      local take = 1
      if k == 2 then take = tokens end
      level = level - take
      local key = KEYS[(i - 1) * 4 + k]
      redis.call('HSET', key, 'l', level, 't', now)
      redis.call('PEXPIRE', key, until_full_ms(level, cap) + 1000)
      local left = math.floor(level)
      if best[k][1] == -1 or left < best[k][2] then
        best[k] = {cap, left, until_full_ms(level, cap)}
      end
    end
  end
  if ARGV[a + 3] ~= '' then
    local hk, zk = KEYS[(i - 1) * 4 + 3], KEYS[(i - 1) * 4 + 4]
    redis.call('HSET', hk, 'r:' .. rid, cost)
    redis.call('HINCRBY', hk, 'rsum', cost)
    redis.call('ZADD', zk, now_ms + resv_ms, rid)
    local at = tonumber(ARGV[a + 4])
    if at > 0 then
      redis.call('EXPIREAT', hk, at)
      redis.call('EXPIREAT', zk, at)
    else
      redis.call('EXPIRE', hk, idle_s)
      redis.call('EXPIRE', zk, idle_s)
    end
  end
end
return {1, now_ms, best[1][1], best[1][2], best[1][3], best[2][1], best[2][2], best[2][3]}
