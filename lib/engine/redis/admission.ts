/**
 * Streams per key counted across instances (the plugin's `maxStreamsPerKey` for the
 * whole deployment): an {@link AdmissionStore} in Redis.
 *
 * Per stream key, a sorted set of leases (`<instance id>:<n>`) scored by the time they
 * expire, on Redis's clock (instances' clocks may disagree; the server's is the one
 * that judges). Taking a slot is one script: drop the expired leases, count, add when
 * below the limit. Each instance renews the leases it holds on a timer, every third of
 * their time to live, with one command per key, all sent at once (one pipeline on a
 * single Redis). An instance that dies stops renewing, so its leases expire: no
 * instance has to notice that another is gone. A renewal re-adds a lease that is
 * missing (Redis restarted empty, or was away past the lease's time to live), so the
 * count is whole again one renewal after Redis is back.
 *
 * The key itself expires with its longest lease (a shorter `leaseTtlMs` on another
 * instance never cuts it short).
 *
 * The key is `<prefix>admission:{<stream key>}` (keys.ts): the stream key is the hash
 * tag, so on a cluster the keys spread over the shards, and no key can be a channel's.
 */
import { randomBytes } from 'node:crypto'
import type { AdmissionLease, AdmissionStore } from '../engine.js'
import type { Commands } from './commands.js'
import { admissionKey } from './keys.js'

/** What the store needs of the engine. */
export interface AdmissionSettings {
  /** The engine's key prefix. */
  readonly prefix: string
  /** A lease not renewed for this long expires (an instance that died lets its slots go). */
  readonly leaseTtlMs: number
  /** Without Redis: `'refuse'` rejects `acquire` (the plugin answers 503), `'admit'` lets this instance's own count decide. */
  readonly whenUnavailable: 'refuse' | 'admit'
  /** Pipelines need every key on one node: true on a cluster, where renewals go one by one. */
  readonly isCluster: boolean
}

/**
 * KEYS[1] the key's leases; ARGV limit, lease time to live (ms), lease id. 1 when the
 * lease was added, 0 when the key is at its limit.
 */
const ACQUIRE_SCRIPT = `
local key, limit, ttl = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local now = redis.call('TIME')
local nowMs = now[1] * 1000 + math.floor(now[2] / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', nowMs)
if redis.call('ZCARD', key) >= limit then return 0 end
redis.call('ZADD', key, nowMs + ttl, ARGV[3])
if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
return 1
`

/**
 * KEYS[1] the key's leases; ARGV lease time to live (ms), then the ids of this
 * instance's leases of the key: each expires a time to live from now (added when
 * missing). ZADD in batches, as unpack() has a stack limit.
 */
const RENEW_SCRIPT = `
local key, ttl = KEYS[1], tonumber(ARGV[1])
local now = redis.call('TIME')
local expiresAt = now[1] * 1000 + math.floor(now[2] / 1000) + ttl
local batch = {}
for i = 2, #ARGV do
  batch[#batch + 1] = expiresAt
  batch[#batch + 1] = ARGV[i]
  if #batch == 1000 or i == #ARGV then
    redis.call('ZADD', key, unpack(batch))
    batch = {}
  end
end
if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
return #ARGV - 1
`

/** The methods `defineCommand` adds (ioredis types them only by declaration merging). */
interface Defined {
  typedSseAcquire (key: string, limit: number, ttlMs: number, id: string): Promise<0 | 1>
  typedSseRenew (key: string, ttlMs: number, ...ids: string[]): Promise<number>
}

/**
 * The Redis admission store of an engine, on its command connection.
 *
 * @example
 * const store = new RedisAdmission(commands, { prefix: 'sse:', leaseTtlMs: 15_000, whenUnavailable: 'refuse', isCluster: false })
 * const lease = await store.acquire('user-7', 6) // undefined: user-7 holds 6 streams already
 */
export class RedisAdmission implements AdmissionStore {
  readonly #commands: Commands
  readonly #settings: AdmissionSettings
  /** This process's part of every lease id, so ids of two instances never meet. */
  readonly #instance = randomBytes(8).toString('hex')
  /** The leases this instance holds, by Redis key: what it renews. */
  readonly #held = new Map<string, Set<string>>()
  readonly #timer: NodeJS.Timeout
  #leases = 0
  #isRenewing = false

  constructor (commands: Commands, settings: AdmissionSettings) {
    this.#commands = commands
    this.#settings = settings
    commands.connection.defineCommand('typedSseAcquire', { numberOfKeys: 1, lua: ACQUIRE_SCRIPT })
    commands.connection.defineCommand('typedSseRenew', { numberOfKeys: 1, lua: RENEW_SCRIPT })
    // A third of the time to live: a lease survives two renewals lost in a row.
    this.#timer = setInterval(() => { void this.#renew() }, Math.max(1, Math.floor(settings.leaseTtlMs / 3)))
    this.#timer.unref()
  }

  async acquire (key: string, limit: number): Promise<AdmissionLease | undefined> {
    const redisKey = admissionKey(this.#settings.prefix, key)
    const lease = { key: redisKey, id: `${this.#instance}:${++this.#leases}` }
    try {
      const added = await this.#commands.run(async (redis) => await (redis as unknown as Defined).typedSseAcquire(redisKey, limit, this.#settings.leaseTtlMs, lease.id))
      if (added === 0) return undefined
    } catch (err) {
      if (this.#settings.whenUnavailable === 'refuse') throw err
      // Admitted on this instance's count alone; held, so a renewal adds it once Redis is back.
    }
    let ids = this.#held.get(redisKey)
    if (ids === undefined) this.#held.set(redisKey, ids = new Set())
    ids.add(lease.id)
    return lease
  }

  release (lease: AdmissionLease): void {
    const ids = this.#held.get(lease.key)
    if (ids?.delete(lease.id) !== true) return
    if (ids.size === 0) this.#held.delete(lease.key)
    // Sent after any renewal that still named it (same connection, in order); if it
    // fails, the lease expires, as this instance no longer renews it.
    this.#commands.run(async (redis) => await redis.zrem(lease.key, lease.id)).catch(() => {})
  }

  /** Leases held by this instance now. */
  get size (): number {
    let size = 0
    for (const ids of this.#held.values()) size += ids.size
    return size
  }

  /** Stops renewing (the engine closes; leases not released expire). */
  close (): void {
    clearInterval(this.#timer)
  }

  async #renew (): Promise<void> {
    // A renewal still waiting on a hung Redis: the next one would only pile up behind it.
    if (this.#isRenewing || this.#held.size === 0 || !this.#commands.isReady) return
    this.#isRenewing = true
    const ttlMs = this.#settings.leaseTtlMs
    try {
      await this.#commands.run(async (redis) => {
        if (this.#settings.isCluster) {
          // Sent together (each to its key's node), without waiting for one another.
          await Promise.allSettled([...this.#held].map(async ([key, ids]) => await (redis as unknown as Defined).typedSseRenew(key, ttlMs, ...ids)))
          return
        }
        const pipeline = redis.pipeline()
        for (const [key, ids] of this.#held) (pipeline as unknown as Defined).typedSseRenew(key, ttlMs, ...ids)
        await pipeline.exec()
      })
    } catch {
      // Redis is away or hung: the next round tries again; leases outlive two lost rounds.
    } finally {
      this.#isRenewing = false
    }
  }
}
