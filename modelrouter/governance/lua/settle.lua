-- modelrouter shared counters, schema v1: replace one admitted request's estimate with
-- what it used. Idempotent for budgets: the real cost is added only by the call that
-- removes the reservation, so a batch sent twice (after a lost reply) counts once.
--
-- KEYS: four per scope, as for acquire.lua.
-- ARGV: 1 reservation id, 2 tokens to give back (estimate - real; negative = debt),
--   3 real cost (nano-USD, integer), then two per scope: tpm ("" = not limited),
--   budget flag ("1" = the scope has a budget).
-- Returns the number of budgets charged.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rid = ARGV[1]
local back = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local n = (#ARGV - 3) / 2
local charged = 0

for i = 1, n do
  local a = 3 + (i - 1) * 2
  local cap = ARGV[a + 1]
  if cap ~= '' and back ~= 0 then
    cap = tonumber(cap)
    local key = KEYS[(i - 1) * 4 + 2]
    local v = redis.call('HMGET', key, 'l', 't')
    local level = tonumber(v[1])
    if not level then
      level = cap
    else
      local elapsed = now - tonumber(v[2])
      if elapsed > 0 then level = level + elapsed * cap / 60000000 end
    end
    level = math.min(cap, level + back)
    redis.call('HSET', key, 'l', level, 't', now)
    if cap > 0 then
      redis.call('PEXPIRE', key, math.ceil((cap - level) * 60000 / cap) + 1000)
    end
  end
  if ARGV[a + 2] == '1' then
    local hk, zk = KEYS[(i - 1) * 4 + 3], KEYS[(i - 1) * 4 + 4]
    local amt = redis.call('HGET', hk, 'r:' .. rid)
    if amt then
      redis.call('HDEL', hk, 'r:' .. rid)
      redis.call('HINCRBY', hk, 'rsum', -tonumber(amt))
      redis.call('ZREM', zk, rid)
      if redis.call('HEXISTS', hk, 'spent') == 1 then
        redis.call('HINCRBY', hk, 'spent', cost)
        charged = charged + 1
      end
    end
  end
end
return charged
