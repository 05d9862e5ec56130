/**
 * The channels of one Fastify instance, by name: created on first use, the same one
 * for the same definition, forgotten when dropped.
 */
import type { EventCatalog } from '../core/catalog.js'
import type { ChannelStats } from '../core/stats.js'
import { Channel } from './channel.js'
import { CHANNEL_OPTION_NAMES, type ChannelOptions } from './options.js'
import { hasWireSafeIds, type SseEngine } from '../engine/engine.js'
import { ChannelConflictError, InvalidOptionError } from '../core/errors.js'
import { describe } from '../core/frame.js'
import { resolveHistory } from '../engine/history.js'
import { positiveIntegerOrFalse, refuseUnknownOptions } from '../core/validate.js'
import { MAX_REPLAY_READS, ReadQueue } from '../engine/replay-reads.js'
import { kClose } from '../core/symbols.js'
import { MAX_TIMER_MS } from '../core/timers.js'
import { resolvePresence } from './presence.js'
import { resolveState } from './state.js'

/** Totals over the channels of an instance, for `app.sse.stats()`. */
export interface ChannelTotals {
  channels: Record<string, ChannelStats>
  eventsPublished: number
  replaysServed: number
  replayMisses: number
}

/** What the registry passes on to every channel. */
export interface RegistryOptions {
  readonly log: (err: unknown, message: string) => void
  readonly maxEventBytes: number | false
  readonly maxLastEventIdBytes: number
  /** Told after a live message was written to local subscribers: when it was published. */
  readonly delivered?: (publishedAt: number) => void
  /** Told when a channel is forgotten, with its final figures (metrics keep its totals). */
  readonly forgotten?: (name: string, stats: ChannelStats) => void
}

/**
 * The channels of one Fastify instance.
 *
 * @example
 * const registry = new ChannelRegistry(memoryEngine(), { log, maxEventBytes: false, maxLastEventIdBytes: 256 })
 * registry.get('scores', scoreEvents, { history: true })
 */
export class ChannelRegistry {
  readonly #engine: SseEngine
  readonly #channels = new Map<string, Channel<any>>()
  readonly #options: RegistryOptions
  /** The history reads of every channel's replays, a bounded number at once. */
  readonly #replayReads = new ReadQueue(MAX_REPLAY_READS)
  /** Totals of channels already dropped, so the instance's totals never go down. */
  readonly #gone = { eventsPublished: 0, replaysServed: 0, replayMisses: 0 }

  constructor (engine: SseEngine, options: RegistryOptions) {
    this.#engine = engine
    this.#options = options
  }

  /**
   * The channel `name`, created on first use. Asking again with the same catalog and
   * options returns the same channel.
   *
   * @throws TYPED_SSE_CHANNEL_CONFLICT when the catalog or options differ; TYPED_SSE_INVALID_OPTION
   */
  get<C extends EventCatalog<any>> (name: string, catalog: C, options: ChannelOptions<C> = {}): Channel<C> {
    if (typeof name !== 'string' || name.length === 0) throw new InvalidOptionError('name', `a channel name is a non-empty string, got ${describe(name)}`)
    if (options === null || typeof options !== 'object') throw new InvalidOptionError('options', `expected an object, got ${describe(options)}`)
    refuseUnknownOptions(`channel("${name}")`, options, CHANNEL_OPTION_NAMES)
    const history = resolveHistory(options.history)
    const idleMs = positiveIntegerOrFalse('idleMs', options.idleMs, false, MAX_TIMER_MS)
    const state = resolveState(options.state, options.maxKeys, catalog, history !== undefined)
    const presence = resolvePresence(options.presence)
    const existing = this.#channels.get(name)
    if (existing !== undefined) {
      if (existing.catalog !== catalog || existing.history?.maxEvents !== history?.maxEvents ||
        existing.history?.maxAgeMs !== history?.maxAgeMs || existing.idleMs !== idleMs ||
        existing.features.maxKeys !== state?.maxKeys || existing.features.presence !== (presence !== undefined)) throw new ChannelConflictError(name)
      return existing
    }
    const engine = this.#engine
    const channel = new Channel(name, catalog, { history, idleMs, onResync: options.onResync, state, presence }, {
      ...this.#options,
      replayReads: this.#replayReads,
      compare: (a, b) => engine.compareIds(a, b),
      wireSafeIds: hasWireSafeIds(engine),
      open: (resolved, listener, features) => engine.channel(name, resolved, listener, features),
      forget: (dropped) => this.#forget(dropped)
    })
    this.#channels.set(name, channel)
    return channel
  }

  /** Channels alive now. */
  get size (): number {
    return this.#channels.size
  }

  /** Figures of every channel, by name, and the instance's totals. */
  stats (): ChannelTotals {
    const channels: Record<string, ChannelStats> = {}
    let { eventsPublished, replaysServed, replayMisses } = this.#gone
    for (const [name, channel] of this.#channels) {
      const stats = channel.stats()
      // Defined, not assigned: a channel named `__proto__` is a key like any other.
      Object.defineProperty(channels, name, { value: stats, enumerable: true, writable: true, configurable: true })
      eventsPublished += stats.published
      replaysServed += stats.replaysServed
      replayMisses += stats.replayMisses
    }
    return { channels, eventsPublished, replaysServed, replayMisses }
  }

  /** Closes every channel, then the engine. */
  async close (): Promise<void> {
    await Promise.all([...this.#channels.values()].map(async (channel) => await channel[kClose]()))
    this.#channels.clear()
    await this.#engine.close()
  }

  #forget (channel: Channel<any>): void {
    if (this.#channels.get(channel.name) !== channel) return
    this.#channels.delete(channel.name)
    const stats = channel.stats()
    this.#gone.eventsPublished += stats.published
    this.#gone.replaysServed += stats.replaysServed
    this.#gone.replayMisses += stats.replayMisses
    this.#options.forgotten?.(channel.name, stats)
  }
}
