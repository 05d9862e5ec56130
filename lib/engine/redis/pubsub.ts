/**
 * Subscriptions as the topics see them: subscribe keys, hear their messages, learn
 * when subscriptions are lost, and a round trip that proves every message published
 * before it has arrived. One Redis has one subscriber connection (SUBSCRIBE); a
 * cluster has one per shard (SSUBSCRIBE, shard-pubsub.ts).
 */
import type { Redis } from 'ioredis'
import { isTimeout, quit, reset, unavailable, whenReady } from './connections.js'

/** What a pub/sub connection tells the topics. */
export interface PubSubEvents {
  /** A message on a subscribed key. */
  message (key: string, text: string): void
  /** These keys are no longer subscribed (a connection closed, a shard moved); `undefined`: all. */
  lost (keys: readonly string[] | undefined): void
  /** A connection is (back) up: subscribe what is not subscribed. */
  ready (): void
}

/** The subscription side of the engine. */
export interface PubSub {
  /** True when `key` can be subscribed now (its connection is up). */
  canSubscribe (key: string): boolean
  /** Subscribes the keys; resolves once Redis confirmed, rejects with the coded error. */
  subscribe (keys: readonly string[]): Promise<void>
  /** Stops hearing `key` (best effort: a lost connection forgets it anyway). */
  unsubscribe (key: string): void
  /**
   * Resolves after a round trip on the connection that hears `key`: Redis sends that
   * reply after every message published before it, so they have all arrived.
   */
  sync (key: string): Promise<void>
  /** Every connection is up. */
  readonly isReady: boolean
  /** Resolves when every connection is up, false when `deadline` passes first. */
  whenReady (deadline: number): Promise<boolean>
  /** Quits the connections. */
  close (): Promise<void>
}

/**
 * One subscriber connection to one Redis (classic pub/sub).
 *
 * @example
 * const subscriber = new SinglePubSub(commands.duplicate(options), events)
 */
export class SinglePubSub implements PubSub {
  readonly connection: Redis

  constructor (connection: Redis, events: PubSubEvents) {
    this.connection = connection
    connection.on('message', (key: string, text: string) => events.message(key, text))
    connection.on('ready', () => events.ready())
    connection.on('close', () => events.lost(undefined))
  }

  get isReady (): boolean {
    return this.connection.status === 'ready'
  }

  canSubscribe (): boolean {
    return this.isReady
  }

  async subscribe (keys: readonly string[]): Promise<void> {
    await this.#call('Redis refused the subscription', async () => await this.connection.subscribe(...keys))
  }

  unsubscribe (key: string): void {
    if (this.isReady) this.connection.unsubscribe(key).catch(() => {})
  }

  async sync (): Promise<void> {
    if (!this.isReady) throw unavailable(`the subscription connection to Redis is ${this.connection.status}`)
    await this.#call('the subscription connection to Redis failed', async () => await this.connection.ping())
  }

  async whenReady (deadline: number): Promise<boolean> {
    return await whenReady(this.connection, deadline)
  }

  async close (): Promise<void> {
    await quit(this.connection)
  }

  async #call (reason: string, command: () => Promise<unknown>): Promise<void> {
    try {
      await command()
    } catch (err) {
      // A subscription whose confirmation never came is in an unknown state: start over.
      if (isTimeout(err)) reset(this.connection)
      throw unavailable(reason, err)
    }
  }
}
