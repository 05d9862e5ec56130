/**
 * The Lua scripts, registered on a connection with ioredis's `defineCommand` (it sends
 * EVALSHA, and EVAL when Redis does not have the script yet, e.g. after a restart).
 *
 * One publish is one script: XADD to the channel's stream (the id), trim it, and
 * publish the message with that id. Redis runs scripts one at a time, so the pub/sub
 * order is the stream order, and every instance delivers only what its subscription
 * hears: one order everywhere, and nothing twice. On a cluster the script publishes
 * with SPUBLISH to a shard channel named like the stream key, so both live in one
 * hash slot and the step stays atomic on the shard that owns it.
 */
import type { Cluster, Redis } from 'ioredis'
import { PUBLISH_ID_MAX_COUNTER, PUBLISH_ID_MAX_HEAD, timestampField } from './codec.js'
import type { ChannelKeys } from './keys.js'

/** The keys a publish writes: the stream and its publish ids. */
export type PublishKeys = Pick<ChannelKeys, 'stream' | 'published' | 'publishedBefore'>

/**
 * Lua shared by the scripts. Ids may pass 2^53, so they are compared as decimal
 * strings. Eviction uses XDEL, oldest first, not XTRIM: only XDEL records the greatest
 * deleted id (XINFO STREAM's max-deleted-entry-id, Redis 7), which tells an evicted
 * Last-Event-ID (replay would have a gap) from the last one evicted (no gap). Trimming
 * is exact, so `maxEvents` means what it means in memory; memory is freed per stream
 * node, as with `MAXLEN ~`.
 */
const LUA_HELPERS = `
local function decimal (a, b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  if a == b then return 0 end
  return a < b and -1 or 1
end
local function compare (a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  local byMs = decimal(ams, bms)
  if byMs ~= 0 then return byMs end
  return decimal(aseq, bseq)
end
local function evict (key, entries)
  local ids = {}
  for i, entry in ipairs(entries) do
    ids[#ids + 1] = entry[1]
    if #ids == 500 or i == #entries then
      redis.call('XDEL', key, unpack(ids))
      ids = {}
    end
  end
end
local function evictOlder (key, nowMs, maxAgeMs)
  if maxAgeMs > 0 then evict(key, redis.call('XRANGE', key, '-', string.format('(%d-0', nowMs - maxAgeMs))) end
end
`

/**
 * A generation of remembered publish ids holds the ids of this many publishes at most,
 * and this many at least when the history is that long (`maxEvents`; never under
 * {@link MIN_GENERATION}): a resend finds its first run among the newest one to two
 * generations. 128 fields or fewer keep Redis's compact hash encoding.
 */
export const MAX_GENERATION = 1024
const MIN_GENERATION = 128

/**
 * KEYS[1] the stream, also the (shard) channel; KEYS[2] and KEYS[3] the publish ids
 * (keys.ts `published`, `publishedBefore`); ARGV event, data, and the rest in one
 * argument ({@link publishArgument}): `maxEvents maxAgeMs ttlMs publishId since
 * publishedAt`, the channel's limits (maxAgeMs 0 for none; the time to live of the
 * stream in ms, renewed by each publish, so no history outlives its last use) and the
 * publish's own fields (`since` the newest id the publisher had seen, '0-0' for none;
 * publishedAt the publisher's clock, empty for none: only in the pub/sub message, see
 * codec.ts). One argument, not six: ioredis's work per command grows with its
 * arguments (about a tenth of a microsecond each, numbers more, per publish). The age
 * limit is measured on Redis's clock, the one that makes the ids.
 *
 * Idempotent: each publish carries an id unique to it (field `p`), and the script
 * remembers it with its entry's id in a hash beside the stream. A publish that finds
 * its id there answers with that entry's id instead of appending and publishing again.
 * ioredis resends a command whose connection closed before the reply (a Cluster
 * retries it on the refreshed slot map, after everything queued during a failover),
 * though the node may have run it: so such a publish is appended once, however many
 * publishes ran in between. The look is O(1), and only made when the stream has entries
 * the publisher had not seen (`since`), where a first run must be. The hash is bounded
 * by generations: when it holds {@link MAX_GENERATION} ids (or `maxEvents`, at least
 * {@link MIN_GENERATION}) it becomes the generation before, replacing the one there.
 * Both keys share the stream's time to live.
 *
 * Chained: the message carries its publish id and names the entry before it in this
 * stream by that entry's id and publish id ('-' for none), so a subscriber that
 * delivered another one last knows it missed something, or hears a writer that is not
 * the stream it follows (a woken master whose entries its successor does not have,
 * relayed to the shard): it catches up from the stream instead of delivering
 * (topics.ts). Both are needed. The two masters make ids from one clock, so the same
 * id can name different entries; and one publish can run on both (the woken master
 * from its socket's backlog, the successor when the client resends it), at different
 * ids: the woken master's next entry names the same publish id as the one before it.
 *
 * `hooks` add steps before and after the XADD (state.ts: its keys start at KEYS[4], its
 * arguments at ARGV[4]; `ttlMs` is the stream's time to live).
 */
