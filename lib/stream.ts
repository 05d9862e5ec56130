/**
 * One stream's life: open, typed writes, close. What an idle stream holds is kept to
 * what it needs (see the fields). HTTP details are the transport's (transport/), frames
 * frame.ts's, the backlog and its policy queue.ts's, close listeners close-listeners.ts's,
 * deadlines timers.ts's, `from()` producer.ts's, heartbeats, stalls and counters the hub's.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { compiledEvent, serializePayload, type EventCatalog, type EventData, type EventName, type EventSchemas, type SendOptions, type SseMessage } from './catalog.js'
import { tell, withListener, withoutListener, type CloseHandler, type CloseListener, type CloseListeners } from './close-listeners.js'
import { END_EVENT, MISSED_EVENT } from './control.js'
import { ClientStalledError, EventTooLargeError, OpenFailedError, ProducerError, QueueFullError } from './errors.js'
import { commentFrame, controlFrame, describe, eventText, HEARTBEAT_FRAME, retryFrame } from './frame.js'
import type { CloseReason, StreamHub } from './hub.js'
import { decodeLastEventId } from './last-event-id.js'
import type { ResolvedStreamOptions } from './options.js'
import { pipe } from './producer.js'
import { FrameQueue } from './queue.js'
import { kCork, kEnd, kFail, kHeartbeat, kHubIndex, kLastWriteTick, kMissed, kOffClose, kOnClose, kOptions, kShutdown, kWrite } from './symbols.js'
import { closingTime, runAt } from './timers.js'
import { answerWithoutStream, transportFor, type CorkableSocket, type RawResponse } from './transport/index.js'

export type { CloseReason } from './hub.js'

/** The event schemas of a catalog type: `Events<typeof clock>`. */
export type Events<C extends EventCatalog<any>> = C extends EventCatalog<infer E> ? E : EventSchemas

/** Reconnection hint sent before a stream closes for its duration, unless `retryMs` says otherwise. */
const DURATION_RETRY_MS = 1000

function ignoreError (): void {}

/**
 * The stream a response belongs to, set on the response itself: the `close` and
 * `drain` listeners are then one function for all streams, not a closure each.
 */
const kStreamOf = Symbol('fastify-typed-sse.streamOf')

/** A response carrying its stream. */
type OwnedResponse = RawResponse & { [kStreamOf]: SseStream<any> }

/** What every stream of a plugin instance shares (one object for all: nothing per stream). */
export interface StreamContext {
  readonly hub: StreamHub
  readonly closeGraceMs: number
  /** The plugin's stream options, for streams opened without their own. */
  readonly options: ResolvedStreamOptions
  readonly maxEventBytes: number | false
  readonly maxLastEventIdBytes: number
}

/**
 * What the response becomes: an event stream; the headers of one without a body
 * (`HEAD`); or `204 No Content` for a client reconnecting to a stream that ended
 * (its Last-Event-ID is `sse:end`), which stops an EventSource for good.
 */
export type Disposition = 'stream' | 'head' | 'ended'

/**
 * An open event stream to one client, typed by its catalog. Get one with
 * `reply.sse(catalog)` (or `reply.sse()` in a route declared `{ sse: catalog }`); name
 * its type `SseStream<typeof catalog>`.
 *
 * @example
 * app.get('/time', (request, reply) => {
 *   const stream = reply.sse(clock)
 *   const timer = setInterval(() => stream.send('tick', { now: new Date().toISOString(), epochMs: Date.now() }), 1000)
 *   stream.onClose(() => clearInterval(timer))
 * })
 */
/*
 * No `implements HubMember`: the members the hub uses are internal, stripped from the
 * published .d.ts (stripInternal), where the clause would then fail (TS2420) in every
 * project that checks library types (skipLibCheck: false). hub.add() checks the shape.
 */
