/**
 * One client connection: headers, typed writes, backpressure with a bounded queue,
 * heartbeats (through the hub), disconnect detection and close.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { isUtf8 } from 'node:buffer'
import { compiledEvent, serializePayload, type EventCatalog, type EventData, type EventName, type EventSchemas, type SendOptions, type SseMessage } from './catalog.js'
import { MISSED_EVENT } from './control.js'
import { commentFrame, controlFrame, eventText, HEARTBEAT_FRAME, retryFrame } from './frame.js'
import { ClientStalledError, EventTooLargeError, ProducerError, QueueFullError } from './errors.js'
import { TICKS_PER_HEARTBEAT, type HubMember, type StreamHub } from './hub.js'
import type { ResolvedStreamOptions } from './options.js'

/**
 * Why a stream closed: `'client'` left, the application called `close()` (`'server'`),
 * the queue policy (`'policy'`), a client that read nothing for two heartbeat
 * periods (`'stalled'`), `maxDurationMs` or `endsAt` (`'duration'`), `fastify.close()`
 * (`'shutdown'`), or a producer error (`'error'`).
 */
export type CloseReason = 'client' | 'server' | 'policy' | 'stalled' | 'duration' | 'shutdown' | 'error'

/** What a stream uses of Node's response (HTTP/1.1 `ServerResponse` or HTTP/2 `Http2ServerResponse`). */
interface RawResponse {
  write (chunk: Buffer): boolean
  end (chunk?: Buffer): unknown
  destroy (): unknown
  writeHead (statusCode: number, headers: Record<string, number | string | readonly string[]>): unknown
  flushHeaders (): void
  on (event: 'error', listener: () => void): unknown
  once (event: 'close' | 'drain', listener: () => void): unknown
  off (event: 'close' | 'drain', listener: () => void): unknown
  /** HTTP/1.1: true once the connection is gone. */
  readonly destroyed?: boolean
  /** HTTP/2: the response's stream, and through it the session. */
  readonly stream?: { readonly destroyed: boolean, readonly session?: { close (): void } }
  /** HTTP/1.1: the connection (null once detached). */
  readonly socket?: CorkableSocket | null
}

/** What a channel needs of a connection to batch a publish's writes. */
export interface CorkableSocket {
  readonly writableCorked: number
  cork (): void
  uncork (): void
}

/** Headers no stream may pass on: the body is an endless chunked/HTTP/2 stream. */
const DROPPED_HEADERS = new Set(['content-length', 'transfer-encoding', 'content-encoding'])
/** Connection-specific headers, which HTTP/2 forbids (RFC 9113 §8.2.2): Node would throw. */
const HTTP1_ONLY_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'upgrade'])
/** Heartbeat periods without a single socket write after which a backed-up client counts as stalled. */
const STALLED_PERIODS = 2
/** Reconnection hint sent before a stream closes for its duration, unless `retryMs` says otherwise. */
const DURATION_RETRY_MS = 1000
const NON_ASCII = /[^\x00-\x7f]/

function ignoreError (): void {}

/**
 * Node exposes header values as latin1; browsers send `Last-Event-ID` as UTF-8.
 * Bytes that are not valid UTF-8 keep their latin1 reading: Node's fetch (so the
 * `eventsource` package) sends an id such as 'café' as latin1, one byte per character.
 * Returns undefined for a missing or empty header (browsers never send an empty one).
 */
function decodeLastEventId (value: string | string[] | undefined, maxBytes: number): string | undefined {
  const header = Array.isArray(value) ? value[0] : value
  // latin1: one character per byte, so the length is the byte count.
  if (header === undefined || header === '' || header.length > maxBytes) return undefined
  if (!NON_ASCII.test(header)) return header
  const bytes = Buffer.from(header, 'latin1')
  return isUtf8(bytes) ? bytes.toString('utf8') : header
}

/** @internal how the plugin opens a stream */
export interface StreamContext {
  readonly hub: StreamHub
  readonly heartbeatMs: number | false
  readonly closeGraceMs: number
  readonly options: ResolvedStreamOptions
  /** Per-stream deadline (epoch ms), e.g. a token's expiry. */
  readonly endsAt?: number
  readonly maxEventBytes: number | false
  readonly maxLastEventIdBytes: number
}

/**
 * An open event stream to one client, typed by its catalog. Get one with `reply.sse(catalog)`.
 *
 * @example
 * app.get('/time', (request, reply) => {
 *   const stream = reply.sse(clock)
 *   const timer = setInterval(() => stream.send('tick', { now: new Date().toISOString(), epochMs: Date.now() }), 1000)
 *   stream.onClose(() => clearInterval(timer))
 * })
 */
