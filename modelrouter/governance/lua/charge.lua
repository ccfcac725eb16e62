-- modelrouter shared counters, schema v1: add to a budget counter what requests
-- admitted without Redis spent (while it was away, or when one acquire timed out).
-- A counter that does not exist is left alone: its next use seeds it from the store,
-- which holds those calls.
--
-- KEYS[1]: a scope's spend hash (one key per call: one slot in a Redis Cluster).
-- ARGV[1]: what to add, in nano-USD.
-- Returns 1 if the counter was charged, else 0.

if redis.call('HEXISTS', KEYS[1], 'spent') == 1 then
  redis.call('HINCRBY', KEYS[1], 'spent', ARGV[1])
  return 1
end
return 0
