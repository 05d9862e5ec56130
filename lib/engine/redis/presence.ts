/**
 * Presence in Redis (channels with `presence`), on three keys beside the channel's
 * stream (keys.ts, one hash slot, so every step is one script, also on a cluster):
 *
 *   members  hash   `<instance> <member>` -> `<connections>\n<info JSON>`: what each instance holds
 *   counts   hash   `<member>` -> connections on every instance: a member joins at 1, leaves at 0
 *   leases   zset   `<instance>` scored by when its lease expires, on Redis's clock
 *
 * Each instance renews its lease on every presence channel it holds members of, every
 * third of `presenceLeaseMs`, and sweeps: the members of an instance whose lease expired
 * (a crash, kill -9: it never said goodbye) are taken out of the counts, and those that
 * reach 0 are returned, so the sweeping instance announces their `sse:leave`. A sweep is
 * one script, so two instances sweeping at once announce each member once. The keys
 * expire three leases after the last renewal, when every instance is gone.
 */
import { randomBytes } from 'node:crypto'
import type { EnginePresence, PresenceRecord } from '../engine.js'
import type { Commands } from './commands.js'
import { channelKeys, type ChannelKeys } from './keys.js'

const NOW_MS = `
local now = redis.call('TIME')
local nowMs = now[1] * 1000 + math.floor(now[2] / 1000)
`

/** KEYS members, counts, leases; ARGV instance, member, info, lease ms. 1 when it is the member's first connection anywhere. */
const JOIN_SCRIPT = NOW_MS + `
local lease = tonumber(ARGV[4])
redis.call('ZADD', KEYS[3], nowMs + lease, ARGV[1])
local field = ARGV[1] .. ' ' .. ARGV[2]
local held = redis.call('HGET', KEYS[1], field)
local count = held and tonumber(string.match(held, '^(%d+)')) or 0
redis.call('HSET', KEYS[1], field, (count + 1) .. '\\n' .. ARGV[3])
local total = redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], 3 * lease) end
return total == 1 and 1 or 0
`

/** KEYS members, counts; ARGV instance, member. 1 when it was the member's last connection anywhere. */
const LEAVE_SCRIPT = `
local field = ARGV[1] .. ' ' .. ARGV[2]
local held = redis.call('HGET', KEYS[1], field)
if not held then return 0 end
local count, info = string.match(held, '^(%d+)\\n(.*)$')
count = tonumber(count) - 1
if count > 0 then redis.call('HSET', KEYS[1], field, count .. '\\n' .. info) else redis.call('HDEL', KEYS[1], field) end
local total = redis.call('HINCRBY', KEYS[2], ARGV[2], -1)
if total > 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[2])
return 1
`

/**
 * KEYS members, counts, leases; ARGV instance to renew ('' for none), lease ms, '1' to
 * list. Renews, drops expired instances' members, and answers `{ members that left,
 * HGETALL members (when listing) }`.
 */
const SWEEP_SCRIPT = NOW_MS + `
local lease = tonumber(ARGV[2])
if ARGV[1] ~= '' then
  redis.call('ZADD', KEYS[3], nowMs + lease, ARGV[1])
  for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], 3 * lease) end
end
local left = {}
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', nowMs)
if #expired > 0 then
  local gone = {}
  for _, instance in ipairs(expired) do
    gone[instance] = true
    redis.call('ZREM', KEYS[3], instance)
  end
  local fields = redis.call('HGETALL', KEYS[1])
  for i = 1, #fields, 2 do
    local instance, member = string.match(fields[i], '^(%S+) (.*)$')
    if instance and gone[instance] then
      redis.call('HDEL', KEYS[1], fields[i])
      local total = redis.call('HINCRBY', KEYS[2], member, -tonumber(string.match(fields[i + 1], '^(%d+)')))
      if total <= 0 then
        redis.call('HDEL', KEYS[2], member)
        left[#left + 1] = member
      end
    end
  end
end
if ARGV[3] == '1' then return {left, redis.call('HGETALL', KEYS[1])} end
return {left, {}}
`

/** The methods `defineCommand` adds (ioredis types them only by declaration merging). */
interface Defined {
  typedSsePresenceJoin (members: string, counts: string, leases: string, instance: string, member: string, info: string, leaseMs: number): Promise<0 | 1>
  typedSsePresenceLeave (members: string, counts: string, instance: string, member: string): Promise<0 | 1>
  typedSsePresenceSweep (members: string, counts: string, leases: string, instance: string, leaseMs: number, list: '0' | '1'): Promise<[string[], string[]]>
}

