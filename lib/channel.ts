/**
 * Broadcast channels: a publish is validated once, encoded once into one Buffer, and
 * that Buffer is written to every subscribed stream. With history, a subscriber that
 * reconnects with Last-Event-ID first gets what it missed, then live events, with no
 * gap and no duplicate.
 */
import {
  compiledEvent, parsePayload, serializePayload,
  type EventCatalog, type EventData, type EventName, type EventSchemas, type SseMessage
} from './catalog.js'
import { RESYNC_EVENT, type Resync } from './control.js'
import { controlFrame, eventText } from './frame.js'
import type { EngineChannel, EngineMessage, HistoryOptions, ResolvedHistory, SseEngine } from './engine.js'
import { ChannelConflictError, EventTooLargeError, InvalidOptionError } from './errors.js'
import { resolveHistory } from './history.js'
import type { CorkableSocket, SseStream } from './stream.js'

/** Options of `app.sse.channel()`. */
export interface ChannelOptions {
  /**
   * Keep published events for replay: `true` for the defaults, or bounds. Channels
   * with history give every event an id (ordered, opaque, unique across restarts).
   * @default false
   */
  history?: boolean | HistoryOptions
  /**
   * Called when a subscriber's Last-Event-ID cannot be replayed (unknown or evicted),
   * after the `sse:resync` control event was sent to it: send it a full snapshot here.
   */
  onResync?: (stream: SseStream<any>, info: Resync) => void
}

/** Options of `channel.subscribe()`. */
export interface SubscribeOptions<E extends EventSchemas> {
  /**
   * Deliver only the messages for which this returns true (e.g. one user's). Runs on
   * the decoded message; the shared Buffer is written unchanged.
   */
  filter?: (message: SseMessage<E>) => boolean
  /**
   * Replay after this id instead of the stream's `Last-Event-ID` (e.g. an id the
   * client passed in the query string). `null` skips replay.
   */
  lastEventId?: string | null
  /**
   * With history, a stream that has no Last-Event-ID first receives every retained
   * event (e.g. a scoreboard's current state), then live ones.
   * @default false
   */
  replayAll?: boolean
}

/** Figures of one channel on this instance. */
export interface ChannelStats {
  /** Streams subscribed now. */
  subscribers: number
  /** Events published through this instance. */
  published: number
  /** Events delivered to this instance's subscribers (published here or elsewhere). */
  delivered: number
  /** Subscribers whose Last-Event-ID was replayed. */
  replaysServed: number
  /** Subscribers whose Last-Event-ID was unknown or evicted (sent `sse:resync`). */
  replayMisses: number
}

interface Subscriber {
  readonly stream: SseStream<any>
  readonly filter: ((message: SseMessage<any>) => boolean) | undefined
  /** Live messages held back while this subscriber's replay runs. */
  pending: EngineMessage[] | undefined
  /**
   * Ids just replayed. Another instance's publish can reach us after our history read
   * already returned it, so live messages with these ids are skipped until the first
   * one that is not (messages arrive in id order).
   */
  replayed: Set<string> | undefined
}

/**
 * A typed broadcast channel. Get one with `app.sse.channel(name, catalog, options)`.
 *
 * @example
 * const scores = app.sse.channel('scores', scoreEvents, { history: { maxEvents: 500 } })
 * app.get('/scores', (request, reply) => { scores.subscribe(reply.sse(scoreEvents)) })
 * app.post('/score', async (request) => scores.publish('score', request.body))
 */
export class Channel<E extends EventSchemas = EventSchemas> {
  readonly name: string
  readonly catalog: EventCatalog<E>
  /** @internal the resolved history bounds, compared when the name is requested again */
  readonly history: ResolvedHistory | undefined
  readonly #engine: EngineChannel
  readonly #onResync: ChannelOptions['onResync']
  readonly #subscribers = new Map<SseStream<any>, Subscriber>()
  readonly #stats = { published: 0, delivered: 0, replaysServed: 0, replayMisses: 0 }
  readonly #log: (err: unknown, message: string) => void
  readonly #maxEventBytes: number | false

  /** @internal use `app.sse.channel()` */
  constructor (name: string, catalog: EventCatalog<E>, options: ChannelOptions, engine: SseEngine, log: (err: unknown, message: string) => void, maxEventBytes: number | false) {
    this.name = name
    this.#maxEventBytes = maxEventBytes
    this.catalog = catalog
    this.history = resolveHistory(options.history)
    this.#onResync = options.onResync
    this.#log = log
    this.#engine = engine.channel(name, this.history, { deliver: this.#deliver, gap: () => {} })
  }

  /** Streams subscribed now. */
  get size (): number {
    return this.#subscribers.size
  }

  /** The subscribed streams. */
  subscribers (): IterableIterator<SseStream<any>> {
    return this.#subscribers.keys()
  }

