/**
 * Broadcast channels: a publish is validated once, serialized once, framed once, and
 * the one Buffer is written to every subscribed stream. One subscriber's failure (a
 * filter that throws, a stream that cannot take the write) ends that subscriber
 * alone. With history, a subscriber that comes back with Last-Event-ID first gets
 * what it missed, joined with live events by position (merge.ts): no gap, no
 * duplicate, or an explicit `sse:resync`.
 */
import {
  compiledEvent, findEvent, parsePayload, serializePayload,
  type EventCatalog, type EventData, type EventName, type SseMessage
} from './catalog.js'
import type { TSchema } from '@sinclair/typebox'
import { END_EVENT, JOIN_EVENT, LEAVE_EVENT, REMOVE_EVENT, RESYNC_EVENT, type Resync } from './control.js'
import type { ChannelFeatures, ChannelListener, EngineChannel, EngineMessage, HistoryOptions, PageLimit, ReplayPage, ResolvedHistory, StateSnapshot } from './engine.js'
import {
  CatalogMismatchError, ChannelDroppedError, EventTooLargeError, ForeignEventError, InvalidOptionError, QueueFullError, SubscriberError
} from './errors.js'
import { controlFrame, describe, eventText } from './frame.js'
import { resolveHistory } from './history.js'
import { optionNames, refuseUnknownOptions } from './options.js'
import { isAfter, ReplayMerge, type ComparePositions } from './merge.js'
import { ChannelPresence, memberOf, resolvePresence, type PresenceJoin, type PresenceMember, type PresenceOptions } from './presence.js'
import { holdTick, PageReads, type ReadQueue } from './replay-reads.js'
import { checkKey, resolveState, stateKey, type ResolvedState, type StateKeys } from './state.js'
import type { Events, SseStream } from './stream.js'
import { kClose, kClosed, kCork, kEnd, kMissed, kOffClose, kOnClose, kOptions, kWrite } from './symbols.js'
import type { CorkableSocket } from './transport/index.js'

/** Options of `app.sse.channel()`. */
export interface ChannelOptions<C extends EventCatalog<any> = EventCatalog, S extends TSchema = TSchema> {
  /**
   * Keep published events for replay: `true` for the defaults, or bounds. Channels
   * with history give every event an id (ordered, opaque, unique across restarts).
   * @default false
   */
  history?: boolean | HistoryOptions
  /**
   * Called when a subscriber's Last-Event-ID cannot be replayed (unknown or evicted),
   * or when live delivery lost messages (`gap`), after the `sse:resync` control event
   * was sent to it: send it a full snapshot here.
   */
  onResync?: (stream: SseStream<C>, info: Resync) => void
  /**
   * Drop the channel (and its history on this instance's engine) once it has had no
   * subscriber and no publish for this long: for channels named from request input
   * (`room:${id}`), which would otherwise live until restart. `false` keeps it.
   * @default false
   */
  idleMs?: number | false
  /**
   * Keyed state (needs `history`): per event name, the key its data is stored under.
   * The latest event of every key is the channel's state (`state()`), sent first to
   * subscribers that ask (`snapshot: true`), coalesced for slow readers
   * (`queuePolicy: 'coalesce'`); `remove(key)` deletes a key (`sse:remove`).
   * @example { price: (d) => d.symbol }
   */
  state?: StateKeys<C>
  /**
   * Keys the state holds at most; a publish for one more is refused (TYPED_SSE_TOO_MANY_KEYS).
   * @default 10000
   */
  maxKeys?: number
  /** Who is subscribed, on every instance: `subscribe(stream, { presence: { id, info } })`, `presence()`. */
  presence?: PresenceOptions<S>
}

/** The keys of {@link ChannelOptions}: any other is refused (`{ histroy: true }` is never ignored). */
export const CHANNEL_OPTION_NAMES = optionNames<ChannelOptions>({ history: true, onResync: true, idleMs: true, state: true, maxKeys: true, presence: true })
/** The keys of {@link SubscribeOptions}. */
const SUBSCRIBE_OPTION_NAMES = optionNames<SubscribeOptions<EventCatalog>>({ filter: true, lastEventId: true, replayAll: true, snapshot: true, presence: true })

/** One entry of a channel's keyed state (`channel.state()`): the latest event of its key. */
export type StateEntry<C extends EventCatalog<any>> = SseMessage<Events<C>> & { key: string, id: string }

/**
 * A stream that can subscribe to a channel of catalog `C`: its own catalog declares
 * every event of `C`, with the same schema (it may declare more).
 */
export type StreamFor<C extends EventCatalog<any>> = SseStream<any> & {
  readonly catalog: { readonly schemas: { readonly [K in keyof Events<C>]: Events<C>[K] } }
}

