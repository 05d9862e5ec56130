/**
 * Broadcast channels, their API and lifetime: a publish is validated once and handed
 * to the engine; what the engine delivers goes out through the fan-out (fanout.ts),
 * encoded once and written to every subscriber, and a subscriber that comes back with
 * Last-Event-ID first gets what it missed (replay.ts), or the state (state.ts).
 * Presence: presence.ts. Channels by name: registry.ts.
 */
import type { TSchema } from '@sinclair/typebox'
import { compiledEvent, findEvent, serializePayload, type EventCatalog, type EventData, type EventName, type Events } from '../core/catalog.js'
import { END_EVENT, RESYNC_EVENT, type Resync } from '../core/control.js'
import { CatalogMismatchError, ChannelDroppedError, EventTooLargeError, InvalidOptionError } from '../core/errors.js'
import { controlFrame, eventByteLength } from '../core/frame.js'
import type { ComparePositions } from '../core/merge.js'
import type { ChannelStats } from '../core/stats.js'
import { kClose, kClosed, kOffClose, kOnClose, kWrite } from '../core/symbols.js'
import type { ChannelFeatures, ChannelListener, EngineChannel, EngineMessage, PageLimit, ReplayPage, ResolvedHistory } from '../engine/engine.js'
import { PageReads, type ReadQueue } from '../engine/replay-reads.js'
import type { SseStream } from '../stream/stream.js'
import { afterIo, beginPublish, endPublish, Fanout, type Subscriber } from './fanout.js'
import { checkSubscription, type ChannelOptions, type ChannelSettings, type SubscribeOptions } from './options.js'
import { ChannelPresence, type PresenceMember } from './presence.js'
import { Replay, type ReplayContext } from './replay.js'
import { IdleTimer } from './idle.js'
import { ChannelState, readSnapshot, type StateEntry } from './state.js'

/**
 * A stream that can subscribe to a channel of catalog `C`: its own catalog declares
 * every event of `C`, with the same schema (it may declare more).
 */
export type StreamFor<C extends EventCatalog<any>> = SseStream<any> & {
  readonly catalog: { readonly schemas: { readonly [K in keyof Events<C>]: Events<C>[K] } }
}

/** What a channel gets from its registry. */
export interface ChannelContext {
  readonly log: (err: unknown, message: string) => void
  readonly maxEventBytes: number | false
  readonly maxLastEventIdBytes: number
  readonly compare: ComparePositions
  /** The engine's ids cannot break a frame (engine.ts, `withWireSafeIds`): frames skip their check. */
  readonly wireSafeIds: boolean
  /** Opens the engine side of the channel. */
  readonly open: (history: ResolvedHistory | undefined, listener: ChannelListener, features: ChannelFeatures) => EngineChannel
  /** The channel was idle for `idleMs` or dropped: forget it. */
  readonly forget: (channel: Channel<any>) => void
  /** Told after a live message was written to local subscribers (metrics on): when it was published. */
  readonly delivered?: (publishedAt: number) => void
  /** The instance's history reads (replay-reads.ts): a bounded number at once, the rest in line. */
  readonly replayReads: ReadQueue
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
  readonly #state: ChannelState<C>
  readonly #presence: ChannelPresence | undefined
  readonly #engine: EngineChannel
  /** History reads shared by this channel's replays; with history only. */
  readonly #pages: PageReads | undefined
  readonly #context: ChannelContext
  readonly #onResync: ChannelOptions<C>['onResync']
  readonly #subscribers = new Map<SseStream<any>, Subscriber>()
  readonly #stats = { published: 0, delivered: 0, replaysServed: 0, replayMisses: 0 }
  readonly #fanout: Fanout
  /** What this channel's replays need of it: one object for all of them. */
  readonly #replays: ReplayContext
  /** The id of the last message delivered here: where a gap's resync says the client was. */
  #lastId: string | undefined
  #isDropped = false
  readonly #idle: IdleTimer

