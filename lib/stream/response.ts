/**
 * One stream's life on an opened response: open, backlog, close. What an idle stream
 * holds is kept to what it needs (see the fields). The typed writes are stream.ts's,
 * HTTP details the adapters' (adapters/), frames frame.ts's, the backlog and its policy queue.ts's, close listeners close-listeners.ts's,
 * deadlines timers.ts's, `from()` producer.ts's, heartbeats, stalls and counters the hub's.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { EventCatalog } from '../core/catalog.js'
import { tell, withListener, withoutListener, type CloseHandler, type CloseListener, type CloseListeners } from './close-listeners.js'
import { ClientStalledError, ProducerError, QueueFullError } from '../core/errors.js'
import { describe, HEARTBEAT_FRAME, retryFrame } from '../core/frame.js'
import type { CloseReason } from './hub.js'
import type { ResolvedStreamOptions, StreamContext } from './options.js'
import { FrameQueue } from './queue.js'
import { kContext, kCork, kEnd, kFail, kHeartbeat, kHubIndex, kLastWriteTick, kMissed, kOffClose, kOnClose, kOptions, kShutdown, kWrite } from '../core/symbols.js'
import { closingTime, runAt } from '../core/timers.js'
import { adapterFor, adapterOf, type CorkableSocket, type RawResponse } from './adapters/index.js'
import { openResponse, type Disposition } from './adapters/open.js'

/** Reconnection hint sent before a stream closes for its duration, unless `retryMs` says otherwise. */
const DURATION_RETRY_MS = 1000

function ignoreError (): void {}

/**
 * The stream a response belongs to, set on the response itself: the `close` and
 * `drain` listeners are then one function for all streams, not a closure each.
 */
const kStreamOf = Symbol('fastify-typed-sse.streamOf')

/** A response carrying its stream. */
type OwnedResponse = RawResponse & { [kStreamOf]: ResponseStream<any> }


/**
 * An event stream on an opened response: its life (open, backlog, close, shutdown),
 * and the members the hub and channels call. The typed API users call is its
 * subclass, `SseStream` (stream.ts).
 */
/*
 * No `implements HubMember`: the members the hub uses are internal, stripped from the
 * published .d.ts (stripInternal), where the clause would then fail (TS2420) in every
 * project that checks library types (skipLibCheck: false). hub.add() checks the shape.
 */
export class ResponseStream<C extends EventCatalog<any> = EventCatalog> {
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
  // read from elsewhere (the adapter, the Last-Event-ID) is not kept.
  readonly #raw: RawResponse
  readonly #context: StreamContext
  /** The context's options, or the stream's own. */
  readonly #options: ResolvedStreamOptions
  /** Decoded once, where the request came in (http/open.ts), and passed on. */
  readonly #lastEventId: string | undefined
  #closeReason: CloseReason | undefined
  #closeListeners: CloseListeners<ResponseStream<C>>
  /** Made the first time the socket refuses a write or the client loses an event (most never do). */
  #queue: FrameQueue | undefined
  #abort: AbortController | undefined
  /** @internal where the hub keeps this stream */
  [kHubIndex] = -1

  /**
   * @internal use `reply.sse(catalog)`
   * @param lastEventId the request's `Last-Event-ID`, decoded
   * @param options the stream's own options, when not the context's
   * @param endsAt a per-stream deadline (epoch ms), e.g. a token's expiry
   */
  constructor (reply: FastifyReply, catalog: C, context: StreamContext, disposition: Disposition = 'stream', lastEventId?: string, options = context.options, endsAt?: number) {
    this.catalog = catalog
    this.request = reply.request
    this.#context = context
    this.#options = options
    this.#lastEventId = lastEventId
    const adapter = adapterFor(reply.request)
    const raw = reply.raw as unknown as OwnedResponse
    this.#raw = raw
    raw.on('error', ignoreError)

    const closed = openResponse(reply, raw, adapter, disposition)
    if (closed !== undefined) {
      this.#closeReason = closed
      return
    }

    raw[kStreamOf] = this
    raw.on('close', ResponseStream.#onRawClose)
    context.hub.add(this)
    // The client may have left while the handler awaited (auth, a lookup): its 'close'
    // was emitted before we listened and will not come again.
    if (adapter.isGone(raw)) {
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
    return this.#lastEventId
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
   * @internal writes a built frame: an event's (a channel publish builds one for many
   * streams), or with `events` 0 a comment or a control frame
   */
  /**
   * @internal writes a frame built once for many streams (a channel publish); `coalesceKey`
   * names a keyed event that a newer one of the same key may replace in the queue
   */
  [kWrite] (frame: Buffer, events = 1, coalesceKey?: string): boolean {
    return this.isOpen && this.#write(frame, events, coalesceKey)
  }

  /**
   * @internal Corks the connection for a batch of writes (a channel publish), so Node
   * schedules one flush for the batch instead of one `nextTick` per socket.
   * @returns the socket for the caller to uncork (a local publish: at the end of the tick; a
   *   message from the engine: a loop turn later), or `undefined` when there is nothing to cork
   */
  [kCork] (): CorkableSocket | undefined {
    const socket = adapterOf(this.#raw).socketOf(this.#raw)
    if (socket === undefined || !this.isOpen || socket.writableCorked > 0) return undefined
    socket.cork()
    return socket
  }

  /** @internal what every stream of the plugin instance shares */
  get [kContext] (): StreamContext {
    return this.#context
  }

  /** @internal the stream's resolved options */
  get [kOptions] (): ResolvedStreamOptions {
    return this.#options
  }

  /**
   * @internal Tells `handler` when the stream closes (at once if it has): a channel's
   * subscription, which then needs no closure per stream.
   */
  [kOnClose] (handler: CloseHandler<ResponseStream<C>>): void {
    if (this.#closeReason !== undefined) this.#tell(handler, this.#closeReason)
    else this.#closeListeners = withListener(this.#closeListeners, handler)
  }

  /** @internal removes a close listener; a no-op once closing (the listeners are running then) */
  [kOffClose] (listener: CloseListener<ResponseStream<C>>): void {
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
      adapterFor(this.request).release(this.#raw, graceMs)
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
    if (adapterOf(this.#raw).write(this.#raw, frame)) return true
    const backlog = this.#queue ??= new FrameQueue(hub)
    backlog.backUp()
    this.#raw.once('drain', ResponseStream.#onRawDrain)
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
    const missed = queue.missedFrame()
    if (missed !== undefined) this.#write(missed, 0)
  }

  #onDrain (): void {
    const queue = this.#queue as FrameQueue
    const backlog = queue.drain()
    if (backlog !== undefined && !this.#write(backlog, 0)) return
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
    raw.off('close', ResponseStream.#onRawClose)
    const queue = this.#queue
    if (queue !== undefined) {
      raw.off('drain', ResponseStream.#onRawDrain)
      adapterOf(raw).forgetDrain(raw)
      queue.take()
      queue.settle(false)
    }
    this.#abort?.abort()
    const listeners = this.#closeListeners
    this.#closeListeners = undefined
    if (Array.isArray(listeners)) for (const listener of listeners) this.#tell(listener, reason)
    else if (listeners !== undefined) this.#tell(listeners, reason)
  }

  #tell (listener: CloseListener<ResponseStream<C>>, reason: CloseReason): void {
    try {
      tell(listener, this, reason)
    } catch (err) {
      this.request.log.error({ err }, 'an onClose callback of an event stream threw')
    }
  }
}
