"""The Lua scripts behind the store contract: each guarantee is one script, which Redis runs atomically.

Redis runs a script with no other command in between, so a check and the
write it guards are one step for every instance on the server.  A script
fails on a bad argument before it writes (expiry times are checked in
Python), so none leaves half a change behind.

The keys (``store.Keys``): ``session:<result key>`` is a hash with the
fields ``purpose``, ``code`` (the code key), ``last`` (last activity),
``contact``, ``result`` (the JWE as received) and ``feedback`` (``1`` or
``0``); ``code:<code key>`` and ``contact:<contact id>`` hold the result key
of their session; the three expire together, at the last activity plus
``session_ttl``, and every write moves that time.  ``token:<replay key>``
marks a spent replay key until it expires; ``failures:<window end>`` counts
failed links until its window has ended.

Scripts that must find a session's other keys build their names from the
prefix (``ARGV[1]``): the store runs on one Redis server (or a primary with
replicas), not on a Redis Cluster.
"""

from __future__ import annotations

#: ``session.code`` and ``session.contact`` keys expire with their session.
_TOUCH = """
local function touch(prefix, session, code, contact, expire_ms)
  redis.call('PEXPIREAT', session, expire_ms)
  redis.call('PEXPIREAT', prefix .. 'code:' .. code, expire_ms)
  if contact then
    redis.call('PEXPIREAT', prefix .. 'contact:' .. contact, expire_ms)
  end
end
"""

#: KEYS: session, code[, token]   ARGV: result key, code key, purpose, now, expire ms[, jwe, feedback, token ms]
#: -> 'ok' | 'taken' (nothing stored) | 'reused' (nothing stored)
CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then
  return 'taken'
end
if KEYS[3] then
  if redis.call('EXISTS', KEYS[3]) == 1 then
    return 'reused'
  end
  redis.call('SET', KEYS[3], '1', 'PXAT', ARGV[8])
  redis.call('HSET', KEYS[1], 'purpose', ARGV[3], 'code', ARGV[2], 'last', ARGV[4],
             'result', ARGV[6], 'feedback', ARGV[7])
else
  redis.call('HSET', KEYS[1], 'purpose', ARGV[3], 'code', ARGV[2], 'last', ARGV[4])
end
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
redis.call('SET', KEYS[2], ARGV[1], 'PXAT', ARGV[5])
return 'ok'
"""

#: KEYS: session, token   ARGV: prefix, jwe, feedback, now, expire ms, token ms
#: -> {'ok', contact id or nil} | {'missing'} | {'reused'}; only 'ok' stored anything
STORE_RESULT = _TOUCH + """
local s = redis.call('HMGET', KEYS[1], 'purpose', 'result', 'code', 'contact')
if not s[1] or s[2] then
  return {'missing'}
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {'reused'}
end
redis.call('SET', KEYS[2], '1', 'PXAT', ARGV[6])
redis.call('HSET', KEYS[1], 'result', ARGV[2], 'feedback', ARGV[3], 'last', ARGV[4])
touch(ARGV[1], KEYS[1], s[3], s[4], ARGV[5])
return {'ok', s[4]}
"""

#: KEYS: code, contact, failures   ARGV: prefix, contact id, now, expire ms, budget
#: -> {'ok', jwe when its result asked for feedback, else nil} | {'refused'} (nothing changed)
LINK = """
if tonumber(redis.call('GET', KEYS[3]) or '0') >= tonumber(ARGV[5]) then
  return {'refused'}
end
local result_key = redis.call('GET', KEYS[1])
if not result_key then
  return {'refused'}
end
local session = ARGV[1] .. 'session:' .. result_key
local s = redis.call('HMGET', session, 'purpose', 'contact', 'result', 'feedback')
if not s[1] or (s[2] and s[2] ~= ARGV[2]) then
  return {'refused'}
end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= result_key and redis.call('EXISTS', ARGV[1] .. 'session:' .. holder) == 1 then
  return {'refused'}
end
redis.call('HSET', session, 'contact', ARGV[2], 'last', ARGV[3])
redis.call('SET', KEYS[2], result_key, 'PXAT', ARGV[4])
redis.call('PEXPIREAT', session, ARGV[4])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
if s[4] == '1' then
  return {'ok', s[3]}
end
return {'ok'}
"""

#: KEYS: failures   ARGV: expire ms   -> the window's count
COUNT_FAILURE = """
local count = redis.call('INCR', KEYS[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return count
"""

#: KEYS: contact   ARGV: prefix, contact id   -> {purpose, jwe or nil, feedback or nil} | nil
FIND_BY_CONTACT = """
local result_key = redis.call('GET', KEYS[1])
if not result_key then
  return false
end
local s = redis.call('HMGET', ARGV[1] .. 'session:' .. result_key, 'purpose', 'contact', 'result', 'feedback')
if not s[1] or s[2] ~= ARGV[2] then
  return false
end
return {s[1], s[3], s[4]}
"""