/** The member records of a members hash (HGETALL), added up per member across instances. */
function records (fields: unknown): PresenceRecord[] {
  const byId = new Map<string, { info: string, connections: number }>()
  if (!Array.isArray(fields)) return []
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const field: unknown = fields[i]
    const value: unknown = fields[i + 1]
    if (typeof field !== 'string' || typeof value !== 'string') continue
    const space = field.indexOf(' ')
    const newline = value.indexOf('\n')
    const connections = Number(value.slice(0, newline))
    if (space === -1 || newline === -1 || !(connections > 0)) continue
    const id = field.slice(space + 1)
    const held = byId.get(id)
    if (held === undefined) byId.set(id, { info: value.slice(newline + 1), connections })
    else held.connections += connections
  }
  return [...byId].map(([id, { info, connections }]) => ({ id, info, connections }))
}

/**
 * The presence of every channel of one engine: the scripts, this instance's id, and
 * the renewal timer.
 *
 * @example
 * const presences = new RedisPresences(commands, 15_000)
 * const presence = presences.open('sse:ch:{room}', (left) => listener.left?.(left))
 */
export class RedisPresences {
  readonly #commands: Commands
  readonly #leaseMs: number
  /** This process's part of every members field, so two instances never share one. */
  readonly #instance = randomBytes(8).toString('hex')
  readonly #open = new Set<ChannelPresenceState>()
  readonly #timer: NodeJS.Timeout

  constructor (commands: Commands, leaseMs: number) {
    this.#commands = commands
    this.#leaseMs = leaseMs
    commands.connection.defineCommand('typedSsePresenceJoin', { numberOfKeys: 3, lua: JOIN_SCRIPT })
    commands.connection.defineCommand('typedSsePresenceLeave', { numberOfKeys: 2, lua: LEAVE_SCRIPT })
    commands.connection.defineCommand('typedSsePresenceSweep', { numberOfKeys: 3, lua: SWEEP_SCRIPT })
    // A third of the lease: a lease survives two renewals lost in a row.
    this.#timer = setInterval(() => { this.#renew() }, Math.max(1, Math.floor(leaseMs / 3)))
    this.#timer.unref()
  }

  /**
   * The presence of one channel on this instance; `left` hears the members an expired
   * lease took away (announced by this instance). `close()` it with the channel.
   */
  open (channel: string, left: (members: readonly string[]) => void): EnginePresence & { close: () => void } {
    const keys = channelKeys(channel)
    const state: ChannelPresenceState = { keys, left, connections: 0 }
    this.#open.add(state)
    const defined = (): Defined => this.#commands.connection as unknown as Defined
    return {
      join: async (member, info) => {
        state.connections++
        return await this.#commands.run(async () => await defined().typedSsePresenceJoin(keys.members, keys.counts, keys.leases, this.#instance, member, info, this.#leaseMs)) === 1
      },
      leave: async (member) => {
        state.connections--
        return await this.#commands.run(async () => await defined().typedSsePresenceLeave(keys.members, keys.counts, this.#instance, member)) === 1
      },
      list: async () => {
        const [left, fields] = await this.#sweep(state, true)
        if (left.length > 0) state.left(left)
        return records(fields)
      },
      close: () => { this.#open.delete(state) }
    }
  }

  /** Stops renewing (the engine closes): this instance's members leave when its leases expire. */
  close (): void {
    clearInterval(this.#timer)
  }

  #renew (): void {
    if (!this.#commands.isReady) return
    for (const state of this.#open) {
      this.#sweep(state, false).then(([left]) => { if (left.length > 0) state.left(left) }, () => {
        // Redis is away or hung: the next round tries again; a lease outlives two lost rounds.
      })
    }
  }

  async #sweep (state: ChannelPresenceState, isListing: boolean): Promise<[string[], string[]]> {
    const { members, counts, leases } = state.keys
    const instance = state.connections > 0 ? this.#instance : ''
    return await this.#commands.run(async () => await (this.#commands.connection as unknown as Defined).typedSsePresenceSweep(members, counts, leases, instance, this.#leaseMs, isListing ? '1' : '0'))
  }
}

interface ChannelPresenceState {
  readonly keys: ChannelKeys
  readonly left: (members: readonly string[]) => void
  /** Connections this instance holds on the channel: its lease is renewed while there are any. */
  connections: number
}
