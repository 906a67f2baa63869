/**
 * The Lua scripts the Redis result backend runs server-side, so that each write is one atomic
 * round trip (Celery needs a GET and a MULTI for a store, and a MULTI per chord part).
 *
 * Wire compatibility: every script issues exactly the data commands Celery issues (same keys, same
 * bytes, PUBLISH on the key's own channel), so Python readers, writers and subscribers on the same
 * keys see no difference.
 */
import { script as make } from "../RedisClient.js"

/**
 * `set(key, value)` with Celery's store guard, atomically, for one or many keys (the stores that
 * callers issue in the same tick share one call: see `RedisClient.batched`).
 *
 * KEYS the keys (each also its channel); ARGV[1] TTL in whole seconds ("0" = no TTL → SET);
 * ARGV[2] "1" to skip a key's write when its stored meta's status is SUCCESS; ARGV[2 + i] the value
 * for KEYS[i]. Returns one entry per key: 1 written (and published), 0 skipped, or the error reply
 * of that key's command (`redis.pcall`, so one key's WRONGTYPE or NOPERM fails only that key).
 *
 * The guard decodes the stored JSON (cjson reads Python's NaN/Infinity, but gives up on very deep
 * nesting), and only when that fails falls back to a pattern anchored at the start of the object:
 * Celery always writes `status` first, and the anchor means a "SUCCESS" inside the result never
 * counts.
 *
 * Per key (`perKey` 2: TTL and guard shared, then one value per key), so a cluster client splits a
 * call whose keys span slots into one call per slot.
 */
export const store = make(
  `
local ttl = tonumber(ARGV[1])
local guard = ARGV[2] == '1'
local function failed(r) return type(r) == 'table' and r.err ~= nil end
local function one(key, value)
  if guard then
    local cur = redis.pcall('GET', key)
    if failed(cur) then return cur end
    if cur then
      local ok, meta = pcall(cjson.decode, cur)
      local status = nil
      if ok then
        if type(meta) == 'table' then status = meta['status'] end
      elseif string.find(cur, '^%s*{%s*"status"%s*:%s*"SUCCESS"') then
        status = 'SUCCESS'
      end
      if status == 'SUCCESS' then return 0 end
    end
  end
  local r
  if ttl and ttl > 0 then
    r = redis.pcall('SETEX', key, ttl, value)
  else
    r = redis.pcall('SET', key, value)
  end
  if failed(r) then return r end
  r = redis.pcall('PUBLISH', key, value)
  if failed(r) then return r end
  return 1
end
local out = {}
for i, key in ipairs(KEYS) do out[i] = one(key, ARGV[i + 2]) end
return out
`,
  2
)

/**
 * `on_chord_part_return` in one step: record the part, count, read `.t` and `.s`, refresh the
 * TTLs, decide completion once, and hand back the members of the completed chord.
 *
 * KEYS[1] `.j`, KEYS[2] `.t`, KEYS[3] `.s`; ARGV[1] the member (`[1, tid, state, result]`);
 * ARGV[2] the ZSET score (group_index or "+inf"), or "" for LIST mode; ARGV[3] TTL seconds ("0" =
 * no EXPIRE).
 *
 * Returns `{count, 0}` pending (or `.s` not set yet), `{count, 1, members}` when this call
 * completed the chord, `{count, -1, size, extra}` when `.s`/`.t` are not integers.
 *
 * Completion requires `count == int(.s) + int(.t)` as Celery does, and (ZSET mode) that this
 * call's ZADD added the member: a re-delivered identical member leaves the count as it is and must
 * not complete the chord a second time. Because the whole script is atomic, exactly one call sees
 * the count reach the total.
 */
export const chordPart = make(`
local added, count
if ARGV[2] ~= '' then
  added = redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  count = redis.call('ZCOUNT', KEYS[1], '-inf', '+inf')
else
  redis.call('RPUSH', KEYS[1], ARGV[1])
  added = 1
  count = redis.call('LLEN', KEYS[1])
end
local extra = redis.call('GET', KEYS[2])
local size = redis.call('GET', KEYS[3])
local ttl = tonumber(ARGV[3])
if ttl and ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
  redis.call('EXPIRE', KEYS[3], ttl)
end
if not size or size == '' then return {count, 0} end
local int = '^%s*[+-]?%d+%s*$'
if not string.find(size, int) or (extra and extra ~= '' and not string.find(extra, int)) then
  return {count, -1, size, extra or ''}
end
local total = tonumber(size) + ((extra and extra ~= '') and tonumber(extra) or 0)
if count == total and added == 1 then
  if ARGV[2] ~= '' then
    return {count, 1, redis.call('ZRANGE', KEYS[1], 0, -1)}
  end
  return {count, 1, redis.call('LRANGE', KEYS[1], 0, total)}
end
return {count, 0}
`)

/** The body of the non-string checks: the type of each key of `list` ("" for a string or none). */
const typeLoop = (list: "KEYS" | "ARGV") => `local out = {}
for i, key in ipairs(${list}) do
  local t = redis.call('TYPE', key)['ok']
  if t == 'string' or t == 'none' then out[i] = '' else out[i] = t end
end
return out
`

/**
 * Which of KEYS hold something other than a string: one entry per key, "" for a string or no key,
 * else the key's type ("hash", "list", …). MGET reads such a key as missing; this tells the two
 * apart. ARGV: one (ignored) entry per key (`perKey` 0), so a cluster client splits a call whose
 * keys span slots into one call per slot.
 */
export const nonString = make(
  `
${typeLoop("KEYS")}`,
  0
)

/**
 * `nonString` over keys of several hash slots that one cluster node serves, the keys as ARGV (as
 * `mgetOnNode`, whose flags and failure rule it shares: a key this node does not serve fails the
 * whole call, and the caller checks those keys per slot instead).
 */
export const nonStringOnNode = make(`#!lua flags=allow-cross-slot-keys,no-writes
${typeLoop("ARGV")}`)

/**
 * MGET over keys of several hash slots that one cluster node serves: the keys are ARGV (Redis 7
 * refuses declared KEYS of several slots with CROSSSLOT even with this flag; the flag lets the
 * script touch undeclared keys of any slots this node serves). Returns the values in order as
 * MGET does: nil for a missing key or one holding a non-string (GET's WRONGTYPE caught). Any other
 * error of a GET fails the whole call with it, above all a key this node does not serve ("Script
 * attempted to access a non local key": a slot moved or moving), so a value is never made up.
 * GET under pcall costs the server about a quarter less than an MGET of each key. `no-writes` so it
 * runs on a full (OOM) node as MGET does. Needs Redis ≥ 7 (the shebang): an older server's error
 * sends the caller back to MGET per slot.
 */
export const mgetOnNode = make(`#!lua flags=allow-cross-slot-keys,no-writes
local out = {}
for i, key in ipairs(ARGV) do
  local value = redis.pcall('GET', key)
  if type(value) == 'table' then
    if value.err == nil or string.sub(value.err, 1, 9) ~= 'WRONGTYPE' then return value end
    value = false
  end
  out[i] = value
end
return out
`)