export function appendScript (publish: 'PUBLISH' | 'SPUBLISH', hooks: { beforeAdd: string, afterAdd: string } = { beforeAdd: '', afterAdd: '' }): string {
  return LUA_HELPERS + `
local key, published, publishedBefore = KEYS[1], KEYS[2], KEYS[3]
local maxEvents, maxAgeMs, ttlMs, publishId, since, publishedAt = string.match(ARGV[3], '^(%d+) (%d+) (%d+) (%S+) (%S+) (%d*)$')
maxEvents, maxAgeMs = tonumber(maxEvents), tonumber(maxAgeMs)
local function publishIdOf (entry)
  local fields = entry[2]
  for i = 1, #fields - 1, 2 do
    if fields[i] == 'p' then return fields[i + 1] end
  end
  return nil
end
local newest = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)[1]
local newestPublish = newest and publishIdOf(newest)
if newestPublish == publishId then return newest[1] end
-- An entry written by someone else: a publish id the header cannot carry (codec.ts)
-- would make this message foreign to every subscriber. Named as none, it makes them
-- read the stream instead.
if newestPublish then
  local head, counter = string.match(newestPublish, '^([%w_%-]+)%.([%da-z]+)$')
  if not head or #head > ${PUBLISH_ID_MAX_HEAD} or #counter > ${PUBLISH_ID_MAX_COUNTER} then newestPublish = nil end
end
local previous = newestPublish and (newest[1] .. ' ' .. newestPublish) or '-'
-- An empty stream (its entries evicted by age) may have held the first run too.
if not newest or compare(newest[1], since) > 0 then
  local first = redis.call('HGET', published, publishId) or redis.call('HGET', publishedBefore, publishId)
  if first then return first end
end
${hooks.beforeAdd}
local id = redis.call('XADD', key, '*', 'e', ARGV[1], 'd', ARGV[2], 'p', publishId)
${hooks.afterAdd}
local excess = redis.call('XLEN', key) - maxEvents
if excess > 0 then evict(key, redis.call('XRANGE', key, '-', '+', 'COUNT', excess)) end
evictOlder(key, tonumber(string.match(id, '^%d+')), maxAgeMs)
redis.call('PEXPIRE', key, ttlMs)
redis.call('HSET', published, publishId, id)
redis.call('PEXPIRE', published, ttlMs)
if redis.call('HLEN', published) >= math.max(${MIN_GENERATION}, math.min(${MAX_GENERATION}, maxEvents)) then
  redis.call('RENAME', published, publishedBefore)
end
redis.call('${publish}', key, id .. ' ' .. publishId .. ' ' .. previous .. '\\n' .. publishedAt .. '\\n' .. ARGV[1] .. '\\n' .. ARGV[2])
return id
`
}

/**
 * A channel's limits as the append script takes them (the start of its last argument,
 * made once per channel): history length, age limit (0 for none), the time to live of
 * its keys.
 *
 * @example
 * publishLimits(1000, 0, 86_400_000) // '1000 0 86400000'
 */
export function publishLimits (maxEvents: number, maxAgeMs: number, ttlMs: number): string {
  return `${maxEvents} ${maxAgeMs} ${ttlMs}`
}

