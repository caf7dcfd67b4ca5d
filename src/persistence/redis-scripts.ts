/**
 * The Lua scripts RedisPersistence (redis.ts) runs; the key layout they share
 * is documented there. Each script runs atomically in Redis. KEYS[1] is always
 * `<prefix>meta` (it routes the script in a cluster; see redis.ts) and
 * ARGV[1] the prefix, from which every other key is built.
 *
 * A Redis script is not rolled back when it fails halfway, so `COMMIT`
 * validates every op against the state the commit's earlier ops would
 * produce, and only then applies them; the apply pass cannot fail.
 */

/** Op codes and argument counts of the commit script (after the op code). */
export const OP = {
  putSession: 'S', // clientId, session JSON, expiresAt ('' = never)
  deleteSession: 's', // clientId
  putSubscription: 'B', // clientId, filter, subscription JSON
  deleteSubscription: 'b', // clientId, filter
  putMessage: 'M', // id, message blob, expiresAt ('' = never)
  putOutbound: 'O', // clientId, seq, entry text
  deleteOutbound: 'o', // clientId, seq
  putInbound: 'I', // clientId, packetId
  deleteInbound: 'i', // clientId, packetId
  putRetained: 'R', // topic, id, message blob, expiresAt ('' = never), payload bytes
  deleteRetained: 'r', // topic
} as const;

/** Error replies the scripts return, mapped to TernErrors by redis.ts. */
export const INVALID_OP = 'TERN_INVALID_OP';
export const RETAINED_LIMIT = 'TERN_RETAINED_LIMIT';

const PRELUDE = `
local P = ARGV[1]
local META = KEYS[1]
local SESSIONS = P .. 'sessions'
local SESSION_INDEX = P .. 'session-index'
local SESSION_EXPIRY = P .. 'session-expiry'
local MESSAGES = P .. 'messages'
local REFS = P .. 'message-refs'
local MESSAGE_EXPIRY = P .. 'message-expiry'
local OUTBOUND_EXPIRY = P .. 'outbound-expiry'
local RETAINED = P .. 'retained'
local RETAINED_INDEX = P .. 'retained-index'
local RETAINED_EXPIRY = P .. 'retained-expiry'
local function subKey(c) return P .. 'sub:' .. c end
local function outKey(c) return P .. 'out:' .. c end
local function inKey(c) return P .. 'in:' .. c end
`;

/**
 * Shared by the writing scripts: reference counts and garbage collection.
 * Reference changes are summed per message and written once at the end
 * (a fan-out to N clients is one HINCRBY, not N).
 */
const WRITE_HELPERS = `
-- Message id -> reference change in this script.
local deltas = {}
-- Message ids that may be unreferenced at the end: stored by this script, or unref'd.
local candidates = {}
-- Message id -> expiresAt, or false when it has none (cache of MESSAGE_EXPIRY).
local expiries = {}
local function ref(id)
  deltas[id] = (deltas[id] or 0) + 1
end
local function unref(id)
  deltas[id] = (deltas[id] or 0) - 1
  candidates[id] = true
end
local function expiryOf(id)
  local e = expiries[id]
  if e == nil then
    e = redis.call('HGET', MESSAGE_EXPIRY, id) or false
    expiries[id] = e
  end
  return e
end
local function deleteSession(c)
  local entries = redis.call('HVALS', outKey(c))
  for j = 1, #entries do unref(string.match(entries[j], '^(%d+)')) end
  redis.call('DEL', outKey(c), subKey(c), inKey(c))
  redis.call('HDEL', SESSIONS, c)
  redis.call('ZREM', SESSION_INDEX, c)
  redis.call('ZREM', SESSION_EXPIRY, c)
end
local function deleteRetained(topic)
  local cur = redis.call('HGET', RETAINED, topic)
  if not cur then return false end
  local id, size = string.match(cur, '^(%d+)|(%d+)$')
  redis.call('HDEL', RETAINED, topic)
  redis.call('ZREM', RETAINED_INDEX, topic)
  redis.call('ZREM', RETAINED_EXPIRY, topic)
  redis.call('HINCRBY', META, 'retained-bytes', -tonumber(size))
  unref(id)
  return true
end
local function collectGarbage()
  local refs = {}
  for id, d in pairs(deltas) do
    if d ~= 0 then refs[id] = redis.call('HINCRBY', REFS, id, d) end
  end
  for id in pairs(candidates) do
    local r = refs[id]
    if r == nil then r = tonumber(redis.call('HGET', REFS, id) or '0') end
    if r <= 0 then
      redis.call('HDEL', MESSAGES, id)
      redis.call('HDEL', REFS, id)
      redis.call('HDEL', MESSAGE_EXPIRY, id)
    end
  end
end
`;