/** Options of `channel.subscribe()`. */
export interface SubscribeOptions<C extends EventCatalog<any>, S extends TSchema = TSchema> {
  /**
   * Deliver only the messages for which this returns true (e.g. one user's). Runs on
   * the decoded message; the shared Buffer is written unchanged. A filter that throws
   * ends its own stream (reason `'error'`), never the publish.
   */
  filter?: (message: SseMessage<Events<C>>) => boolean
  /**
   * Replay after this id instead of the stream's `Last-Event-ID` (e.g. an id the
   * client passed in the query string; longer than `maxLastEventIdBytes`, it is
   * ignored like the header). `null` skips replay.
   */
  lastEventId?: string | null
  /**
   * With history, a stream that has no Last-Event-ID first receives every retained
   * event (e.g. a scoreboard's current state), then live ones.
   * @default false
   */
  replayAll?: boolean
  /**
   * On a channel with history and `state` (or `presence: { events: true }`): a stream
   * without Last-Event-ID first gets the state (one event per key, with its id) and the
   * members present (one `sse:join` each), then live events; one whose id cannot be
   * replayed gets `sse:resync` followed by the same. No gap and no duplicate between the two.
   * @default false
   */
  snapshot?: boolean
  /** On a channel with `presence`: who this stream is. It leaves when the stream closes. */
  presence?: PresenceJoin<S>
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

/** What a channel gets from its registry. */
export interface ChannelContext {
  readonly log: (err: unknown, message: string) => void
  readonly maxEventBytes: number | false
  readonly maxLastEventIdBytes: number
  readonly compare: ComparePositions
  /** Opens the engine side of the channel. */
  readonly open: (history: ResolvedHistory | undefined, listener: ChannelListener, features: ChannelFeatures) => EngineChannel
  /** The channel was idle for `idleMs` or dropped: forget it. */
  readonly forget: (channel: Channel<any>) => void
  /** Told after a live message was written to local subscribers (metrics on): when it was published. */
  readonly delivered?: (publishedAt: number) => void
  /** The instance's history reads (replay-reads.ts): a bounded number at once, the rest in line. */
  readonly replayReads: ReadQueue
}

interface Subscriber {
  readonly stream: SseStream<any>
  readonly filter: ((message: SseMessage<any>) => boolean) | undefined
  /** Live messages held while this subscriber's replay runs (and is written). */
  merge: ReplayMerge<EngineMessage> | undefined
  /** The hold clock's tick when the hold began: reads that started later cover what it missed. */
  heldSince: number
  /** Gets the channel's state instead of a bare resync (and when it has no Last-Event-ID). */
  readonly isSnapshot: boolean
  /** Held messages the drop-oldest policy dropped during the replay, and the newest of them. */
  droppedCount: number
  droppedNewest: EngineMessage | undefined
  /** The engine reported a gap while this subscriber was replaying: resync once it is live. */
  isGapped: boolean
  /**
   * After a replay: the last position the client has. An instance whose delivery lags
   * the one the client left (Redis) may still deliver messages up to it; they are
   * skipped until the first one after it.
   */
  cursor: string | undefined
}

/** A message decoded for this instance: its frame, and its payload for filters. */
interface Decoded {
  readonly frame: Buffer
  readonly message: SseMessage<any>
  /** A control event of the channel's (`sse:remove`, `sse:join`, `sse:leave`): no filter applies. */
  readonly isControl?: boolean
  /** What a `'coalesce'` queue replaces it by: the channel's name and the state key. */
  readonly coalesceKey?: string
}

/** What a held message counts for against the stream's queue limit (its frame, about). */
function heldBytes (message: EngineMessage): number {
  return message.data.length + message.event.length + 64
}

/**
 * Publish calls running now (nested when a delivery publishes): a delivery made inside
 * one comes from this instance's own publish (the in-memory engine delivers at once).
 */
let publishing = 0

function uncorkAll (sockets: CorkableSocket[]): void {
  for (const socket of sockets) socket.uncork()
}

/**
 * Uncorks in the event loop's next check phase: after the immediates queued so far
 * (a publisher that awaited its acknowledgement and yields a turn before its next
 * publish) and the I/O between.
 */
function uncorkAfterTurn (sockets: CorkableSocket[]): void {
  setImmediate(uncorkAll, sockets)
}

function afterIo<T> (value: T): Promise<T> {
  return new Promise((resolve) => setImmediate(resolve, value))
}

/**
 * What `publish()` resolves with: the event's id on a channel with history (`H` true),
 * `undefined` without (`H` false), either when the options were not known to the compiler.
 */
export type PublishResult<H extends boolean> = H extends true ? string : H extends false ? undefined : string | undefined

/**
 * A typed broadcast channel. Get one with `app.sse.channel(name, catalog, options)`.
 * `H` is whether it keeps history, as far as the compiler knows (it types `publish()`).
 *
 * @example
 * const scores = app.sse.channel('scores', scoreEvents, { history: { maxEvents: 500 } })
 * app.get('/scores', (request, reply) => { scores.subscribe(reply.sse(scoreEvents)) })
 * app.post('/score', async (request) => scores.publish('score', request.body))
 */
export class Channel<C extends EventCatalog<any> = EventCatalog, H extends boolean = boolean, S extends TSchema = TSchema> {
  readonly name: string
  readonly catalog: C
  /** @internal the resolved history bounds, compared when the name is requested again */
  readonly history: ResolvedHistory | undefined
  /** @internal the resolved idle time */
  readonly idleMs: number | false
  /** @internal what the engine keeps besides history, compared when the name is requested again */
  readonly features: ChannelFeatures
  readonly #state: ResolvedState | undefined
  readonly #presence: ChannelPresence | undefined
  readonly #engine: EngineChannel
  /** History reads shared by this channel's replays; with history only. */
  readonly #pages: PageReads | undefined
  readonly #context: ChannelContext
  readonly #onResync: ChannelOptions<C>['onResync']
  readonly #subscribers = new Map<SseStream<any>, Subscriber>()
  readonly #stats = { published: 0, delivered: 0, replaysServed: 0, replayMisses: 0 }
  /** Foreign events already logged, so a rolling deploy logs each once. */
  #foreign: Set<string> | undefined
  /** The id of the last message delivered here: where a gap's resync says the client was. */
  #lastId: string | undefined
  /** A write of the last delivery was queued behind a slow client. */
  #isBackedUp = false
  #isDropped = false
  #idleTimer: NodeJS.Timeout | undefined