  /** @internal use `app.sse.channel()`; `settings` were checked and resolved by the registry */
  constructor (name: string, catalog: C, settings: ChannelSettings<C>, context: ChannelContext) {
    this.name = name
    this.catalog = catalog
    this.history = settings.history
    this.idleMs = settings.idleMs
    this.#onResync = settings.onResync
    this.#context = context
    this.#idle = new IdleTimer(this.idleMs, () => { this.drop().catch((err: unknown) => context.log(err, `dropping idle channel "${name}" failed`)) })
    this.features = { maxKeys: settings.state?.maxKeys, presence: settings.presence !== undefined }
    const detach = (stream: SseStream<any>): void => this.#detach(stream)
    this.#fanout = new Fanout({ name, catalog, compare: context.compare, log: context.log, state: settings.state, detach, wireSafeIds: context.wireSafeIds })
    this.#replays = {
      name,
      compare: context.compare,
      log: context.log,
      read: (cursor, heldSince) => (this.#pages as PageReads).read(cursor, heldSince),
      isCurrent: (subscriber) => this.#subscribers.get(subscriber.stream) === subscriber,
      counted: (isServed) => { if (isServed) this.#stats.replaysServed++; else this.#stats.replayMisses++ },
      decode: (message) => this.#fanout.decode(message),
      writeTo: (subscriber, decoded) => this.#fanout.writeTo(subscriber, decoded),
      resync: (stream, info, callHook) => this.#resync(stream, info, callHook),
      callOnResync: (stream, info) => this.#callOnResync(stream, info),
      detach,
      snapshot: async () => await readSnapshot(this.#engine, context.replayReads, name, () => this.#isDropped, this.#presence),
      gapped: (subscriber, info) => this.#gapOne(subscriber, info)
    }
    this.#engine = context.open(this.history, { deliver: (message) => this.#deliver(message), gap: () => this.#gap(), left: (members) => this.#presence?.left(members) }, this.features)
    this.#presence = ChannelPresence.open(settings.presence, this.#engine, context.log)
    this.#state = new ChannelState(name, settings.state, () => this.#engine, context.replayReads, () => this.#isDropped, (message) => this.#fanout.decode(message))
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
      const bytes = text.length > maxEventBytes ? Buffer.byteLength(text) : eventByteLength(event, text)
      if (bytes > maxEventBytes) throw new EventTooLargeError(event, bytes, maxEventBytes)
    }
    const key = this.#state.keyOf(event, data)
    this.#stats.published++
    this.#armIdle()
    // The engine gives an id exactly when the channel has history, which is what H says.
    let published: Promise<PublishResult<H>>
    beginPublish()
    try {
      published = this.#engine.publish({ id: undefined, event, data: text, payload: data, publishedAt: Date.now(), key }) as Promise<PublishResult<H>>
    } finally {
      endPublish()
    }
    if (!this.#fanout.isBackedUp) return published
    this.#fanout.isBackedUp = false
    return published.then(afterIo)
  }

  /**
   * Deletes a key from the channel's state, on every instance: subscribers get `sse:remove`
   * (with an id, so a replay has it too). Resolves with that id.
   * @throws TYPED_SSE_INVALID_OPTION (no `state`), TYPED_SSE_INVALID_STATE_KEY, TYPED_SSE_CHANNEL_DROPPED
   * @example await prices.remove('ACME')
   */
  remove (key: string | number): Promise<string> {
    if (this.#isDropped) throw new ChannelDroppedError(this.name)
    this.#armIdle()
    return this.#state.remove(key)
  }

  /**
   * The channel's keyed state now: the latest event of every key, oldest first.
   * @throws TYPED_SSE_INVALID_OPTION (no `state`); rejects with TYPED_SSE_ENGINE_UNAVAILABLE
   * @example for (const { key, data } of await prices.state()) console.log(key, data)
   */
  async state (): Promise<Array<StateEntry<C>>> {
    return await this.#state.entries()
  }

  /**
   * The members present on every instance, each once, with its connections. @throws TYPED_SSE_INVALID_OPTION (no `presence`)
   * @example const watching = await room.presence() // [{ id: 'alice', info: { name: 'Alice' }, connections: 2 }]
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
    const canSnapshot = this.history !== undefined && (this.features.maxKeys !== undefined || this.#presence?.resolved.events === true)
    const { filter, isSnapshot, member } = checkSubscription(this.name, options, canSnapshot, this.#presence?.resolved)
    this.#assertCatalog(stream)
    if (!stream.isOpen || this.#subscribers.has(stream)) return Promise.resolve()
    let lastEventId = options.lastEventId === undefined ? stream.lastEventId : options.lastEventId ?? undefined
    if (lastEventId !== undefined && Buffer.byteLength(lastEventId) > this.#context.maxLastEventIdBytes) lastEventId = undefined
    const isReplaying = this.history !== undefined && (lastEventId !== undefined || options.replayAll === true || isSnapshot)
    const subscriber: Subscriber = { stream, filter, isSnapshot, replay: undefined, cursor: undefined }
    const replay = isReplaying ? subscriber.replay = new Replay(subscriber, this.#replays) : undefined
    this.#subscribers.set(stream, subscriber)
    this.#idle.cancel()
    // The channel itself is told of the close ([kClosed]): no closure per subscriber.
    stream[kOnClose](this)
    const joined = member === undefined ? undefined : this.#presence?.join(stream, member.id, member.info)
    const live = replay !== undefined ? replay.start(lastEventId) : this.#engine.ready === undefined ? Promise.resolve() : this.#whenLive(subscriber)
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
    this.#idle.cancel()
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
    this.#idle.cancel()
    this.#presence?.leaveAll()
    this.#subscribers.clear()
    return this.#engine.close()
  }

  /**
   * Called by the engine for every message of this channel, in order, once per
   * instance: one frame for all, written to each subscriber in a corked batch (fanout.ts).
   */
  #deliver (message: EngineMessage): void {
    this.#stats.delivered++
    if (message.id !== undefined) this.#lastId = message.id
    if (this.#subscribers.size === 0) return
    if (message.event === END_EVENT) {
      for (const subscriber of [...this.#subscribers.values()]) {
        if (subscriber.replay !== undefined) subscriber.replay.merge.hold(message)
        else subscriber.stream.end()
      }
      return
    }
    this.#fanout.deliver(this.#subscribers, message)
    if (message.publishedAt !== undefined) this.#context.delivered?.(message.publishedAt)
  }

  /**
   * Called by the engine when this instance may have missed messages that it could
   * not read back: every subscriber is told to resync.
   */
  #gap (): void {
    const info: Resync = { channel: this.name, lastEventId: this.#lastId ?? '', reason: 'gap' }
    for (const subscriber of [...this.#subscribers.values()]) {
      if (subscriber.replay === undefined) this.#gapOne(subscriber, info)
      else subscriber.replay.isGapped = true
    }
  }

  /** A live subscriber missed messages: resynced, and (held from now) sent the state again when it asked for snapshots. */
  #gapOne (subscriber: Subscriber, info: Resync): void {
    this.#resync(subscriber.stream, info, true)
    if (subscriber.isSnapshot && subscriber.stream.isOpen) void (subscriber.replay = new Replay(subscriber, this.#replays)).start(undefined)
  }

  /** A page read as the read queue runs it: none once the channel is dropped (its replays are gone). */
  #readPage (after: string | undefined, limit: PageLimit): Promise<ReplayPage> | ReplayPage {
    if (this.#isDropped) throw new ChannelDroppedError(this.name)
    return this.#engine.readPage(after, limit)
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
    const missing = stream.catalog === this.catalog ? [] : this.catalog.names.filter((name: string) => findEvent(stream.catalog, name) === undefined)
    if (missing.length > 0) throw new CatalogMismatchError(this.name, missing.map((name: string) => `"${name}"`).join(', '))
  }

  /** (Re)starts the idle countdown while nobody is subscribed. */
  #armIdle (): void {
    if (!this.#isDropped && this.#subscribers.size === 0) this.#idle.arm()
  }
}
