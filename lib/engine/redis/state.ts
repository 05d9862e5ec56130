/**
 * Keyed state in Redis (channels with `state`): a hash beside the channel's stream
 * (keys.ts), field the state key, value `${id}\n${event}\n${data}` of the latest entry.
 * The publish script of a keyed event is the history's (scripts.ts) with two steps
 * added, so one script still appends, stores, trims and publishes: before the XADD it
 * refuses a new key past `maxKeys` (nothing appended, nothing published); after it,
 * it stores the entry under its key (or deletes the key for `sse:remove`). A snapshot
 * reads the hash and the stream's last id in one script: every entry up to that id is
 * in it (or replaced or removed since), none after, which is what lets a channel join
 * it with the live messages it held meanwhile. The hash and the stream share a hash tag
 * (one slot: scripts work on a cluster) and a time to live (renewed by every publish).
 */
import type { Cluster, Redis } from 'ioredis'
import { REMOVE_EVENT } from '../../core/control.js'
import type { EngineMessage, StateSnapshot } from '../engine.js'
import { compareIds, ID_PATTERN } from './ids.js'
import { appendScript, publishArgument, type PublishKeys } from './scripts.js'

/** What a keyed publish answers when the state is full: never an id (ids are `ms-seq`). */
export const STATE_FULL = 'full'

/** KEYS[4] the state hash (after the append's own keys); ARGV[4] the state key, ARGV[5] maxKeys. */
const STATE_HOOKS = {
  beforeAdd: `
local stateKey, itemKey = KEYS[4], ARGV[4]
if ARGV[1] ~= '${REMOVE_EVENT}' and redis.call('HEXISTS', stateKey, itemKey) == 0 and redis.call('HLEN', stateKey) >= tonumber(ARGV[5]) then return '${STATE_FULL}' end`,
  afterAdd: `
if ARGV[1] == '${REMOVE_EVENT}' then redis.call('HDEL', stateKey, itemKey) else redis.call('HSET', stateKey, itemKey, id .. '\\n' .. ARGV[1] .. '\\n' .. ARGV[2]) end
redis.call('PEXPIRE', stateKey, ttlMs)`
}

/** KEYS[1] the stream, KEYS[2] the state hash: `{ last generated id ('0-0' for none), HGETALL }`, read at once. */
const SNAPSHOT_SCRIPT = `
local position = '0-0'
if redis.call('EXISTS', KEYS[1]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then position = info[i + 1] end
  end
end
return {position, redis.call('HGETALL', KEYS[2])}
`

/** The methods `defineCommand` adds (ioredis types them only by declaration merging). */
interface Defined {
  typedSseAppendKeyed (stream: string, published: string, publishedBefore: string, state: string, event: string, data: string, publish: string,
    key: string, maxKeys: number): Promise<string>
  typedSseSnapshot (stream: string, state: string): Promise<[string, string[]]>
}

/** The state scripts, bound to the connection they were registered on. */
export interface StateScripts {
  /** The history's append (scripts.ts), storing the entry under `key` too: resolves with its id, or {@link STATE_FULL}. */
  append (keys: PublishKeys, state: string, event: string, data: string, limits: string, publishId: string,
    since: string, publishedAt: number | undefined, key: string, maxKeys: number): Promise<string>
  /** The state and the position it was read at. */
  snapshot (stream: string, state: string): Promise<StateSnapshot>
}

/**
 * Entries of the state hash as messages, in id order; values a channel could not have
 * written are left out (anyone with access to Redis can write there).
 *
 * @example
 * stateEntries(['ACME', '5-0\nprice\n{"symbol":"ACME"}']) // [{ id: '5-0', event: 'price', data: '{"symbol":"ACME"}' }]
 */
export function stateEntries (fields: unknown): EngineMessage[] {
  const entries: EngineMessage[] = []
  if (!Array.isArray(fields)) return entries
  for (let i = 1; i < fields.length; i += 2) {
    const value: unknown = fields[i]
    if (typeof value !== 'string') continue
    const first = value.indexOf('\n')
    const second = first === -1 ? -1 : value.indexOf('\n', first + 1)
    if (second === -1) continue
    const id = value.slice(0, first)
    const event = value.slice(first + 1, second)
    if (!ID_PATTERN.test(id) || event.length === 0) continue
    entries.push({ id, event, data: value.slice(second + 1) })
  }
  return entries.sort((a, b) => compareIds(a.id as string, b.id as string))
}

/**
 * Registers the state scripts on `redis` (the engine's command connection).
 *
 * @param sharded publish with SPUBLISH (a cluster's shard channels) instead of PUBLISH
 * @example
 * const scripts = defineStateScripts(commands, false)
 * const { entries, position } = await scripts.snapshot('sse:ch:{prices}', 'sse:ch:{prices}:state')
 */
export function defineStateScripts (redis: Redis | Cluster, sharded: boolean): StateScripts {
  redis.defineCommand('typedSseAppendKeyed', { numberOfKeys: 4, lua: appendScript(sharded ? 'SPUBLISH' : 'PUBLISH', STATE_HOOKS) })
  redis.defineCommand('typedSseSnapshot', { numberOfKeys: 2, lua: SNAPSHOT_SCRIPT, readOnly: true })
  const defined = redis as unknown as Defined
  return {
    append: (keys, state, event, data, limits, publishId, since, publishedAt, key, maxKeys) =>
      defined.typedSseAppendKeyed(keys.stream, keys.published, keys.publishedBefore, state, event, data, publishArgument(limits, publishId, since, publishedAt), key, maxKeys),
    async snapshot (stream, state) {
      const [position, fields] = await defined.typedSseSnapshot(stream, state)
      return { entries: stateEntries(fields), position: position === '0-0' ? undefined : position }
    }
  }
}
