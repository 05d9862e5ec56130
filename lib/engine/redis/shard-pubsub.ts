/**
 * Subscriptions on a Redis Cluster with sharded pub/sub (SSUBSCRIBE, Redis 7): one
 * connection per master that owns a subscribed key's slot (not one per channel), keys
 * grouped by that master. When a master goes (failover) or a slot moves (Redis sends
 * an unsolicited SUNSUBSCRIBE), the keys it served are reported lost; the topics then
 * resubscribe them where the refreshed slot map says, and catch up.
 *
 * A subscription follows the slot map, not just its socket. A master frozen past
 * cluster-node-timeout keeps its sockets open while its replica takes over; when it
 * wakes it runs the publishes waiting in them and tells the subscriptions still open
 * on it, about entries the cluster will drop. So each shard connection is pinged (one
 * that does not answer within the command timeout is dropped), the slot map is read
 * again every few seconds, a key whose slot the map gives to another node is moved
 * there, and a message from a node the map no longer names for the key is not
 * delivered.
 */
import { Redis, type Cluster, type RedisOptions } from 'ioredis'
import { quit, unavailable, whenReady } from './connections.js'
import { slotOf } from './slot.js'
import type { PubSub, PubSubEvents } from './pubsub.js'

/** Retries of a subscription that failed (a master gone, a slot map not refreshed yet) back off up to this. */
const MAX_RETRY_DELAY_MS = 1000
/** Each shard connection is pinged this often (a frozen master answers nothing)... */
const HEALTH_INTERVAL_MS = 500
/** ...and the slot map read again every this many pings (a failover the sockets did not show). */
const REFRESH_EVERY = 10

/** `keys` grouped by hash slot. */
function bySlot (keys: readonly string[]): string[][] {
  const groups = new Map<number, string[]>()
  for (const key of keys) groups.set(slotOf(key), [...groups.get(slotOf(key)) ?? [], key])
  return [...groups.values()]
}

/** One master's subscriber connection and the keys it serves. */
interface Shard {
  readonly connection: Redis
  readonly keys: Set<string>
}

/**
 * The subscriber side of the engine on a cluster.
 *
 * @example
 * const subscriber = new ShardPubSub(cluster, events, nodeOptions, 2000)
 */
export class ShardPubSub implements PubSub {
  readonly #cluster: Cluster
  readonly #events: PubSubEvents
  readonly #options: RedisOptions
  readonly #waitMs: number
  /** By node key (`host:port`). */
  readonly #shards = new Map<string, Shard>()
  /** The node key serving each subscribed key. */
  readonly #nodeOf = new Map<string, string>()
  #retries = 0
  #retryTimer: NodeJS.Timeout | undefined
  #healthTimer: NodeJS.Timeout | undefined
  #healthRounds = 0
  #isClosed = false

  /**
   * @param cluster the engine's command connection: its slot map says which master owns a key
   * @param options settings of the per-master connections (the engine's, with the user's auth and TLS)
   * @param waitMs how long a subscribe waits for a new connection
   */
  constructor (cluster: Cluster, events: PubSubEvents, options: RedisOptions, waitMs: number) {
    this.#cluster = cluster
    this.#events = events
    this.#options = options
    this.#waitMs = waitMs
    // A refreshed slot map may name new masters: move what it moved, subscribe what is not subscribed.
    cluster.on('refresh', () => {
      this.#followSlotMap()
      events.ready()
    })
    cluster.on('ready', () => events.ready())
  }