/**
 * ARGV: prefix, maxRetained, maxRetainedBytes, then each op as its code
 * followed by its arguments (see OP). Returns 1, or an error reply.
 */
export const COMMIT = `${PRELUDE}${WRITE_HELPERS}
local ARITY = { S = 3, s = 1, B = 3, b = 2, M = 3, O = 3, o = 2, I = 2, i = 2, R = 5, r = 1 }
local NAMES = { B = 'putSubscription', I = 'putInbound', O = 'putOutbound' }
local n = #ARGV
local maxCount = tonumber(ARGV[2])
local maxBytes = tonumber(ARGV[3])

-- Pass 1: validate against overlays of what the earlier ops change.
local sessions = {}
local function hasSession(c)
  local v = sessions[c]
  if v == nil then
    v = redis.call('HEXISTS', SESSIONS, c) == 1
    sessions[c] = v
  end
  return v
end
local messages = {}
local retained = {} -- topic -> payload bytes, -1 = none
local count, bytes
local function retainedSize(topic)
  local v = retained[topic]
  if v == nil then
    local cur = redis.call('HGET', RETAINED, topic)
    v = cur and tonumber(string.match(cur, '|(%d+)$')) or -1
  end
  return v
end
local i = 4
while i <= n do
  local op = ARGV[i]
  local arity = ARITY[op]
  if arity == nil then
    return redis.error_reply('${INVALID_OP} unknown op code ' .. op)
  end
  if op == 'S' then
    sessions[ARGV[i + 1]] = true
  elseif op == 's' then
    sessions[ARGV[i + 1]] = false
  elseif op == 'B' or op == 'I' or op == 'O' then
    local c = ARGV[i + 1]
    if not hasSession(c) then
      return redis.error_reply('${INVALID_OP} ' .. NAMES[op] .. ' for client ' .. cjson.encode(c) .. ' without a session')
    end
    if op == 'O' then
      local id = string.match(ARGV[i + 3], '^(%d+)')
      if not messages[id] and redis.call('HEXISTS', MESSAGES, id) == 0 then
        return redis.error_reply('${INVALID_OP} putOutbound references unknown message ' .. id)
      end
    end
  elseif op == 'M' then
    messages[ARGV[i + 1]] = true
  elseif op == 'R' then
    local topic = ARGV[i + 1]
    messages[ARGV[i + 2]] = true
    if maxCount > 0 or maxBytes > 0 then
      if count == nil then
        count = redis.call('ZCARD', RETAINED_INDEX)
        bytes = tonumber(redis.call('HGET', META, 'retained-bytes') or '0')
      end
      local prev = retainedSize(topic)
      local size = tonumber(ARGV[i + 5])
      if prev < 0 then count = count + 1 end
      bytes = bytes + size - math.max(prev, 0)
      if maxCount > 0 and prev < 0 and count > maxCount then
        return redis.error_reply('${RETAINED_LIMIT} ' .. maxCount .. ' retained messages (topic ' .. topic .. ')')
      end
      if maxBytes > 0 and size > math.max(prev, 0) and bytes > maxBytes then
        return redis.error_reply('${RETAINED_LIMIT} ' .. maxBytes .. ' retained bytes (topic ' .. topic .. ')')
      end
      retained[topic] = size
    end
  elseif op == 'r' then
    if maxCount > 0 or maxBytes > 0 then
      if count == nil then
        count = redis.call('ZCARD', RETAINED_INDEX)
        bytes = tonumber(redis.call('HGET', META, 'retained-bytes') or '0')
      end
      local prev = retainedSize(ARGV[i + 1])
      if prev >= 0 then
        count = count - 1
        bytes = bytes - prev
      end
      retained[ARGV[i + 1]] = -1
    end
  end
  i = i + 1 + arity
end

-- Pass 2: apply. Nothing below can fail.
local maxId, maxIdText = -1, nil
local function putMessage(id, blob, expiresAt)
  if redis.call('HSETNX', MESSAGES, id, blob) == 1 then
    candidates[id] = true
    if expiresAt ~= '' then
      redis.call('HSET', MESSAGE_EXPIRY, id, expiresAt)
      expiries[id] = expiresAt
    else
      expiries[id] = false
    end
  end
  local num = tonumber(id)
  if num > maxId then maxId, maxIdText = num, id end
end
i = 4
while i <= n do
  local op = ARGV[i]
  if op == 'S' then
    local c = ARGV[i + 1]
    redis.call('HSET', SESSIONS, c, ARGV[i + 2])
    redis.call('ZADD', SESSION_INDEX, 0, c)
    if ARGV[i + 3] == '' then
      redis.call('ZREM', SESSION_EXPIRY, c)
    else
      redis.call('ZADD', SESSION_EXPIRY, ARGV[i + 3], c)
    end
  elseif op == 's' then
    deleteSession(ARGV[i + 1])
  elseif op == 'B' then
    redis.call('HSET', subKey(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3])
  elseif op == 'b' then
    redis.call('HDEL', subKey(ARGV[i + 1]), ARGV[i + 2])
  elseif op == 'M' then
    putMessage(ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])
  elseif op == 'O' then
    local c, seq, value = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    local key = outKey(c)
    local id, state = string.match(value, '^(%d+)|(%d)')
    local old = redis.call('HGET', key, seq)
    ref(id)
    if old then unref(string.match(old, '^(%d+)')) end
    redis.call('HSET', key, seq, value)
    if state == '0' then
      local expiresAt = expiryOf(id)
      if expiresAt then redis.call('ZADD', OUTBOUND_EXPIRY, expiresAt, c .. '\\n' .. seq) end
    end
  elseif op == 'o' then
    local key = outKey(ARGV[i + 1])
    local old = redis.call('HGET', key, ARGV[i + 2])
    if old then
      redis.call('HDEL', key, ARGV[i + 2])
      unref(string.match(old, '^(%d+)'))
    end
  elseif op == 'I' then
    redis.call('SADD', inKey(ARGV[i + 1]), ARGV[i + 2])
  elseif op == 'i' then
    redis.call('SREM', inKey(ARGV[i + 1]), ARGV[i + 2])
  elseif op == 'R' then
    local topic, id, expiresAt, size = ARGV[i + 1], ARGV[i + 2], ARGV[i + 4], ARGV[i + 5]
    putMessage(id, ARGV[i + 3], expiresAt)
    ref(id)
    local old = redis.call('HGET', RETAINED, topic)
    if old then
      local oldId, oldSize = string.match(old, '^(%d+)|(%d+)$')
      redis.call('HINCRBY', META, 'retained-bytes', tonumber(size) - tonumber(oldSize))
      unref(oldId)
    else
      redis.call('ZADD', RETAINED_INDEX, 0, topic)
      redis.call('HINCRBY', META, 'retained-bytes', size)
    end
    redis.call('HSET', RETAINED, topic, id .. '|' .. size)
    if expiresAt == '' then
      redis.call('ZREM', RETAINED_EXPIRY, topic)
    else
      redis.call('ZADD', RETAINED_EXPIRY, expiresAt, topic)
    end
  elseif op == 'r' then
    deleteRetained(ARGV[i + 1])
  end
  i = i + 1 + ARITY[op]
end
collectGarbage()
if maxIdText ~= nil then
  local last = redis.call('HGET', META, 'last-message-id')
  if not last or tonumber(last) < maxId then redis.call('HSET', META, 'last-message-id', maxIdText) end
end
return 1
`;

