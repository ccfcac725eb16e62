-- modelrouter shared counters, schema v1: replace admitted requests' estimates with
-- what they used, for any number of requests of one scope set (one call per scope set
-- and flush: a replica's settles of a busy key cost Redis one script, not one each).
-- Idempotent for budgets: a real cost is added only by the call that removes its
-- reservation, so a batch sent twice (after a lost reply) charges once.
--
-- KEYS: three per scope, as for acquire.lua.
-- ARGV: the scopes' specs as for acquire.lua, then three per request: reservation id,
--   tokens to give back (estimate - real; negative = debt), real cost (nano-USD).
-- Returns the number of reservations charged.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = #KEYS / 3
local m = (#ARGV - n) / 3
local charged = 0

local back = 0
for j = 1, m do back = back + tonumber(ARGV[n + j * 3 - 1]) end

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
  local rpm, tpm, budget = string.match(ARGV[i], '^(%S+) (%S+) (%S+) ')
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
    local fields = {'rsum', 'spent'}
    for j = 1, m do fields[j + 2] = 'r:' .. ARGV[n + j * 3 - 2] end
    local v = redis.call('HMGET', hk, unpack(fields))
    if v[2] then
      local rsum, spent = tonumber(v[1]), tonumber(v[2])
      local gone, rids = {}, {}
      for j = 1, m do
        if v[j + 2] then
          rsum = rsum - tonumber(v[j + 2])
          spent = spent + tonumber(ARGV[n + j * 3])
          gone[#gone + 1] = fields[j + 2]
          rids[#rids + 1] = ARGV[n + j * 3 - 2]
        end
      end
      if #gone > 0 then
        redis.call('HDEL', hk, unpack(gone))
        redis.call('HSET', hk, 'rsum', string.format('%d', rsum),
          'spent', string.format('%d', spent))
        redis.call('ZREM', KEYS[i * 3], unpack(rids))
        charged = charged + #gone
      end
    end
  end
end
return charged