export class SseStream<C extends EventCatalog<any> = EventCatalog> {
  /** One `close` listener for every response: the client left. */
  static readonly #onRawClose = function (this: OwnedResponse): void {
    this[kStreamOf].#finish('client')
  }

  /** One `drain` listener for every response: the socket takes writes again. */
  static readonly #onRawDrain = function (this: OwnedResponse): void {
    this[kStreamOf].#onDrain()
  }

  /** The catalog that types and validates `send()`. */
  readonly catalog: C
  /** The request that opened this stream. */
  readonly request: FastifyRequest
  /** @internal the hub's tick at the last socket write */
  [kLastWriteTick] = 0

  // Every field below is held by every open stream, most of them idle: what only some
  // need (a backlog, a signal, a deadline) is made when first needed, and what can be
  // read from elsewhere (the transport, the Last-Event-ID) is not kept.
  readonly #raw: RawResponse
  readonly #context: StreamContext
  /** The context's options, or the stream's own. */
  readonly #options: ResolvedStreamOptions
  #closeReason: CloseReason | undefined
  #closeListeners: CloseListeners<SseStream<C>>
  /** Made the first time the socket refuses a write or the client loses an event (most never do). */
  #queue: FrameQueue | undefined
  #abort: AbortController | undefined
  /** @internal where the hub keeps this stream */
  [kHubIndex] = -1

  /**
   * @internal use `reply.sse(catalog)`
   * @param options the stream's own options, when not the context's
   * @param endsAt a per-stream deadline (epoch ms), e.g. a token's expiry
   */
  constructor (reply: FastifyReply, catalog: C, context: StreamContext, disposition: Disposition = 'stream', options = context.options, endsAt?: number) {
    this.catalog = catalog
    this.request = reply.request
    this.#context = context
    this.#options = options
    const transport = transportFor(reply.request)
    const raw = reply.raw as unknown as OwnedResponse
    this.#raw = raw
    raw.on('error', ignoreError)

    // Headers set before opening (hooks, reply.header(), CORS plugins) live on the
    // reply; hijack() skips onSend, so they are passed on here.
    const given = reply.getHeaders()
    reply.hijack()
    if (disposition === 'ended') {
      this.#closeReason = 'server'
      answerWithoutStream(raw, 204)
      return
    }
    try {
      // One object given to writeHead(), no setHeader(): Node then keeps no header map
      // for the life of the response (about 0.5 KB per open stream).
      raw.writeHead(200, transport.headers(given))
      // Send the headers now, so the client's `open` fires before the first event.
      raw.flushHeaders()
    } catch (err) {
      // An invalid header value set by the application, or a response it already
      // wrote to: the client gets an answer, and nothing stays counted.
      this.#closeReason = 'error'
      const failure = new OpenFailedError(err instanceof Error ? err.message : describe(err), { cause: err })
      this.request.log.error({ err: failure }, failure.message)
      answerWithoutStream(raw, 500)
      return
    }
    if (disposition === 'head') {
      this.#closeReason = 'server'
      raw.end()
      return
    }

    raw[kStreamOf] = this
    raw.on('close', SseStream.#onRawClose)
    context.hub.add(this)
    // The client may have left while the handler awaited (auth, a lookup): its 'close'
    // was emitted before we listened and will not come again.
    if (transport.isGone(raw)) {
      this.#finish('client')
      return
    }
    if (options.retryMs !== undefined) this.#write(retryFrame(options.retryMs), 0)
    const end = closingTime(options.maxDurationMs, endsAt)
    if (end !== undefined) {
      const deadline = runAt(end, () => this.#onDeadline())
      this.#closeListeners = withListener(this.#closeListeners, () => deadline.cancel())
    }
  }

  /** The request's `Last-Event-ID`, decoded as UTF-8; `undefined` when absent, empty or too long. */
  get lastEventId (): string | undefined {
    // Read from the request when asked (once, by a channel or the handler): not a field
    // every stream carries.
    return decodeLastEventId(this.request.headers['last-event-id'], this.#context.maxLastEventIdBytes)
  }

  /** `true` until the stream closes, for whatever reason. */
  get isOpen (): boolean {
    return this.#closeReason === undefined
  }

  /** Why the stream closed, or `undefined` while it is open. */
  get closeReason (): CloseReason | undefined {
    return this.#closeReason
  }

  /**
   * Aborted when the stream closes (client gone, `close()`, shutdown, policy).
   * Hand it to producers: `fetch(url, { signal: stream.signal })`.
   */
  get signal (): AbortSignal {
    if (this.#abort === undefined) {
      // Created on first use: most streams never need one, and each costs memory.
      this.#abort = new AbortController()
      if (!this.isOpen) this.#abort.abort()
    }
    return this.#abort.signal
  }

  /** Bytes waiting for the client to read. */
  get queuedBytes (): number {
    return this.#queue?.bytes ?? 0
  }

  /**
   * Validates and sends one event. Everything is checked before anything is written:
   * an invalid payload, id or retry throws and leaves the stream as it was.
   *
   * @returns `true` when written at once; `false` when queued behind a slow client
   *   (await `drained()` before sending more) or when the stream is closed (a no-op).
   * @throws TYPED_SSE_INVALID_PAYLOAD, TYPED_SSE_INVALID_ID, TYPED_SSE_INVALID_RETRY,
   *   TYPED_SSE_UNKNOWN_EVENT, TYPED_SSE_EVENT_TOO_LARGE
   * @example
   * stream.send('tick', { now: new Date().toISOString(), epochMs: Date.now() }, { id: 42 })
   */
  send<K extends EventName<Events<C>>> (event: K, data: EventData<Events<C>, K>, options?: SendOptions): boolean {
    const text = serializePayload(compiledEvent(this.catalog, event), data)
    const { maxEventBytes } = this.#context
    // A UTF-16 unit is at least one byte: a text this long is too large whatever it holds,
    // and is refused before its frame is built.
    if (maxEventBytes !== false && text.length > maxEventBytes) throw new EventTooLargeError(event, Buffer.byteLength(text), maxEventBytes)
    const frame = Buffer.from(eventText(event, text, options?.id, options?.retry))
    if (maxEventBytes !== false && frame.length > maxEventBytes) throw new EventTooLargeError(event, frame.length, maxEventBytes)
    return this.isOpen && this.#write(frame, 1)
  }

  /**
   * Sends a comment (ignored by clients, seen by proxies). Line breaks give several comment lines.
   *
   * @returns as `send()`
   * @throws TYPED_SSE_INVALID_COMMENT for a value that is neither a string nor a number
   * @example
   * stream.comment('still here')
   */
  comment (text: string | number = ''): boolean {
    const frame = commentFrame(text)
    return this.isOpen && this.#write(frame, 0)
  }

  /**
   * Sets the client's reconnection delay.
   *
   * @throws TYPED_SSE_INVALID_RETRY unless a non-negative integer
   * @example
   * stream.retry(10_000)
   */
  retry (ms: number): boolean {
    const frame = retryFrame(ms)
    return this.isOpen && this.#write(frame, 0)
  }

  /**
   * Resolves `true` once queued events reached the socket, or `false` when the stream
   * closed first (also when the client leaves while you wait).
   *
   * @example
   * if (!stream.send('token', t)) await stream.drained()
   */
  drained (): Promise<boolean> {
    if (!this.isOpen) return Promise.resolve(false)
    const queue = this.#queue
    return queue === undefined || !queue.isBackedUp ? Promise.resolve(true) : queue.wait()
  }

  /**
   * Runs `fn` once when the stream closes, with the reason; at once if already closed.
   *
   * @returns a function that removes `fn`
   * @example
   * stream.onClose((reason) => request.log.info({ reason }, 'stream closed'))
   */
  onClose (fn: (reason: CloseReason) => void): () => void {
    if (this.#closeReason !== undefined) {
      this.#tell(fn, this.#closeReason)
      return () => {}
    }
    this.#closeListeners = withListener(this.#closeListeners, fn)
    return () => this[kOffClose](fn)
  }

  /**
   * Closes the stream; the client reconnects (after its retry delay) with its last id.
   * Queued events are still flushed, within the plugin's `closeGraceMs`. A no-op when
   * already closed. Use `end()` for a stream that is finished for good.
   *
   * @example
   * stream.close()
   */
  close (): void {
    this.#end('server')
  }

  /**
   * Finishes the stream for good: sends the `sse:end` control event (the typed client
   * stops; a plain EventSource that reconnects anyway gets 204 and stops), then closes.
   *
   * @example
   * stream.send('done', { tokens: 42 }); stream.end()
   */
  end (): void {
    if (!this.isOpen) return
    this.#write(controlFrame(END_EVENT, {}, END_EVENT), 0)
    this.#end('server')
  }

  /**
   * Sends every message of `source`, honouring backpressure, then (unless
   * `end: false`) ends the stream for good (`end()`). When the client leaves, the
   * iterator's `return()` is called at once, so the producer's `finally` blocks run. A
   * producer error (or an invalid message) is logged through `request.log` with code
   * TYPED_SSE_PRODUCER_FAILED and closes the stream; the promise never rejects. An
   * error thrown after the stream closed (an abort through `signal`) is not a failure.
   *
   * @example
   * async function * tokens () { for await (const t of llm.stream(prompt)) yield { event: 'token', data: t } }
   * await stream.from(tokens())
   */
  from (source: AsyncIterable<SseMessage<Events<C>>> | Iterable<SseMessage<Events<C>>>, { end = true }: { end?: boolean } = {}): Promise<void> {
    const stream = this
    return pipe({
      get isOpen () { return stream.isOpen },
      send: ({ event, data, id, retry }) => this.send(event, data, id === undefined && retry === undefined ? undefined : { id, retry }),
      drained: () => this.drained(),
      onClose: (fn) => this.onClose(fn),
      end: () => this.end(),
      fail: (err) => this[kFail](err)
    }, source, end)
  }

  /**
   * @internal writes a frame built once for many streams (a channel publish); `coalesceKey`
   * names a keyed event that a newer one of the same key may replace in the queue
   */
  [kWrite] (frame: Buffer, coalesceKey?: string): boolean {
    return this.isOpen && this.#write(frame, 1, coalesceKey)
  }

  /**
   * @internal Corks the connection for a batch of writes (a channel publish), so Node
   * schedules one flush for the batch instead of one `nextTick` per socket.
   * @returns the socket for the caller to uncork (a local publish: at the end of the tick; a
   *   message from the engine: a loop turn later), or `undefined` when there is nothing to cork
   */
  [kCork] (): CorkableSocket | undefined {
    const socket = transportFor(this.request).socketOf(this.#raw)
    if (socket === undefined || !this.isOpen || socket.writableCorked > 0) return undefined
    socket.cork()
    return socket
  }

  /** @internal the stream's resolved options */
  get [kOptions] (): ResolvedStreamOptions {
    return this.#options
  }

  /**
   * @internal Tells `handler` when the stream closes (at once if it has): a channel's
   * subscription, which then needs no closure per stream.
   */
  [kOnClose] (handler: CloseHandler<SseStream<C>>): void {
    if (this.#closeReason !== undefined) this.#tell(handler, this.#closeReason)
    else this.#closeListeners = withListener(this.#closeListeners, handler)
  }

  /** @internal removes a close listener; a no-op once closing (the listeners are running then) */
  [kOffClose] (listener: CloseListener<SseStream<C>>): void {
    // Once closing, the listeners are running: removing one then would skip another.
    if (this.#closeReason === undefined) this.#closeListeners = withoutListener(this.#closeListeners, listener)
  }

  /**
   * @internal Ends the stream after a producer error, logged through `request.log`
   * with code TYPED_SSE_PRODUCER_FAILED (the error itself is its `cause`). An error
   * after the stream closed is logged at debug level only: a producer that stops on
   * `signal` throws an AbortError whenever a client leaves, which is no failure.
   */
  [kFail] (err: unknown): void {
    if (!this.isOpen) {
      this.request.log.debug({ err }, 'event producer stopped after the stream closed')
      return
    }
    const failure = new ProducerError(err instanceof Error ? err.message : describe(err), { cause: err })
    this.request.log.error({ err: failure }, failure.message)
    this.#end('error')
  }

  /** @internal ends the stream for a reason of the library's */
  [kEnd] (reason: CloseReason): void {
    this.#end(reason)
  }

  /**
   * @internal Counts events lost for this client; `sse:missed` reports them when the
   * queue drains, or now with `flush` when nothing is queued.
   */
  [kMissed] (count: number, flush: boolean): void {
    // Nothing lost and nothing queued: nothing to report, and no queue to make.
    if (count === 0 && this.#queue === undefined) return
    const queue = this.#queue ??= new FrameQueue(this.#context.hub)
    queue.lost(count)
    if (flush && !queue.isBackedUp) this.#flushMissed(queue)
  }

  /** @internal sent by the hub's ticker after a period of silence */
  [kHeartbeat] (): void {
    const { hub } = this.#context
    if (!this.#isBackedUp) {
      this.#write(HEARTBEAT_FRAME, 0)
    } else if (hub.isStalled(this)) {
      this.request.log.warn({ err: new ClientStalledError(hub.stalledMs as number, this.queuedBytes) }, 'event stream closed: client stalled')
      this.#end('stalled')
    }
  }

  /** @internal ends the stream for `fastify.close()` and resolves when the connection let go */
  [kShutdown] (graceMs: number): Promise<void> {
    return new Promise((resolve) => {
      this.#raw.once('close', resolve)
      // Spread the reconnects, and have them land after this server stopped listening:
      // a request that reaches a closing Fastify gets 503, on which EventSource gives up.
      if (this.isOpen) this.#write(retryFrame(graceMs + Math.floor(Math.random() * graceMs)), 0)
      this.#end('shutdown', graceMs)
      transportFor(this.request).release(this.#raw, graceMs)
    })
  }

  /** True from a refused write until `drain`. */
  get #isBackedUp (): boolean {
    return this.#queue !== undefined && this.#queue.isBackedUp
  }

  #write (frame: Buffer, events: number, coalesceKey?: string): boolean {
    const queue = this.#queue
    if (queue !== undefined && queue.isBackedUp) return this.#enqueue(queue, frame, events, coalesceKey)
    const hub = this.#context.hub
    this[kLastWriteTick] = hub.tick
    hub.wrote(frame.length, events)
    if (this.#raw.write(frame)) return true
    const backlog = this.#queue ??= new FrameQueue(hub)
    backlog.backUp()
    this.#raw.once('drain', SseStream.#onRawDrain)
    return false
  }

  #enqueue (queue: FrameQueue, frame: Buffer, events: number, coalesceKey?: string): false {
    if (!queue.push(frame, events, this.#options, coalesceKey)) {
      this.request.log.warn({ err: new QueueFullError(queue.bytes + frame.length, this.#options.maxQueueBytes) }, 'event stream closed: client not reading')
      this.#end('policy')
    }
    return false
  }

  /** Tells the client how many events it lost (`sse:missed`), now that it reads. */
  #flushMissed (queue: FrameQueue): void {
    if (!this.isOpen) return
    const missed = queue.takeMissed()
    if (missed > 0) this.#write(controlFrame(MISSED_EVENT, { dropped: missed }), 0)
  }

  #onDrain (): void {
    const queue = this.#queue as FrameQueue
    const frames = queue.take() as Buffer[]
    const missed = queue.takeMissed()
    if (missed > 0) frames.unshift(controlFrame(MISSED_EVENT, { dropped: missed }))
    // One write for the whole backlog: one chunk on the wire instead of many (its events
    // were counted when queued).
    if (frames.length > 0 && !this.#write(frames.length === 1 ? frames[0] : Buffer.concat(frames), 0)) return
    queue.settle(true)
  }

  #onDeadline (): void {
    if (!this.isOpen) return
    this.#write(retryFrame(this.#options.retryMs ?? DURATION_RETRY_MS), 0)
    this.#end('duration')
  }

  /** Ends the response (flushing the queue) after tearing down the stream's state. */
  #end (reason: CloseReason, graceMs = this.#context.closeGraceMs): void {
    if (!this.isOpen) return
    const pending = this.#queue?.take()
    this.#finish(reason)
    const raw = this.#raw
    if (reason === 'policy' || reason === 'stalled') {
      // The client is not reading: flushing would never finish.
      raw.destroy()
      return
    }
    raw.end(pending !== undefined && pending.length > 0 ? Buffer.concat(pending) : undefined)
    // A client that stops reading now would hold the connection forever.
    const timer = setTimeout(() => raw.destroy(), graceMs)
    timer.unref()
    raw.once('close', () => clearTimeout(timer))
  }

  /** Tears down everything the stream holds; idempotent. */
  #finish (reason: CloseReason): void {
    if (this.#closeReason !== undefined) return
    this.#closeReason = reason
    this.#context.hub.remove(this, reason)
    const raw = this.#raw
    raw.off('close', SseStream.#onRawClose)
    const queue = this.#queue
    if (queue !== undefined) {
      raw.off('drain', SseStream.#onRawDrain)
      queue.take()
      queue.settle(false)
    }
    this.#abort?.abort()
    const listeners = this.#closeListeners
    this.#closeListeners = undefined
    if (Array.isArray(listeners)) for (const listener of listeners) this.#tell(listener, reason)
    else if (listeners !== undefined) this.#tell(listeners, reason)
  }

  #tell (listener: CloseListener<SseStream<C>>, reason: CloseReason): void {
    try {
      tell(listener, this, reason)
    } catch (err) {
      this.request.log.error({ err }, 'an onClose callback of an event stream threw')
    }
  }
}