/**
 * The append script's last argument: the channel's limits ({@link publishLimits}), then
 * the publish id, `since` and publishedAt (see {@link appendScript}).
 *
 * @example
 * publishArgument('1000 0 86400000', 'k3Jx.1', '0-0', 1718000000000) // '1000 0 86400000 k3Jx.1 0-0 1718000000000'
 */
export function publishArgument (limits: string, publishId: string, since: string, publishedAt: number | undefined): string {
  return `${limits} ${publishId} ${since} ${timestampField(publishedAt)}`
}

/** Entries a page read takes from the stream at a time (its overshoot past the byte limit). */
const PAGE_STEP = 8

/**
 * KEYS[1] the stream; ARGV the last id delivered (checked against ID_PATTERN; '' for
 * every entry retained; '0-0' for every entry ever added), maxAgeMs, then the page:
 * entries at most and payload bytes at most (0: no limit; one entry always fits).
 * 'unknown': an id this stream never reached, or one from before it began (a Redis
 * that restarted empty); 'evicted': an entry after the id was deleted. 'ok' comes with
 * the entries and 1 when no entry followed them (0 when the page filled up first).
 *
 * A page is read PAGE_STEP entries at a time and stops at its byte limit: what the
 * script holds, and the reply Redis buffers, stay about that limit (plus one step)
 * however long the stream, so concurrent replays cost Redis a bounded amount.
 */
const READ_SCRIPT = LUA_HELPERS + `
local key, after = KEYS[1], ARGV[1]
local maxEntries, maxBytes = tonumber(ARGV[3]), tonumber(ARGV[4])
if redis.call('EXISTS', key) == 0 then return (after == '' or after == '0-0') and {'ok', {}, 1} or {'unknown'} end
local now = redis.call('TIME')
evictOlder(key, now[1] * 1000 + math.floor(now[2] / 1000), tonumber(ARGV[2]))
local function page (from)
  if maxEntries == 0 then return {'ok', redis.call('XRANGE', key, from, '+'), 1} end
  local out, bytes = {}, 0
  while true do
    local want = math.min(${PAGE_STEP}, maxEntries - #out)
    local step = redis.call('XRANGE', key, from, '+', 'COUNT', want)
    for _, entry in ipairs(step) do
      out[#out + 1] = entry
      for i = 2, #entry[2], 2 do bytes = bytes + #entry[2][i] end
      if maxBytes > 0 and bytes >= maxBytes then return {'ok', out, 0} end
    end
    if #step < want then return {'ok', out, 1} end
    if #out == maxEntries then return {'ok', out, 0} end
    from = '(' .. step[#step][1]
  end
end
if after == '' then return page('-') end
local info = redis.call('XINFO', 'STREAM', key)
local field = {}
for i = 1, #info, 2 do field[info[i]] = info[i + 1] end
if compare(after, field['last-generated-id']) > 0 then return {'unknown'} end
local deleted = field['max-deleted-entry-id']
if compare(after, deleted) < 0 then return {'evicted'} end
local first = field['first-entry']
if after ~= '0-0' and deleted == '0-0' and first and compare(after, first[1]) < 0 then return {'unknown'} end
return page('(' .. after)
`

/**
 * KEYS[1] the stream; ARGV[1] an id delivered from it, ARGV[2] the publish id it was
 * delivered with ('' when unknown). 0 when the stream never held that entry: a catch-up
 * must not start there (a woken master's entry, or one its replica never received, sits
 * among ids the new master gave to other entries). The publish id tells the entry from
 * another one with the same id: the woken master and its successor make ids from the
 * same clock, so both can give out `<ms>-0` in one millisecond. 1 when it holds it, or
 * when the read script decides (no stream, or evicted).
 */
const CONTAINS_SCRIPT = LUA_HELPERS + `
local key, id, publishId = KEYS[1], ARGV[1], ARGV[2]
if id == '0-0' or redis.call('EXISTS', key) == 0 then return 1 end
local entry = redis.call('XRANGE', key, id, id)[1]
if entry then
  if publishId == '' then return 1 end
  local fields = entry[2]
  for i = 1, #fields - 1, 2 do
    if fields[i] == 'p' then return fields[i + 1] == publishId and 1 or 0 end
  end
  return 1
end
local info = redis.call('XINFO', 'STREAM', key)
for i = 1, #info, 2 do
  if info[i] == 'max-deleted-entry-id' then return compare(id, info[i + 1]) <= 0 and 1 or 0 end
end
return 0
`

