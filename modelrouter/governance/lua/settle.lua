-- modelrouter shared counters, schema v1: replace one admitted request's estimate with
-- what it used. Idempotent for budgets: the real cost is added only by the call that
-- removes the reservation, so a batch sent twice (after a lost reply) charges once.
--
-- KEYS: three per scope, as for acquire.lua.
-- ARGV: 1 reservation id, 2 tokens to give back (estimate - real; negative = debt),
--   3 real cost (nano-USD), then the scopes' specs as for acquire.lua.
-- Returns the number of budgets charged.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rid = ARGV[1]
local back = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local n = #KEYS / 3
local charged = 0

local function refill(level, at, cap)
  if cap <= 0 then return 0 end
  local elapsed = now - at
  if elapsed > 0 then level = level + elapsed * cap / 60000000 end
  if level > cap then level = cap end
  return level
end

local function until_full_ms(level, cap)
  if cap <= 0 then return 0 end
  return math.ceil((cap - level) * 60000 / cap)
end

for i = 1, n do
  local rpm, tpm, budget = string.match(ARGV[3 + i], '^(%S+) (%S+) (%S+) ')
  rpm, tpm = tonumber(rpm), tonumber(tpm)
  if tpm and back ~= 0 then
    local key = KEYS[i * 3 - 2]
    local v = redis.call('GET', key)
    local rl, rt, tl, tt = 0, 0, 0, 0
    if v then
      rl, rt, tl, tt = string.match(v, '^(%S+) (%S+) (%S+) (%S+)$')
      rl, rt, tl, tt = tonumber(rl), tonumber(rt), tonumber(tl), tonumber(tt)
    end
    local ttl = 0
    if rpm then
      rl, rt = refill(rl, rt, rpm), now
      ttl = until_full_ms(rl, rpm)
    end
    tl, tt = math.min(tpm, refill(tl, tt, tpm) + back), now
    ttl = math.max(ttl, until_full_ms(tl, tpm))
    redis.call('SET', key, string.format('%.6f %d %.6f %d', rl, rt, tl, tt), 'PX', ttl + 1000)
  end
  if budget ~= '-' then
    local hk = KEYS[i * 3 - 1]
    local v = redis.call('HMGET', hk, 'r:' .. rid, 'rsum', 'spent')
    if v[1] and v[3] then
      redis.call('HDEL', hk, 'r:' .. rid)
      redis.call('HSET', hk, 'rsum', string.format('%d', tonumber(v[2]) - tonumber(v[1])),
        'spent', string.format('%d', tonumber(v[3]) + cost))
      redis.call('ZREM', KEYS[i * 3], rid)
      charged = charged + 1
    end
  end
end
return charged