  /** @internal use `app.sse.channel()` */
  constructor (name: string, catalog: C, options: ChannelOptions<C, S>, context: ChannelContext) {
    this.name = name
    this.catalog = catalog
    this.history = resolveHistory(options.history)
    this.idleMs = options.idleMs === undefined || options.idleMs === false ? false : options.idleMs
    this.#onResync = options.onResync
    this.#context = context
    this.#state = resolveState(options.state, options.maxKeys, catalog, this.history !== undefined)
    const presence = resolvePresence(options.presence)
    this.features = { maxKeys: this.#state?.maxKeys, presence: presence !== undefined }
    this.#engine = context.open(this.history, {
      deliver: (message) => this.#deliver(message),
      gap: () => this.#gap(),
      left: (members) => this.#presence?.left(members)
    }, this.features)
    this.#presence = presence === undefined || this.#engine.presence === undefined ? undefined : new ChannelPresence(presence, this.#engine.presence, {
      publish: async (event, data) => await this.#engine.publish({ event, data, publishedAt: Date.now() }),
      log: context.log
    })
    this.#pages = this.history === undefined ? undefined : new PageReads(context.replayReads, (after, limit) => this.#readPage(after, limit))
    this.#armIdle()
  }

  /** Streams subscribed now. */
  get size (): number {
    return this.#subscribers.size
  }

  /** `false` once the channel was dropped (`drop()`, or idle): it must be asked for again. */
  get isActive (): boolean {
    return !this.#isDropped
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
   * Validates once and sends the event to every subscriber, on every instance. With
   * the in-memory engine, local subscribers have it when this returns. When a
   * subscriber's writes are queued (a slow reader), the promise resolves after the
   * event loop ran I/O once, so a publisher that awaits each publish lets readers
   * that keep up drain instead of being judged slow.
   *
   * @returns the event's id on channels with history, else `undefined`
   * @throws TYPED_SSE_INVALID_PAYLOAD, TYPED_SSE_UNKNOWN_EVENT, TYPED_SSE_EVENT_TOO_LARGE,
   *   TYPED_SSE_CHANNEL_DROPPED (synchronously, nothing sent); rejects with
   *   TYPED_SSE_ENGINE_UNAVAILABLE when the engine cannot carry it
   * @example
   * await scores.publish('score', { match: 'AUS-NZL', home: 2, away: 1 })
   */
  publish<K extends EventName<Events<C>>> (event: K, data: EventData<Events<C>, K>): Promise<PublishResult<H>> {
    if (this.#isDropped) throw new ChannelDroppedError(this.name)
    const text = serializePayload(compiledEvent(this.catalog, event), data)
    const { maxEventBytes } = this.#context
    if (maxEventBytes !== false) {
      // The id is not known yet; ids are short, so the payload and name decide.
      const bytes = text.length > maxEventBytes ? Buffer.byteLength(text) : Buffer.byteLength(eventText(event, text))
      if (bytes > maxEventBytes) throw new EventTooLargeError(event, bytes, maxEventBytes)
    }
    const key = this.#state === undefined ? undefined : stateKey(this.#state, event, data)
    this.#stats.published++
    this.#armIdle()
    // The engine gives an id exactly when the channel has history, which is what H says.
    let published: Promise<PublishResult<H>>
    publishing++
    try {
      published = this.#engine.publish({ event, data: text, payload: data, publishedAt: Date.now(), key }) as Promise<PublishResult<H>>
    } finally {
      publishing--
    }
    if (!this.#isBackedUp) return published
    this.#isBackedUp = false
    return published.then(afterIo)
  }

  /**
   * Deletes a key from the channel's state, on every instance; subscribers get the
   * `sse:remove` control event (with an id, so a replay has it too).
   *
   * @returns the id of the `sse:remove` event
   * @throws TYPED_SSE_INVALID_OPTION on a channel without `state`, TYPED_SSE_INVALID_STATE_KEY, TYPED_SSE_CHANNEL_DROPPED
   * @example
   * await prices.remove('ACME')
   */
  remove (key: string | number): Promise<string> {
    if (this.#isDropped) throw new ChannelDroppedError(this.name)
    if (this.#state === undefined) throw new InvalidOptionError('state', `channel "${this.name}" keeps no keyed state: declare it with \`state\``)
    const checked = checkKey(REMOVE_EVENT, key)
    this.#armIdle()
    return this.#engine.publish({ event: REMOVE_EVENT, data: JSON.stringify({ key: checked }), key: checked, publishedAt: Date.now() }) as Promise<string>
  }

  /**
   * The channel's keyed state now: the latest event of every key, oldest first.
   *
   * @throws TYPED_SSE_INVALID_OPTION on a channel without `state`; rejects with
   *   TYPED_SSE_ENGINE_UNAVAILABLE when the engine cannot be read
   * @example
   * for (const { key, data } of await prices.state()) console.log(key, data.value)
   */
  async state (): Promise<Array<StateEntry<C>>> {
    if (this.#state === undefined) throw new InvalidOptionError('state', `channel "${this.name}" keeps no keyed state: declare it with \`state\``)
    const state = this.#state
    const out: Array<StateEntry<C>> = []
    for (const message of (await this.#readSnapshot()).entries) {
      const decoded = this.#decode(message)
      const key = decoded === undefined ? undefined : stateKey(state, message.event, decoded.message.data)
      if (decoded !== undefined && key !== undefined) out.push({ ...decoded.message, key, id: message.id } as StateEntry<C>)
    }
    return out
  }

  /**
   * The members of the channel's presence on every instance, each once (however many
   * connections it has).
   *
   * @throws TYPED_SSE_INVALID_OPTION on a channel without `presence`
   * @example
   * const watching = await room.presence() // [{ id: 'alice', info: { name: 'Alice' }, connections: 2 }]
   */
  async presence (): Promise<Array<PresenceMember<S>>> {
    if (this.#presence === undefined) throw new InvalidOptionError('presence', `channel "${this.name}" keeps no presence: declare it with \`presence: { info }\``)
    return await this.#presence.list<S>()
  }

  /**
   * Ends the channel for good: every subscriber, here and on other instances, gets the
   * `sse:end` control event and its stream closes; with history, a client that comes
   * back later replays up to the end, then ends too. For a finite stream produced
   * once (an LLM response) that clients may resume on any instance.
   *
   * @example
   * for await (const token of llm(prompt)) await answer.publish('token', token)
   * await answer.end()
   */
  end (): Promise<string | undefined> {
    if (this.#isDropped) throw new ChannelDroppedError(this.name)
    return this.#engine.publish({ event: END_EVENT, data: '{}' })
  }

  /**
   * Attaches a stream; it is detached when it closes. With history and a
   * Last-Event-ID, it first receives every retained event after that id, then live
   * events (those published meanwhile are held, bounded by the stream's
   * `maxQueueBytes` and its policy, then flushed without duplicates). An id that
   * cannot be replayed gets the `sse:resync` control event and `onResync`.
   *
   * @returns resolves when the stream is live (replay done, and the engine subscribed):
   *   whatever any instance publishes after that reaches it. Never rejects: a failed
   *   replay lookup or subscription is logged and closes the stream, so its client retries.
   * @throws TYPED_SSE_CATALOG_MISMATCH when the stream's catalog lacks an event of the
   *   channel's; TYPED_SSE_INVALID_OPTION; TYPED_SSE_CHANNEL_DROPPED
   * @example
   * await scores.subscribe(reply.sse(scoreEvents), { filter: (m) => m.data.match === request.params.match })
   */
  subscribe (stream: StreamFor<C>, options: SubscribeOptions<C, S> = {}): Promise<void> {
    if (this.#isDropped) throw new ChannelDroppedError(this.name)
    if (options === null || typeof options !== 'object') throw new InvalidOptionError('options', `subscribe() takes an options object, got ${describe(options)}`)
    refuseUnknownOptions('subscribe()', options, SUBSCRIBE_OPTION_NAMES)
    const filter = options.filter as Subscriber['filter']
    if (filter !== undefined && typeof filter !== 'function') throw new InvalidOptionError('filter', `expected a function, got ${describe(filter)}`)
    if (options.lastEventId != null && typeof options.lastEventId !== 'string') {
      throw new InvalidOptionError('lastEventId', `expected a string or null, got ${describe(options.lastEventId)}`)
    }
    const isSnapshot = options.snapshot === true
    if (isSnapshot && (this.history === undefined || (this.#state === undefined && this.#presence?.resolved.events !== true))) {
      throw new InvalidOptionError('snapshot', `channel "${this.name}" has nothing to snapshot: declare it with \`history\` and \`state\` or \`presence: { events: true }\``)
    }
    const member = options.presence === undefined ? undefined : memberOf(this.#presence?.resolved, options.presence)
    this.#assertCatalog(stream)
    if (!stream.isOpen || this.#subscribers.has(stream)) return Promise.resolve()
    let lastEventId = options.lastEventId === undefined ? stream.lastEventId : options.lastEventId ?? undefined
    if (lastEventId !== undefined && Buffer.byteLength(lastEventId) > this.#context.maxLastEventIdBytes) lastEventId = undefined
    const isReplaying = this.history !== undefined && (lastEventId !== undefined || options.replayAll === true || isSnapshot)
    const subscriber: Subscriber = {
      stream,
      filter,
      isSnapshot,
      merge: isReplaying ? new ReplayMerge(this.#context.compare, heldBytes) : undefined,
      heldSince: isReplaying ? holdTick() : 0,
      droppedCount: 0,
      droppedNewest: undefined,
      isGapped: false,
      cursor: undefined
    }
    this.#subscribers.set(stream, subscriber)
    this.#cancelIdle()
    // The channel itself is told of the close ([kClosed]): no closure per subscriber.
    stream[kOnClose](this)
    const joined = member === undefined ? undefined : this.#presence?.join(stream, member.id, member.info)
    const live = isReplaying ? this.#replay(subscriber, lastEventId) : this.#engine.ready === undefined ? Promise.resolve() : this.#whenLive(subscriber)
    return joined === undefined ? live : Promise.all([live, joined]).then(() => {})
  }

  /**
   * Waits until the engine hears this channel everywhere (the first stream of a channel
   * made on demand: its Redis subscription), so what any instance publishes after
   * subscribe() resolved reaches the stream. Live messages heard meanwhile go out as usual.
   */
  async #whenLive (subscriber: Subscriber): Promise<void> {
    try {
      await this.#engine.ready?.()
    } catch (err) {
      if (this.#subscribers.get(subscriber.stream) !== subscriber) return
      // Without a subscription, the stream would miss messages without a sign: closed, so its client retries.
      this.#context.log(err, `subscribing to channel "${this.name}" failed; the stream was closed so its client retries`)
      subscriber.stream.close()
    }
  }

  /**
   * Detaches a stream without closing it.
   *
   * @example
   * scores.unsubscribe(stream)
   */
  unsubscribe (stream: SseStream<any>): void {
    this.#detach(stream)
  }

  /**
   * Drops the channel on this instance: its subscribers' streams are closed (their
   * clients reconnect), the engine lets go of it (the in-memory engine frees its
   * history), and `app.sse.channel(name)` makes a new one. Other instances keep theirs.
   *
   * @example
   * rooms.get(id)?.drop()
   */
  async drop (): Promise<void> {
    if (this.#isDropped) return
    this.#isDropped = true
    this.#cancelIdle()
    this.#presence?.leaveAll()
    const streams = [...this.#subscribers.keys()]
    this.#subscribers.clear()
    for (const stream of streams) stream.close()
    this.#context.forget(this)
    await this.#engine.close()
  }

  /** @internal a subscribed stream closed */
  [kClosed] (stream: SseStream<any>): void {
    this.#detach(stream)
  }

  /** @internal stops delivery on this instance (plugin close) */
  [kClose] (): Promise<void> | void {
    this.#isDropped = true
    this.#cancelIdle()
    this.#presence?.leaveAll()
    this.#subscribers.clear()
    return this.#engine.close()
  }

  /**
   * Called by the engine for every message of this channel, in order, once per
   * instance: one frame for all, written to each subscriber in a corked batch.
   */
  #deliver (message: EngineMessage): void {
    this.#stats.delivered++
    if (message.id !== undefined) this.#lastId = message.id
    if (this.#subscribers.size === 0) return
    if (message.event === END_EVENT) {
      for (const subscriber of [...this.#subscribers.values()]) {
        if (subscriber.merge !== undefined) subscriber.merge.hold(message)
        else subscriber.stream.end()
      }
      return
    }
    const decoded = this.#decode(message)
    // Node schedules a flush (a nextTick) for every write to an uncorked socket; corked
    // here and uncorked together, the whole publish costs one. A message heard from the
    // engine (another instance's, or this one's through Redis) is flushed a turn of the
    // event loop later instead: a publisher awaiting each publish, whose acknowledgement
    // arrives with this message, sends its next one first (also when it yields a turn
    // before it), so that round trip runs while these writes do instead of after them;
    // and messages heard meanwhile join the corked batch, one write per socket for all.
    const corked: CorkableSocket[] = []
    try {
      for (const subscriber of this.#subscribers.values()) {
        if (subscriber.merge !== undefined) {
          this.#hold(subscriber, message)
          continue
        }
        if (decoded === undefined) continue
        if (subscriber.cursor !== undefined) {
          if (!isAfter(message, subscriber.cursor, this.#context.compare)) continue
          subscriber.cursor = undefined
        }
        const socket = subscriber.stream[kCork]()
        if (socket !== undefined) corked.push(socket)
        this.#writeTo(subscriber, decoded)
      }
    } finally {
      if (corked.length > 0) {
        if (publishing > 0) process.nextTick(uncorkAll, corked)
        else setImmediate(uncorkAfterTurn, corked)
      }
    }
    if (message.publishedAt !== undefined) this.#context.delivered?.(message.publishedAt)
  }

  /**
   * Called by the engine when this instance may have missed messages that it could
   * not read back: every subscriber is told to resync.
   */
  #gap (): void {
    const info: Resync = { channel: this.name, lastEventId: this.#lastId ?? '', reason: 'gap' }
    for (const subscriber of [...this.#subscribers.values()]) {
      if (subscriber.merge === undefined) this.#gapOne(subscriber, info)
      else subscriber.isGapped = true
    }
  }

  /** A live subscriber missed messages: resynced, and sent the state again when it asked for snapshots. */
  #gapOne (subscriber: Subscriber, info: Resync): void {
    this.#resync(subscriber.stream, info, true)
    if (!subscriber.isSnapshot || !subscriber.stream.isOpen) return
    // Held from now, like a new subscriber's snapshot: the state read next covers the rest.
    subscriber.merge = new ReplayMerge(this.#context.compare, heldBytes)
    subscriber.heldSince = holdTick()
    void this.#replay(subscriber, undefined)
  }

  /**
   * Writes one message to one subscriber; its failure (filter, write) ends that
   * subscriber alone.
   *
   * @returns false when the write was queued behind a slow client (or the stream closed)
   */
  #writeTo (subscriber: Subscriber, decoded: Decoded): boolean {
    try {
      if (subscriber.filter !== undefined && decoded.isControl !== true && subscriber.filter(decoded.message) !== true) return true
      if (subscriber.stream[kWrite](decoded.frame, decoded.coalesceKey)) return true
      if (subscriber.stream.isOpen) this.#isBackedUp = true
    } catch (err) {
      this.#failSubscriber(subscriber, err)
    }
    return false
  }

  #failSubscriber (subscriber: Subscriber, err: unknown): void {
    this.#detach(subscriber.stream)
    const failure = new SubscriberError(this.name, err instanceof Error ? err.message : describe(err), { cause: err })
    subscriber.stream.request.log.error({ err: failure }, failure.message)
    subscriber.stream[kEnd]('error')
  }

  /** Holds a live message for a replaying subscriber, within its queue limit and policy. */
  #hold (subscriber: Subscriber, message: EngineMessage): void {
    const merge = subscriber.merge as ReplayMerge<EngineMessage>
    merge.hold(message)
    const { maxQueueBytes, queuePolicy } = subscriber.stream[kOptions]
    if (merge.heldSize <= maxQueueBytes) return
    // Held messages are not coalesced: under 'coalesce' a hold past the limit closes, as under 'close'.
    if (queuePolicy !== 'drop-oldest') {
      this.#detach(subscriber.stream)
      subscriber.stream.request.log.warn({ err: new QueueFullError(merge.heldSize, maxQueueBytes) }, 'event stream closed: live events held during its replay passed maxQueueBytes')
      subscriber.stream[kEnd]('policy')
    } else {
      const dropped = merge.dropOldest(maxQueueBytes)
      subscriber.droppedCount += dropped.length
      subscriber.droppedNewest = dropped.at(-1) ?? subscriber.droppedNewest
    }
  }

  /** The frame and payload of a message, or `undefined` when this catalog cannot take it. */
  #decode (message: EngineMessage): Decoded | undefined {
    if (message.event === REMOVE_EVENT || message.event === JOIN_EVENT || message.event === LEAVE_EVENT) return this.#decodeControl(message)
    const compiled = findEvent(this.catalog, message.event)
    const data = compiled === undefined ? undefined
      : message.payload !== undefined ? message.payload : parsePayload(compiled, message.data)
    if (data === undefined) {
      // Another version of the application (a rolling deploy), or foreign history
      // entries: skipped the same way live and in replay, and said once.
      if (!(this.#foreign ??= new Set()).has(message.event)) {
        this.#foreign.add(message.event)
        this.#context.log(new ForeignEventError(this.name, message.event), `channel "${this.name}" skipped an event its catalog cannot take`)
      }
      return undefined
    }
    let frame: Buffer
    try {
      frame = Buffer.from(eventText(message.event, message.data, message.id))
    } catch (err) {
      this.#context.log(err, `channel "${this.name}" skipped a message with an id it cannot write`)
      return undefined
    }
    const key = this.#state === undefined ? undefined : stateKey(this.#state, message.event, data)
    return { frame, message: { event: message.event, data, id: message.id } as SseMessage<any>, coalesceKey: key === undefined ? undefined : `${this.name}\n${key}` }
  }

  /** A control event of the channel's own (state removal, presence), checked: anyone may write to a Redis. */
  #decodeControl (message: EngineMessage): Decoded | undefined {
    let data: { key?: unknown, id?: unknown, info?: unknown } | undefined
    try {
      data = JSON.parse(message.data)
    } catch {}
    const isValid = data !== null && typeof data === 'object' && (message.event === REMOVE_EVENT ? typeof data.key === 'string' : typeof data.id === 'string')
    if (!isValid) return undefined
    const payload = message.event === REMOVE_EVENT ? { key: data?.key } : message.event === JOIN_EVENT ? { id: data?.id, info: data?.info } : { id: data?.id }
    const frame = controlFrame(message.event as typeof REMOVE_EVENT, payload, message.id)
    const coalesceKey = message.event === REMOVE_EVENT ? `${this.name}\n${payload.key as string}` : undefined
    return { frame, message: { event: message.event, data: payload, id: message.id } as SseMessage<any>, isControl: true, coalesceKey }
  }

  /** The engine's state, read in turn with replays' reads (a bounded number at once). */
  async #readSnapshot (): Promise<StateSnapshot> {
    const engine = this.#engine
    if (engine.snapshot === undefined) return { entries: [], position: undefined }
    return await this.#context.replayReads.run(() => {
      if (this.#isDropped) throw new ChannelDroppedError(this.name)
      return (engine.snapshot as () => Promise<StateSnapshot> | StateSnapshot)()
    })
  }

  /**
   * Writes the state to a subscriber whose live messages are held (then, with presence
   * events, who is there).
   *
   * @returns the position the state was read at (where the held messages join), or
   *   false when the subscriber is gone (the read failed: its stream was closed)
   */
  async #snapshotTo (subscriber: Subscriber): Promise<string | undefined | false> {
    const { stream } = subscriber
    let snapshot: StateSnapshot
    let present: Array<PresenceMember<S>> = []
    try {
      snapshot = await this.#readSnapshot()
      if (this.#presence?.resolved.events === true) present = await this.#presence.list<S>()
    } catch (err) {
      if (!stream.isOpen || this.#subscribers.get(stream) !== subscriber) return false
      subscriber.merge = undefined
      this.#context.log(err, `reading the state of channel "${this.name}" failed; the stream was closed so its client retries`)
      stream.close()
      return false
    }
    if (!(await this.#writeAll(subscriber, snapshot.entries, undefined))) return false
    // Joins and leaves held from before this list are written after it: applied in order, they leave the list right.
    for (const { id, info } of present) stream[kWrite](controlFrame(JOIN_EVENT, { id, info }))
    return snapshot.position
  }

  /** A page read as the read queue runs it: none once the channel is dropped (its replays are gone). */
  #readPage (after: string | undefined, limit: PageLimit): Promise<ReplayPage> | ReplayPage {
    if (this.#isDropped) throw new ChannelDroppedError(this.name)
    return this.#engine.readPage(after, limit)
  }

  /**
   * Replays what the subscriber missed, then makes it live. Read a page at a time
   * (replay-reads.ts) and written at the client's pace: the next page is read once this
   * one is written (a replay may pass `maxQueueBytes`). Live messages stay held
   * meanwhile, bounded by the same limit and policy, and are joined by position once
   * the last page is written.
   */
  async #replay (subscriber: Subscriber, lastEventId: string | undefined): Promise<void> {
    const { stream } = subscriber
    const isCurrent = (): boolean => stream.isOpen && this.#subscribers.get(stream) === subscriber
    let cursor = lastEventId
    let resync: Resync | undefined
    for (let isFirst = true; ; isFirst = false) {
      if (isFirst && cursor === undefined && subscriber.isSnapshot) {
        const at = await this.#snapshotTo(subscriber)
        if (at === false) return
        cursor = at
        break
      }
      let page: ReplayPage
      try {
        page = await (this.#pages as PageReads).read(cursor, subscriber.heldSince)
      } catch (err) {
        if (!isCurrent()) return
        subscriber.merge = undefined
        this.#context.log(err, `replay of channel "${this.name}" failed; the stream was closed so its client retries`)
        stream.close()
        return
      }
      if (!isCurrent()) return
      if (page.status !== 'ok') {
        // Evicted after a page was written (a replay slower than the history): what was
        // written stands, and the client is told where the gap begins.
        this.#stats.replayMisses++
        resync = { channel: this.name, lastEventId: cursor ?? '', reason: page.status }
        stream[kWrite](controlFrame(RESYNC_EVENT, resync))
        if (isFirst) cursor = undefined
        if (subscriber.isSnapshot) {
          // The state follows the resync: the client's view is whole again.
          const at = await this.#snapshotTo(subscriber)
          if (at === false) return
          cursor = at
        }
        break
      }
      if (isFirst) this.#stats.replaysServed++
      if (!(await this.#writeAll(subscriber, page.messages, cursor))) return
      cursor = page.messages.findLast((message) => message.id !== undefined)?.id ?? cursor
      if (page.isLast || page.messages.length === 0) break
    }
    // Held messages the policy dropped are lost only where the read did not cover them.
    const newestDropped = subscriber.droppedNewest
    const lost = newestDropped !== undefined && isAfter(newestDropped, cursor, this.#context.compare) ? subscriber.droppedCount : 0
    // A gap the engine reported meanwhile concerns the live messages: said before them.
    const gap: Resync | undefined = subscriber.isGapped ? { channel: this.name, lastEventId: cursor ?? '', reason: 'gap' } : undefined
    subscriber.isGapped = false
    if (gap !== undefined) {
      this.#resync(stream, gap, false)
      if (subscriber.isSnapshot) {
        const at = await this.#snapshotTo(subscriber)
        if (at === false) return
        cursor = at
      }
    }
    // What was held meanwhile, in batches: more may be held while a batch is written.
    const merge = subscriber.merge as ReplayMerge<EngineMessage>
    for (let batch = merge.release(cursor); batch.length > 0; batch = merge.release(cursor)) {
      if (!(await this.#writeAll(subscriber, batch, cursor))) return
      cursor = batch.findLast((message) => message.id !== undefined)?.id ?? cursor
    }
    // Nothing held and nothing awaited since: from here on, live messages go straight out.
    subscriber.merge = undefined
    subscriber.cursor = cursor
    if (lost > 0) stream[kMissed](lost, false)
    // The snapshot an onResync sends comes after everything held, never before.
    if (resync !== undefined) this.#callOnResync(stream, resync)
    if (gap !== undefined) this.#callOnResync(stream, gap)
    if (subscriber.isGapped) {
      // Another gap while the held messages were written.
      subscriber.isGapped = false
      this.#gapOne(subscriber, { channel: this.name, lastEventId: cursor ?? '', reason: 'gap' })
    }
    stream[kMissed](0, true)
  }

  /**
   * Writes messages in order, waiting for the client to drain when a write is queued.
   *
   * @returns false when the subscriber is gone (closed, ended, detached)
   */
  async #writeAll (subscriber: Subscriber, messages: readonly EngineMessage[], after: string | undefined): Promise<boolean> {
    const { stream } = subscriber
    let cursor = after
    for (const message of messages) {
      if (!stream.isOpen || this.#subscribers.get(stream) !== subscriber) return false
      if (!isAfter(message, cursor, this.#context.compare)) continue
      if (message.id !== undefined) cursor = message.id
      if (message.event === END_EVENT) {
        stream.end()
        return false
      }
      const decoded = this.#decode(message)
      if (decoded === undefined || this.#writeTo(subscriber, decoded)) continue
      if (!(await stream.drained())) return false
    }
    return stream.isOpen && this.#subscribers.get(stream) === subscriber
  }

  #resync (stream: SseStream<any>, info: Resync, callHook: boolean): void {
    stream[kWrite](controlFrame(RESYNC_EVENT, info))
    if (callHook) this.#callOnResync(stream, info)
  }

  #callOnResync (stream: SseStream<any>, info: Resync): void {
    try {
      this.#onResync?.(stream, info)
    } catch (err) {
      this.#context.log(err, `onResync of channel "${this.name}" threw`)
    }
  }

  #detach (stream: SseStream<any>): void {
    const subscriber = this.#subscribers.get(stream)
    if (subscriber === undefined) return
    this.#subscribers.delete(stream)
    stream[kOffClose](this)
    this.#presence?.leave(stream)
    if (this.#subscribers.size === 0) this.#armIdle()
  }

  #assertCatalog (stream: SseStream<any>): void {
    if (stream.catalog === this.catalog) return
    const missing = this.catalog.names.filter((name: string) => findEvent(stream.catalog, name) === undefined)
    if (missing.length > 0) throw new CatalogMismatchError(this.name, missing.map((name: string) => `"${name}"`).join(', '))
  }

  /** (Re)starts the idle countdown while nobody is subscribed. */
  #armIdle (): void {
    if (this.idleMs === false || this.#isDropped || this.#subscribers.size > 0) return
    clearTimeout(this.#idleTimer)
    this.#idleTimer = setTimeout(() => { this.drop().catch((err: unknown) => this.#context.log(err, `dropping idle channel "${this.name}" failed`)) }, this.idleMs)
    this.#idleTimer.unref()
  }

  #cancelIdle (): void {
    clearTimeout(this.#idleTimer)
    this.#idleTimer = undefined
  }
}