/** KEYS[1] the stream: its last generated id (also when trimmed empty), '0-0' when there is no stream. */
const POSITION_SCRIPT = `
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return '0-0' end
local info = redis.call('XINFO', 'STREAM', key)
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then return info[i + 1] end
end
return '0-0'
`

/** What the read script answers: `['ok', entries, 1 when last]`, `['evicted']` or `['unknown']`. */
export type ReadReply = ['ok', unknown, 0 | 1] | ['evicted'] | ['unknown']

/** The scripts, bound to the connection they were registered on. */
export interface Scripts {
  /**
   * Appends to the stream, trims it, sets its time to live, publishes (with
   * `publishedAt`, epoch ms); resolves with the new id, or with the entry's id when
   * `publishId` was appended already.
   */
  append (keys: PublishKeys, event: string, data: string, limits: string, publishId: string, since: string, publishedAt?: number): Promise<string>
  /** Entries after `after` (see READ_SCRIPT for '' and '0-0'), after evicting by age. */
  read (key: string, after: string, maxAgeMs: number): Promise<ReadReply>
  /** {@link read}, one page of at most `maxEntries` entries and (once one is in) `maxBytes` of payload. */
  readPage (key: string, after: string, maxAgeMs: number, maxEntries: number, maxBytes: number): Promise<ReadReply>
  /** The stream's last generated id, '0-0' when it has none: where a new subscription starts. */
  position (key: string): Promise<string>
  /** False when the stream never held `id`, or held it for another publish than `publishId` (see CONTAINS_SCRIPT). */
  contains (key: string, id: string, publishId: string | undefined): Promise<boolean>
}

/** The methods `defineCommand` adds (ioredis types them only by declaration merging). */
interface Defined {
  typedSseAppend (key: string, published: string, publishedBefore: string, event: string, data: string, publish: string): Promise<string>
  typedSseRead (key: string, after: string, maxAgeMs: number, maxEntries: number, maxBytes: number): Promise<ReadReply>
  typedSsePosition (key: string): Promise<string>
  typedSseContains (key: string, id: string, publishId: string): Promise<number>
}

/**
 * Registers the scripts on `redis` (the engine's own command connection).
 *
 * @param sharded publish with SPUBLISH (a cluster's shard channels) instead of PUBLISH
 * @example
 * const scripts = defineScripts(commands, false)
 * const id = await scripts.append(channelKeys('sse:ch:{scores}'), 'score', '{"seq":1}', publishLimits(1000, 0, 86_400_000), 'k3Jx.1', '0-0', Date.now())
 */
export function defineScripts (redis: Redis | Cluster, sharded: boolean): Scripts {
  redis.defineCommand('typedSseAppend', { numberOfKeys: 3, lua: appendScript(sharded ? 'SPUBLISH' : 'PUBLISH') })
  redis.defineCommand('typedSseRead', { numberOfKeys: 1, lua: READ_SCRIPT })
  redis.defineCommand('typedSsePosition', { numberOfKeys: 1, lua: POSITION_SCRIPT, readOnly: true })
  redis.defineCommand('typedSseContains', { numberOfKeys: 1, lua: CONTAINS_SCRIPT, readOnly: true })
  const defined = redis as unknown as Defined
  // ioredis's promises are returned as they are: an async wrapper would add a promise
  // and a microtask to every publish.
  return {
    append: (keys, event, data, limits, publishId, since, publishedAt) => defined.typedSseAppend(keys.stream, keys.published, keys.publishedBefore, event, data, publishArgument(limits, publishId, since, publishedAt)),
    read: (key, after, maxAgeMs) => defined.typedSseRead(key, after, maxAgeMs, 0, 0),
    readPage: (key, after, maxAgeMs, maxEntries, maxBytes) => defined.typedSseRead(key, after, maxAgeMs, maxEntries, maxBytes),
    position: (key) => defined.typedSsePosition(key),
    contains: async (key, id, publishId) => await defined.typedSseContains(key, id, publishId ?? '') === 1
  }
}