export class SseStream<E extends EventSchemas = EventSchemas> implements HubMember {
  /** The catalog that types and validates `send()`. */
  readonly catalog: EventCatalog<E>
  /** The request that opened this stream. */
  readonly request: FastifyRequest
  /** The request's `Last-Event-ID`, decoded as UTF-8; `undefined` when absent or empty. */
  readonly lastEventId: string | undefined
  /** @internal the hub's tick at the last socket write */
  lastWriteTick = 0

  readonly #raw: RawResponse
  /** HTTP/1.1 only: HTTP/2 streams share their session's socket. */
  readonly #socket: CorkableSocket | undefined
  readonly #context: StreamContext
  #closeReason: CloseReason | undefined
  /** Frames waiting for `drain`; `undefined` while the socket accepts writes. */
  #queue: Buffer[] | undefined
  #queuedBytes = 0
  #droppedFrames = 0
  #abort: AbortController | undefined
  #closeCallbacks: Array<(reason: CloseReason) => void> | undefined
  #drainWaiters: Array<(drained: boolean) => void> | undefined
  #deadline: NodeJS.Timeout | undefined

  /** @internal use `reply.sse(catalog)` */
  constructor (reply: FastifyReply, catalog: EventCatalog<E>, context: StreamContext) {
    this.catalog = catalog
    this.request = reply.request
    this.lastEventId = decodeLastEventId(reply.request.headers['last-event-id'], context.maxLastEventIdBytes)
    this.#context = context
    const raw = reply.raw as unknown as RawResponse
    this.#raw = raw

    // Headers set before opening (hooks, reply.header(), CORS plugins) live on the
    // reply; hijack() skips onSend, so copy them to the raw response ourselves.
    const headers = reply.getHeaders()
    reply.hijack()
    // One object given to writeHead(), no setHeader(): Node then keeps no header map
    // for the life of the response (about 0.5 KB per open stream).
    const head: Record<string, number | string | readonly string[]> = {
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no'
    }
    const isHttp1 = reply.request.raw.httpVersionMajor === 1
    for (const name in headers) {
      const value = headers[name]
      if (value !== undefined && !DROPPED_HEADERS.has(name) && (isHttp1 || !HTTP1_ONLY_HEADERS.has(name))) head[name] = value
    }
    head['content-type'] = 'text/event-stream; charset=utf-8'
    if (isHttp1) head.connection = 'keep-alive'
    this.#socket = isHttp1 ? raw.socket ?? undefined : undefined
    raw.writeHead(200, head)
    // Send the headers now, so the client's `open` fires before the first event.
    raw.flushHeaders()

    raw.on('error', ignoreError)
    raw.once('close', this.#onRawClose)
    context.hub.add(this)
    // The client may have left while the handler awaited (auth, a lookup): its 'close'
    // was emitted before we listened and will not come again.
    if (raw.stream?.destroyed ?? raw.destroyed === true) {
      this.#finish('client')
      return
    }
    const { retryMs, maxDurationMs } = context.options
    if (retryMs !== undefined) this.#write(retryFrame(retryMs))
    const durationEnd = maxDurationMs === false ? Infinity : Date.now() + maxDurationMs
    const end = Math.min(durationEnd, context.endsAt ?? Infinity)
    if (end !== Infinity) {
      this.#deadline = setTimeout(this.#onDeadline, Math.max(0, end - Date.now()))
      this.#deadline.unref()
    }
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
    return this.#queuedBytes
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
  send<K extends EventName<E>> (event: K, data: EventData<E, K>, options?: SendOptions): boolean {
    const frame = Buffer.from(eventText(event, serializePayload(compiledEvent(this.catalog, event), data), options?.id, options?.retry))
    const { maxEventBytes } = this.#context
    if (maxEventBytes !== false && frame.length > maxEventBytes) throw new EventTooLargeError(event, frame.length, maxEventBytes)
    if (!this.isOpen) return false
    this.#context.hub.counters.eventsSent++
    return this.#write(frame)
  }

  /**
   * Sends a comment (ignored by clients, seen by proxies). Line breaks give several comment lines.
   *
   * @returns as `send()`
   * @example
   * stream.comment('still here')
   */
  comment (text = ''): boolean {
    return this.isOpen && this.#write(commentFrame(String(text)))
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
    return this.isOpen && this.#write(frame)
  }

  /**
   * @internal Writes an already encoded frame (channels encode once for every
   * subscriber and hand each stream the same Buffer).
   */
  writeFrame (frame: Buffer): boolean {
    if (!this.isOpen) return false
    this.#context.hub.counters.eventsSent++
    return this.#write(frame)
  }

  /**
   * @internal Corks the connection for a batch of writes (a channel publish), so Node
   * schedules one flush for the batch instead of one `nextTick` per socket.
   * @returns the socket to uncork at the end of the tick, or `undefined` when there is nothing to cork
   */
  cork (): CorkableSocket | undefined {
    const socket = this.#socket
    if (socket === undefined || !this.isOpen || socket.writableCorked > 0) return undefined
    socket.cork()
    return socket
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
    if (this.#queue === undefined) return Promise.resolve(true)
    return new Promise((resolve) => { (this.#drainWaiters ??= []).push(resolve) })
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
      this.#runCallback(fn, this.#closeReason)
      return () => {}
    }
    const callbacks = (this.#closeCallbacks ??= [])
    callbacks.push(fn)
    return () => {
      const index = callbacks.indexOf(fn)
      if (index !== -1) callbacks.splice(index, 1)
    }
  }

  /**
   * Ends the stream. Queued events are still flushed, within the plugin's
   * `closeGraceMs`. A no-op when already closed.
   *
   * @example
   * stream.send('done', { tokens: 42 }); stream.close()
   */
  close (): void {
    this.#end('server')
  }

  /**
   * Sends every message of `source`, honouring backpressure, then (unless
   * `end: false`) closes the stream. When the client leaves, the iterator's
   * `return()` is called at once, so the producer's `finally` blocks run. A producer
   * error (or an invalid message) is logged through `request.log` with code
   * TYPED_SSE_PRODUCER_FAILED and ends the stream; the promise never rejects. An
   * error thrown after the stream closed (an abort through `signal`) is not a failure.
   *
   * @example
   * async function * tokens () { for await (const t of llm.stream(prompt)) yield { event: 'token', data: t } }
   * await stream.from(tokens())
   */
  async from (source: AsyncIterable<SseMessage<E>> | Iterable<SseMessage<E>>, { end = true }: { end?: boolean } = {}): Promise<void> {
    let iterator: AsyncIterator<SseMessage<E>> | Iterator<SseMessage<E>>
    try {
      iterator = Symbol.asyncIterator in source
        ? source[Symbol.asyncIterator]()
        : (source as Iterable<SseMessage<E>>)[Symbol.iterator]()
    } catch (err) {
      this.fail(err)
      return
    }
    let isDone = false
    const stop = (): void => {
      if (!isDone) Promise.resolve(iterator.return?.()).catch(ignoreError)
    }
    const removeStop = this.onClose(stop)
    try {
      while (this.isOpen) {
        const step = await iterator.next()
        if (step.done === true) {
          isDone = true
          break
        }
        const { event, data, id, retry } = step.value
        const options = id === undefined && retry === undefined ? undefined : { id, retry }
        if (!this.send(event, data, options) && !(await this.drained())) break
      }
      if (end) this.close()
    } catch (err) {
      stop()
      this.fail(err)
    } finally {
      removeStop()
    }
  }

  /**
   * @internal Ends the stream after a producer error, logged through `request.log`
   * with code TYPED_SSE_PRODUCER_FAILED (the error itself is its `cause`). An error
   * after the stream closed is logged at debug level only: a producer that stops on
   * `signal` throws an AbortError whenever a client leaves, which is no failure.
   */
  fail (err: unknown): void {
    if (!this.isOpen) {
      this.request.log.debug({ err }, 'event producer stopped after the stream closed')
      return
    }
    const failure = new ProducerError(err instanceof Error ? err.message : String(err))
    failure.cause = err
    this.request.log.error({ err: failure }, failure.message)
    this.#end('error')
  }

  /** @internal sent by the hub's ticker after a period of silence */
  heartbeat (): void {
    if (this.#queue === undefined) {
      this.#write(HEARTBEAT_FRAME)
    } else if (this.#context.hub.tick - this.lastWriteTick > STALLED_PERIODS * TICKS_PER_HEARTBEAT) {
      // Backed up and no byte accepted by the socket for two periods: a half-open or
      // frozen client. Free its memory; a live client reconnects and replays.
      const stalledMs = STALLED_PERIODS * (this.#context.heartbeatMs as number)
      this.request.log.warn({ err: new ClientStalledError(stalledMs, this.#queuedBytes) }, 'event stream closed: client stalled')
      this.#end('stalled')
    }
  }

  /** @internal ends the stream for `fastify.close()` and resolves when the connection let go */
  shutdown (graceMs: number): Promise<void> {
    return new Promise((resolve) => {
      this.#raw.once('close', resolve)
      // Spread the reconnects, and have them land after this server stopped listening:
      // a request that reaches a closing Fastify gets 503, on which EventSource gives up.
      if (this.isOpen) this.#write(retryFrame(graceMs + Math.floor(Math.random() * graceMs)))
      this.#end('shutdown', graceMs)
      // An HTTP/2 session outlives its streams, and before Node 24 server.close() waits
      // for it (Fastify closes sessions only with forceCloseConnections: true). Close it
      // gracefully (GOAWAY): other streams on it still finish.
      this.#raw.stream?.session?.close()
    })
  }

  #write (frame: Buffer): boolean {
    if (this.#queue !== undefined) return this.#enqueue(frame)
    this.lastWriteTick = this.#context.hub.tick
    this.#context.hub.counters.bytesWritten += frame.length
    if (this.#raw.write(frame)) return true
    this.#queue = []
    this.#raw.once('drain', this.#onDrain)
    return false
  }

  #enqueue (frame: Buffer): false {
    const { maxQueueBytes, queuePolicy } = this.#context.options
    const queue = this.#queue as Buffer[]
    if (this.#queuedBytes + frame.length > maxQueueBytes) {
      if (queuePolicy === 'close') {
        this.request.log.warn({ err: new QueueFullError(this.#queuedBytes + frame.length, maxQueueBytes) }, 'event stream closed: client not reading')
        this.#context.hub.counters.closedByPolicy++
        this.#end('policy')
        return false
      }
      let dropped = 0
      let freed = 0
      while (dropped < queue.length && this.#queuedBytes - freed + frame.length > maxQueueBytes) freed += queue[dropped++].length
      queue.splice(0, dropped)
      this.#unqueue(freed)
      if (frame.length > maxQueueBytes) dropped++
      this.#droppedFrames += dropped
      this.#context.hub.counters.droppedEvents += dropped
      if (frame.length > maxQueueBytes) return false
    }
    queue.push(frame)
    this.#queuedBytes += frame.length
    this.#context.hub.counters.queuedBytes += frame.length
    return false
  }

  #unqueue (bytes: number): void {
    this.#queuedBytes -= bytes
    this.#context.hub.counters.queuedBytes -= bytes
  }

  readonly #onDrain = (): void => {
    const queue = this.#queue as Buffer[]
    this.#queue = undefined
    this.#unqueue(this.#queuedBytes)
    if (this.#droppedFrames > 0) {
      queue.unshift(controlFrame(MISSED_EVENT, { dropped: this.#droppedFrames }))
      this.#droppedFrames = 0
    }
    // One write for the whole backlog: one chunk on the wire instead of many.
    if (queue.length > 0 && !this.#write(queue.length === 1 ? queue[0] : Buffer.concat(queue))) return
    const waiters = this.#drainWaiters
    this.#drainWaiters = undefined
    if (waiters !== undefined) for (const resolve of waiters) resolve(true)
  }

  readonly #onRawClose = (): void => {
    this.#finish('client')
  }

  readonly #onDeadline = (): void => {
    if (!this.isOpen) return
    this.#write(retryFrame(this.#context.options.retryMs ?? DURATION_RETRY_MS))
    this.#end('duration')
  }

  /** Ends the response (flushing the queue) after tearing down the stream's state. */
  #end (reason: CloseReason, graceMs = this.#context.closeGraceMs): void {
    if (!this.isOpen) return
    const pending = this.#queue
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
    const { hub } = this.#context
    hub.remove(this)
    this.#raw.off('close', this.#onRawClose)
    if (this.#queue !== undefined) {
      this.#raw.off('drain', this.#onDrain)
      this.#unqueue(this.#queuedBytes)
      this.#queue = undefined
    }
    clearTimeout(this.#deadline)
    const waiters = this.#drainWaiters
    this.#drainWaiters = undefined
    if (waiters !== undefined) for (const resolve of waiters) resolve(false)
    this.#abort?.abort()
    const callbacks = this.#closeCallbacks
    this.#closeCallbacks = undefined
    if (callbacks !== undefined) for (const fn of callbacks) this.#runCallback(fn, reason)
  }

  #runCallback (fn: (reason: CloseReason) => void, reason: CloseReason): void {
    try {
      fn(reason)
    } catch (err) {
      this.request.log.error({ err }, 'an onClose callback of an event stream threw')
    }
  }
}