  /** Figures of this channel on this instance. */
  stats (): ChannelStats {
    return { subscribers: this.#subscribers.size, ...this.#stats }
  }

  /**
   * Validates once and sends the event to every subscriber, on every instance.
   * With the in-memory engine local subscribers have it when this returns.
   *
   * @returns the event's id on channels with history, else `undefined`
   * @throws TYPED_SSE_INVALID_PAYLOAD, TYPED_SSE_UNKNOWN_EVENT, TYPED_SSE_EVENT_TOO_LARGE (synchronously, nothing sent)
   * @example
   * await scores.publish('score', { match: 'AUS-NZL', home: 2, away: 1 })
   */
  publish<K extends EventName<E>> (event: K, data: EventData<E, K>): Promise<string | undefined> {
    const compiled = compiledEvent(this.catalog, event)
    const payload = serializePayload(compiled, data)
    if (this.#maxEventBytes !== false) {
      // The id line is not known yet; ids are short, so the payload and name decide.
      const bytes = Buffer.byteLength(eventText(event, payload))
      if (bytes > this.#maxEventBytes) throw new EventTooLargeError(event, bytes, this.#maxEventBytes)
    }
    this.#stats.published++
    return this.#engine.publish({ event, data: payload, payload: data })
  }

  /**
   * Attaches a stream; it is detached when it closes. With history and a
   * Last-Event-ID, it first receives every retained event after that id, then live
   * events (those published meanwhile are held, then flushed without duplicates).
   * An id that cannot be replayed gets the `sse:resync` control event and `onResync`.
   *
   * @returns resolves when the stream is live (replay done). Never rejects: a failed
   *   replay lookup is logged and ends the stream, so its client reconnects and retries.
   * @example
   * await scores.subscribe(reply.sse(scoreEvents), { filter: (m) => m.data.match === request.params.match })
   */
  async subscribe (stream: SseStream<any>, options: SubscribeOptions<E> = {}): Promise<void> {
    if (!stream.isOpen || this.#subscribers.has(stream)) return
    const filter = options.filter as Subscriber['filter']
    if (filter !== undefined && typeof filter !== 'function') throw new InvalidOptionError('filter', 'expected a function')
    const lastEventId = options.lastEventId === undefined ? stream.lastEventId : options.lastEventId ?? undefined
    const replaying = this.history !== undefined && (lastEventId !== undefined || options.replayAll === true)
    const subscriber: Subscriber = { stream, filter, pending: replaying ? [] : undefined, replayed: undefined }
    this.#subscribers.set(stream, subscriber)
    stream.onClose(() => this.#subscribers.delete(stream))
    if (replaying) await this.#replay(subscriber, lastEventId)
  }

  /**
   * Detaches a stream without closing it.
   *
   * @example
   * scores.unsubscribe(stream)
   */
  unsubscribe (stream: SseStream<any>): void {
    this.#subscribers.delete(stream)
  }

  /** @internal stops delivery on this instance (plugin close) */
  close (): Promise<void> | void {
    this.#subscribers.clear()
    return this.#engine.close()
  }

  async #replay (subscriber: Subscriber, lastEventId: string | undefined): Promise<void> {
    const { stream } = subscriber
    let result
    try {
      result = await this.#engine.readAfter(lastEventId)
    } catch (err) {
      this.#log(err, `replay of channel "${this.name}" failed; the stream was closed so its client retries`)
      stream.close()
      return
    }
    if (result.status === 'ok') {
      this.#stats.replaysServed++
      for (const message of result.messages) this.#write(subscriber, message, this.#frame(message))
      if (result.messages.length > 0) subscriber.replayed = new Set(result.messages.map((message) => message.id as string))
    } else {
      this.#stats.replayMisses++
      const info: Resync = { channel: this.name, lastEventId: lastEventId ?? '', reason: result.status }
      stream.writeFrame(controlFrame(RESYNC_EVENT, info))
      try {
        this.#onResync?.(stream, info)
      } catch (err) {
        this.#log(err, `onResync of channel "${this.name}" threw`)
      }
    }
    const pending = subscriber.pending as EngineMessage[]
    subscriber.pending = undefined
    // An instance whose delivery lags the one the client left (Redis) may still have
    // been delivering what the client had: skip held messages up to the last one it has.
    const last = result.status === 'ok' ? (result.messages.at(-1)?.id ?? lastEventId) : undefined
    const start = last === undefined ? 0 : pending.findIndex((message) => message.id === last) + 1
    for (const message of pending.slice(start)) this.#write(subscriber, message, this.#frame(message))
  }

  /** True for a live message the subscriber already got by replay. */
  #wasReplayed (subscriber: Subscriber, message: EngineMessage): boolean {
    if (message.id !== undefined && (subscriber.replayed as Set<string>).has(message.id)) return true
    subscriber.replayed = undefined
    return false
  }

  #frame (message: EngineMessage): Buffer {
    compiledEvent(this.catalog, message.event)
    return Buffer.from(eventText(message.event, message.data, message.id))
  }

  #write (subscriber: Subscriber, message: EngineMessage, frame: Buffer): void {
    if (subscriber.replayed !== undefined && this.#wasReplayed(subscriber, message)) return
    if (subscriber.filter !== undefined && !subscriber.filter(this.#decode(message))) return
    subscriber.stream.writeFrame(frame)
  }

  #decode (message: EngineMessage): SseMessage<E> {
    const data = message.payload !== undefined ? message.payload : parsePayload(compiledEvent(this.catalog, message.event), message.data)
    return { event: message.event, data, id: message.id } as SseMessage<E>
  }

  /** Called by the engine for every message of this channel, in order, once per instance. */
  readonly #deliver = (message: EngineMessage): void => {
    this.#stats.delivered++
    if (this.#subscribers.size === 0) return
    let frame: Buffer
    try {
      frame = this.#frame(message)
    } catch (err) {
      // Only another instance with another catalog can send an unknown event.
      this.#log(err, `channel "${this.name}" dropped a message it cannot encode`)
      return
    }
    let decoded: SseMessage<E> | undefined
    // Node schedules a flush (a nextTick) for every write to an uncorked socket; corked
    // here and uncorked together, the whole publish costs one.
    const corked: CorkableSocket[] = []
    for (const subscriber of this.#subscribers.values()) {
      if (subscriber.pending !== undefined) {
        subscriber.pending.push(message)
        continue
      }
      if (subscriber.replayed !== undefined && this.#wasReplayed(subscriber, message)) continue
      if (subscriber.filter !== undefined && !subscriber.filter(decoded ??= this.#decode(message))) continue
      const socket = subscriber.stream.cork()
      if (socket !== undefined) corked.push(socket)
      subscriber.stream.writeFrame(frame)
    }
    if (corked.length > 0) process.nextTick(uncorkAll, corked)
  }
}

function uncorkAll (sockets: CorkableSocket[]): void {
  for (const socket of sockets) socket.uncork()
}

/**
 * The channels of one Fastify instance, by name.
 *
 * @example
 * const registry = new ChannelRegistry(memoryEngine(), log)
 * registry.get('scores', scoreEvents, { history: true })
 */
export class ChannelRegistry {
  readonly #engine: SseEngine
  readonly #channels = new Map<string, Channel<any>>()
  readonly #log: (err: unknown, message: string) => void
  readonly #maxEventBytes: number | false

  constructor (engine: SseEngine, log: (err: unknown, message: string) => void, maxEventBytes: number | false = false) {
    this.#engine = engine
    this.#log = log
    this.#maxEventBytes = maxEventBytes
  }

  /**
   * The channel `name`, created on first use. Asking again with the same catalog and
   * history returns the same channel.
   *
   * @throws TYPED_SSE_CHANNEL_CONFLICT when the catalog or history differ; TYPED_SSE_INVALID_OPTION
   */
  get<E extends EventSchemas> (name: string, catalog: EventCatalog<E>, options: ChannelOptions = {}): Channel<E> {
    if (typeof name !== 'string' || name.length === 0) throw new InvalidOptionError('name', 'a channel name is a non-empty string')
    const existing = this.#channels.get(name)
    if (existing !== undefined) {
      const history = resolveHistory(options.history)
      if (existing.catalog !== catalog || existing.history?.maxEvents !== history?.maxEvents ||
        existing.history?.maxAgeMs !== history?.maxAgeMs) throw new ChannelConflictError(name)
      return existing
    }
    const channel = new Channel(name, catalog, options, this.#engine, this.#log, this.#maxEventBytes)
    this.#channels.set(name, channel)
    return channel
  }

  /** Figures of every channel, by name, and their totals. */
  stats (): { channels: Record<string, ChannelStats>, eventsPublished: number, replaysServed: number, replayMisses: number } {
    const channels: Record<string, ChannelStats> = {}
    let eventsPublished = 0
    let replaysServed = 0
    let replayMisses = 0
    for (const [name, channel] of this.#channels) {
      const stats = channel.stats()
      channels[name] = stats
      eventsPublished += stats.published
      replaysServed += stats.replaysServed
      replayMisses += stats.replayMisses
    }
    return { channels, eventsPublished, replaysServed, replayMisses }
  }

  /** Closes every channel, then the engine. */
  async close (): Promise<void> {
    await Promise.all([...this.#channels.values()].map(async (channel) => await channel.close()))
    this.#channels.clear()
    await this.#engine.close()
  }
}