  get isReady (): boolean {
    if (this.#cluster.status !== 'ready') return false
    for (const shard of this.#shards.values()) if (shard.connection.status !== 'ready') return false
    return true
  }

  canSubscribe (key: string): boolean {
    // While a retry waits (a master just went), calls fail at once instead of each
    // opening a connection to a node that may be gone; the retry resubscribes.
    return !this.#isClosed && this.#cluster.status === 'ready' && this.#retryTimer === undefined && this.#master(key) !== undefined
  }

  async subscribe (keys: readonly string[]): Promise<void> {
    const groups = new Map<string, string[]>()
    for (const key of keys) {
      const node = this.#master(key)
      if (node === undefined) throw unavailable(`no master serves the slot of "${key}"`)
      groups.set(node, [...groups.get(node) ?? [], key])
    }
    try {
      await Promise.all([...groups].map(async ([node, group]) => await this.#subscribeOn(node, group)))
      this.#retries = 0
    } catch (err) {
      // A master gone or a slot moved: ask the cluster again, and retry when it answers.
      this.#scheduleRetry()
      throw unavailable('the cluster refused the subscription', err)
    }
  }

  unsubscribe (key: string): void {
    const node = this.#nodeOf.get(key)
    this.#nodeOf.delete(key)
    const shard = node === undefined ? undefined : this.#shards.get(node)
    if (shard === undefined) return
    shard.keys.delete(key)
    if (shard.connection.status === 'ready') shard.connection.sunsubscribe(key).catch(() => {})
  }

  async sync (key: string): Promise<void> {
    const node = this.#nodeOf.get(key)
    const connection = node === undefined ? undefined : this.#shards.get(node)?.connection
    if (connection?.status !== 'ready') throw unavailable(`the shard subscription of "${key}" is not up`)
    try {
      await connection.ping()
    } catch (err) {
      throw unavailable('the shard subscription connection failed', err)
    }
  }

  async whenReady (deadline: number): Promise<boolean> {
    return await whenReady(this.#cluster, deadline)
  }

  async close (): Promise<void> {
    this.#isClosed = true
    clearTimeout(this.#retryTimer)
    clearInterval(this.#healthTimer)
    const shards = [...this.#shards.values()]
    this.#shards.clear()
    this.#nodeOf.clear()
    await Promise.all(shards.map(async (shard) => await quit(shard.connection)))
  }

  /** The node key of the master owning `key`'s slot, by the cluster's current map. */
  #master (key: string): string | undefined {
    return this.#cluster.slots[slotOf(key)]?.[0]
  }

  async #subscribeOn (node: string, keys: string[]): Promise<void> {
    const shard = this.#shard(node)
    // Recorded first: if the connection drops before the confirmation, these are lost too.
    for (const key of keys) {
      // Left where an earlier attempt put it (one that failed, or was overtaken): stop hearing it there.
      if (this.#nodeOf.get(key) !== node) this.unsubscribe(key)
      shard.keys.add(key)
      this.#nodeOf.set(key, node)
    }
    if (!await whenReady(shard.connection, Date.now() + this.#waitMs)) throw unavailable(`the master ${node} did not answer`)
    // A later attempt may have taken some keys elsewhere while this one waited.
    const owned = keys.filter((key) => this.#nodeOf.get(key) === node)
    // One SSUBSCRIBE per slot: Redis refuses channels of several slots in one (CROSSSLOT).
    await Promise.all(bySlot(owned).map(async (group) => await shard.connection.ssubscribe(...group)))
  }

  /** The connection to `node`, opened on first use; it is not reopened when it drops (the node may be gone). */
  #shard (node: string): Shard {
    const existing = this.#shards.get(node)
    if (existing !== undefined) return existing
    const colon = node.lastIndexOf(':')
    const connection = new Redis({ ...this.#options, host: node.slice(0, colon), port: Number(node.slice(colon + 1)), retryStrategy: () => null })
    const shard: Shard = { connection, keys: new Set() }
    this.#shards.set(node, shard)
    connection.on('error', () => {})
    connection.on('smessage', (key: string, text: string) => {
      // Only the connection that serves a key now speaks for it: one the key moved away
      // from (a dropped or overtaken attempt, a moved slot) may still hear it for a while.
      if (this.#nodeOf.get(key) !== node || this.#shards.get(node) !== shard) return
      // Nor does a node the slot map gives the key's slot to no longer (a woken master
      // telling of entries its successor does not have): move the key instead.
      if (this.#master(key) !== node) {
        this.#followSlotMap()
        return
      }
      this.#events.message(key, text)
    })
    // ioredis emits 'moved' for an unsolicited SUNSUBSCRIBE: a slot this node served moved away.
    connection.on('moved', () => this.#drop(node, shard, true))
    connection.on('close', () => this.#drop(node, shard, false))
    this.#startHealthChecks()
    return shard
  }

  /** Pings every shard connection while there are any; see the module comment. */
  #startHealthChecks (): void {
    if (this.#healthTimer !== undefined || this.#isClosed) return
    const pending = new WeakSet<Shard>()
    this.#healthTimer = setInterval(() => {
      if (this.#shards.size === 0) {
        clearInterval(this.#healthTimer)
        this.#healthTimer = undefined
        return
      }
      if (++this.#healthRounds % REFRESH_EVERY === 0) this.#cluster.refreshSlotsCache()
      for (const shard of this.#shards.values()) {
        if (shard.connection.status !== 'ready' || pending.has(shard)) continue
        pending.add(shard)
        // The connection's own commandTimeout bounds the ping; a silent node is dropped
        // ('close' reports its keys lost), so nothing it says when it wakes is heard.
        shard.connection.ping().catch(() => shard.connection.disconnect()).finally(() => pending.delete(shard))
      }
    }, HEALTH_INTERVAL_MS)
    this.#healthTimer.unref()
  }

  /** Moves every key the slot map now gives to another node than the one serving it. */
  #followSlotMap (): void {
    for (const [node, shard] of this.#shards) {
      const moved = [...shard.keys].filter((key) => this.#master(key) !== undefined && this.#master(key) !== node)
      if (moved.length > 0) this.#move(node, shard, moved)
    }
  }

  /** Stops serving `keys` on `node` and reports them lost: the topics resubscribe them where the map says, with a catch-up. */
  #move (node: string, shard: Shard, keys: string[]): void {
    for (const key of keys) {
      shard.keys.delete(key)
      if (this.#nodeOf.get(key) === node) this.#nodeOf.delete(key)
    }
    if (shard.connection.status === 'ready') for (const group of bySlot(keys)) shard.connection.sunsubscribe(...group).catch(() => {})
    this.#events.lost(keys)
    this.#scheduleRetry()
  }

  /** Reports the keys `shard` served as lost, and looks for where they are served now. */
  #drop (node: string, shard: Shard, isMoved: boolean): void {
    if (this.#shards.get(node) !== shard) return
    const keys = [...shard.keys]
    shard.keys.clear()
    for (const key of keys) if (this.#nodeOf.get(key) === node) this.#nodeOf.delete(key)
    if (!isMoved) {
      this.#shards.delete(node)
    } else if (keys.length > 0 && shard.connection.status === 'ready') {
      // Those still served here are subscribed again below, with a catch-up each.
      for (const group of bySlot(keys)) shard.connection.sunsubscribe(...group).catch(() => {})
    }
    if (keys.length > 0) this.#events.lost(keys)
    if (!this.#isClosed) this.#cluster.refreshSlotsCache()
    this.#scheduleRetry()
  }

  /** Asks the cluster for its slot map again after a back-off, then lets the topics resubscribe. */
  #scheduleRetry (): void {
    if (this.#isClosed || this.#retryTimer !== undefined) return
    const delay = Math.min(50 * 2 ** this.#retries++, MAX_RETRY_DELAY_MS)
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined
      if (this.#isClosed) return
      this.#cluster.refreshSlotsCache()
      this.#events.ready()
    }, delay)
    this.#retryTimer.unref()
  }
}