/**
 * ARGV: prefix, now, limit. Deletes up to `limit` expired sessions, queued
 * outbound entries and retained slots each; returns
 * `[expired deliveries dropped, 1 if a limit was reached, ...session ids]`.
 * Members of the expiry sets are rechecked against the current entry or slot,
 * so members left behind by later writes are dropped without effect.
 */
export const PURGE = `${PRELUDE}${WRITE_HELPERS}
local now = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local more = 0
local result = { 0, 0 }
local expired = redis.call('ZRANGEBYSCORE', SESSION_EXPIRY, '-inf', ARGV[2], 'LIMIT', 0, limit)
if #expired >= limit then more = 1 end
for j = 1, #expired do
  deleteSession(expired[j])
  result[#result + 1] = expired[j]
end
local dropped = 0
local queued = redis.call('ZRANGEBYSCORE', OUTBOUND_EXPIRY, '-inf', ARGV[2], 'LIMIT', 0, limit)
if #queued >= limit then more = 1 end
for j = 1, #queued do
  local member = queued[j]
  redis.call('ZREM', OUTBOUND_EXPIRY, member)
  local c, seq = string.match(member, '^(.*)\\n([^\\n]*)$')
  local key = outKey(c)
  local cur = redis.call('HGET', key, seq)
  if cur then
    local id, state = string.match(cur, '^(%d+)|(%d)')
    local expiresAt = expiryOf(id)
    if state == '0' and expiresAt and tonumber(expiresAt) <= now then
      redis.call('HDEL', key, seq)
      unref(id)
      dropped = dropped + 1
    end
  end
end
local topics = redis.call('ZRANGEBYSCORE', RETAINED_EXPIRY, '-inf', ARGV[2], 'LIMIT', 0, limit)
if #topics >= limit then more = 1 end
for j = 1, #topics do
  local topic = topics[j]
  redis.call('ZREM', RETAINED_EXPIRY, topic)
  local cur = redis.call('HGET', RETAINED, topic)
  if cur then
    local expiresAt = expiryOf(string.match(cur, '^(%d+)'))
    if expiresAt and tonumber(expiresAt) <= now and deleteRetained(topic) then dropped = dropped + 1 end
  end
end
collectGarbage()
result[1] = dropped
result[2] = more
return result
`;

