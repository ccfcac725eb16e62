"""The Lua scripts that change shared health and the probe lease atomically in Redis.

Keys per model (under the link's prefix): ``health:MODEL``, a hash holding the model's
shared state, and ``win:MODEL``, a hash of outcome counts. State hash fields:

==========  =============================================================
``b``       ``open`` or ``closed``: the breaker after the last breaker event
``at``      Redis time (ms) of that event: the newest event wins
``until``   open: Redis time (ms) the breaker stays open until
``cause``   open: why, for humans; ``mis``: the misconfiguration, if that is why
``since``   open: when it first opened; ``by``: the replica that decided
``rec``     closed: when it recovered (slow start runs from there on every replica)
``cool``    Redis time (ms) a 429 cooldown ends
``p_ok``    last probe: ``1``/``0``; ``p_at`` its time; ``p_err`` its error
==========  =============================================================

Counts hash fields: ``n:BUCKET`` outcomes and ``f:BUCKET`` failures per time bucket,
``c`` consecutive failures across replicas. Both hashes expire by themselves.
Every change that wins is published on the ``health`` channel as the JSON message
every replica applies (:meth:`ClusterTracker.adopt
<modelrouter.cluster.tracker.ClusterTracker.adopt>`).
"""

from __future__ import annotations

NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

KEEP_UNTIL = """
local function keep_until(key, exp)
  local pttl = redis.call('PTTL', key)
  if pttl < 0 or now + pttl < exp then redis.call('PEXPIREAT', key, exp) end
end
"""

PUT = (
    NOW
    + KEEP_UNTIL
    + """
-- One event from a replica: newest wins (breaker events by 'at', a cooldown by its
-- end, a probe by its time); the winner is stored and published, a loser dropped.
-- KEYS: state hash, counts hash.
-- ARGV: channel, kind, order (ms), message, expire-at (ms), then field, value pairs.
local kind = ARGV[2]
local field = 'at'
if kind == 'cool' then field = 'cool' elseif kind == 'probe' then field = 'p_at' end
local cur = tonumber(redis.call('HGET', KEYS[1], field) or '0') or 0
if tonumber(ARGV[3]) <= cur then return 0 end
if kind == 'close' then
  -- The outage's failures were acted on; kept, they would reopen the breaker.
  redis.call('DEL', KEYS[2])
  redis.call('HDEL', KEYS[1], 'until', 'cause', 'mis', 'since')
elseif kind == 'open' then
  redis.call('HDEL', KEYS[1], 'rec')
end
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
keep_until(KEYS[1], tonumber(ARGV[5]))
redis.call('PUBLISH', ARGV[1], ARGV[4])
return 1
"""
)

SIGNAL = (
    NOW
    + KEEP_UNTIL
    + """
-- One replica's outcomes of one model since its last flush, merged into the shared
-- window; opens the breaker for everyone when the merged counts cross a threshold.
-- KEYS: counts hash, state hash.
-- ARGV: channel, model, ok, fail, trailing failures, bucket ms, buckets,
--       failure_threshold, min_requests, error_rate_threshold, open ms, grace ms, by.
local ok, fail, trailing = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local bucket_ms, nb = tonumber(ARGV[6]), tonumber(ARGV[7])
local b = math.floor(now / bucket_ms)
redis.call('HINCRBY', KEYS[1], 'n:' .. b, ok + fail)
if fail > 0 then redis.call('HINCRBY', KEYS[1], 'f:' .. b, fail) end
local c
if ok > 0 then
  c = trailing
  redis.call('HSET', KEYS[1], 'c', c)
else
  c = redis.call('HINCRBY', KEYS[1], 'c', fail)
end
redis.call('PEXPIRE', KEYS[1], bucket_ms * nb * 2)
if fail == 0 then return 0 end
local st = redis.call('HMGET', KEYS[2], 'b', 'until', 'since')
if st[1] == 'open' and (tonumber(st[2]) or 0) > now then return 0 end
local cause = nil
if c >= tonumber(ARGV[8]) then
  cause = string.format('%d consecutive failures across replicas', c)
else
  local n, f = 0, 0
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    local kind, idx = string.match(all[i], '^([nf]):(%d+)$')
    if kind then
      if tonumber(idx) <= b - nb then
        redis.call('HDEL', KEYS[1], all[i])
      elseif kind == 'n' then
        n = n + tonumber(all[i + 1])
      else
        f = f + tonumber(all[i + 1])
      end
    end
  end
  if n >= tonumber(ARGV[9]) and f / n >= tonumber(ARGV[10]) then
    cause = string.format('%d%% errors over %d calls across replicas',
      math.floor(f * 100 / n + 0.5), n)
  end
end
if not cause then return 0 end
local untl = now + tonumber(ARGV[11])
local since = now
if st[1] == 'open' then since = tonumber(st[3]) or now end
redis.call('HSET', KEYS[2], 'b', 'open', 'at', now, 'until', untl, 'cause', cause,
  'mis', '', 'since', since, 'by', ARGV[13])
redis.call('HDEL', KEYS[2], 'rec')
keep_until(KEYS[2], untl + tonumber(ARGV[12]))
redis.call('PUBLISH', ARGV[1], cjson.encode({m = ARGV[2], k = 'open', at = now,
  ['until'] = untl, cause = cause, mis = '', since = since, by = ARGV[13], tok = ''}))
return 1
"""
)

RENEW = """
-- The lease holder extends its lease; anyone else gets 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