/** ARGV: prefix, clientId. Returns `[seq, entry text, message blob, ...]`, unordered. */
export const LOAD_OUTBOUND = `${PRELUDE}
local entries = redis.call('HGETALL', outKey(ARGV[2]))
local out = {}
for j = 1, #entries, 2 do
  local blob = redis.call('HGET', MESSAGES, string.match(entries[j + 1], '^(%d+)'))
  if blob then
    out[#out + 1] = entries[j]
    out[#out + 1] = entries[j + 1]
    out[#out + 1] = blob
  end
end
return out
`;

/**
 * ARGV: prefix, min (ZRANGEBYLEX form), limit. One page of the session index:
 * `[last client id of the page, clients in the page, session JSON, ...]`.
 */
export const SESSIONS_PAGE = `${PRELUDE}
local ids = redis.call('ZRANGEBYLEX', SESSION_INDEX, ARGV[2], '+', 'LIMIT', 0, tonumber(ARGV[3]))
local out = { ids[#ids] or '', tostring(#ids) }
if #ids == 0 then return out end
local blobs = redis.call('HMGET', SESSIONS, unpack(ids))
for j = 1, #ids do
  if blobs[j] then out[#out + 1] = blobs[j] end
end
return out
`;

/**
 * ARGV: prefix, min (ZRANGEBYLEX form), limit. The subscriptions of one page
 * of clients: `[last client id of the page, clients in the page, clientId,
 * filter, subscription JSON, ...]`.
 */
export const SUBSCRIPTIONS_PAGE = `${PRELUDE}
local ids = redis.call('ZRANGEBYLEX', SESSION_INDEX, ARGV[2], '+', 'LIMIT', 0, tonumber(ARGV[3]))
local out = { ids[#ids] or '', tostring(#ids) }
for j = 1, #ids do
  local subs = redis.call('HGETALL', subKey(ids[j]))
  for k = 1, #subs, 2 do
    out[#out + 1] = ids[j]
    out[#out + 1] = subs[k]
    out[#out + 1] = subs[k + 1]
  end
end
return out
`;

/**
 * ARGV: prefix, min, max (ZRANGEBYLEX form), limit. One page of retained
 * topics in byte order: `[last topic of the page, topics in the page, topic,
 * message blob, ...]`.
 */
export const RETAINED_PAGE = `${PRELUDE}
local topics = redis.call('ZRANGEBYLEX', RETAINED_INDEX, ARGV[2], ARGV[3], 'LIMIT', 0, tonumber(ARGV[4]))
local out = { topics[#topics] or '', tostring(#topics) }
for j = 1, #topics do
  local cur = redis.call('HGET', RETAINED, topics[j])
  if cur then
    local blob = redis.call('HGET', MESSAGES, string.match(cur, '^(%d+)'))
    if blob then
      out[#out + 1] = topics[j]
      out[#out + 1] = blob
    end
  end
end
return out
`;

/** ARGV: prefix, topic. The retained message blob, or nil. */
export const GET_RETAINED = `${PRELUDE}
local cur = redis.call('HGET', RETAINED, ARGV[2])
if not cur then return false end
return redis.call('HGET', MESSAGES, string.match(cur, '^(%d+)'))
`;
