/**
 * The typed client (`fastify-typed-sse/client`): event handlers typed by the
 * server's catalog, over one of two transports: `fetch` (headers, POST bodies, our
 * own reconnects with backoff, finite streams, limits; lib/client/fetch-transport.ts)
 * or the runtime's `EventSource` (lib/client/eventsource-transport.ts). With
 * `shared: true` the tabs of one origin share one connection (lib/client/shared.ts).
 *
 * This module and lib/client/ are loaded by browsers as they are, with no bundler,
 * so they import nothing at run time but each other: only `import type` from the
 * rest of the package, which the compiler erases. What they need from it at run time
 * (the text keyword, the control event names) is repeated here, typed by the
 * original so the two cannot drift apart.
 *
 * Channels with history replay what a reconnecting client missed after its
 * `Last-Event-ID`; when they cannot, they send `sse:resync`, and the application
 * should fetch a full snapshot. A stream the server finishes sends `sse:end`: the
 * client closes and never reconnects.
 */
import type { Static } from '@sinclair/typebox'
import type { EventSchemas, TEXT_KEYWORD } from './catalog.js'
import type { MISSED_EVENT, Missed, RESYNC_EVENT, Resync } from './control.js'
import { DEFAULT_MAX_RECONNECT_DELAY_MS, DEFAULT_RECONNECT_DELAY_MS } from './client/backoff.js'
import { SseClientError } from './client/errors.js'
import { EventSourceTransport, type EventSourceConstructor } from './client/eventsource-transport.js'
import { DEFAULT_RESPONSE_TIMEOUT_MS, FetchTransport, type FetchFunction, type FetchTransportOptions, type HeadersOption, type RequestBody, type UnauthorizedInfo } from './client/fetch-transport.js'
import { DEFAULT_MAX_EVENT_BYTES, type StreamEvent } from './client/parser.js'
import { SharedTransport } from './client/shared.js'
import type { ClientStatus, Transport, TransportSink } from './client/transport.js'

export { DEFAULT_MAX_RECONNECT_DELAY_MS, DEFAULT_RECONNECT_DELAY_MS } from './client/backoff.js'
export { SseClientError, type ClientErrorCode } from './client/errors.js'
export type { EventSourceConstructor } from './client/eventsource-transport.js'
export { DEFAULT_RESPONSE_TIMEOUT_MS, type FetchFunction, type HeadersOption, type RequestBody, type UnauthorizedInfo } from './client/fetch-transport.js'
export { DEFAULT_MAX_EVENT_BYTES } from './client/parser.js'
export type { ClientStatus } from './client/transport.js'

/** The schema keyword that marks raw text events (`Text()`). */
const TEXT_MARK: typeof TEXT_KEYWORD = 'x-sse-data'

/** The control events (lib/control.ts) the client has handlers for. */
const RESYNC_EVENT_NAME: typeof RESYNC_EVENT = 'sse:resync'
const MISSED_EVENT_NAME: typeof MISSED_EVENT = 'sse:missed'

/**
 * The control event a server sends when it finishes a stream for good; its id is the
 * same string, so a reconnect sends it as `Last-Event-ID` and gets 204.
 * TODO after merging main: type it `typeof END_EVENT` from './control.js' (the lead added it there).
 *
 * @example
 * reply.raw.write(`event: ${END_EVENT}\nid: ${END_EVENT}\ndata: {}\n\n`)
 */
export const END_EVENT = 'sse:end'

/**
 * What the client needs of a catalog: its schemas. An `EventCatalog` from `defineEvents` is one.
 *
 * @example
 * const catalog: CatalogLike = clock
 */
export interface CatalogLike<E extends EventSchemas = EventSchemas> {
  readonly schemas: Readonly<E>
}

/**
 * The event names of catalog type `C`.
 *
 * @example
 * type Names = ClientEventName<typeof chat> // 'message' | 'token'
 */
export type ClientEventName<C extends CatalogLike> = keyof C['schemas'] & string

/**
 * The payload type of event `K` of catalog type `C`, as the server validated it.
 *
 * @example
 * function render (tick: ClientEventData<typeof clock, 'tick'>) { el.textContent = tick.now }
 */
export type ClientEventData<C extends CatalogLike, K extends ClientEventName<C>> = Static<C['schemas'][K]>

/** The events of `C` declared with `Text()`: their data arrives as a raw string. */
type TextEventName<C extends CatalogLike> = {
  [K in ClientEventName<C>]: C['schemas'][K] extends { readonly [TEXT_MARK]: 'text' } ? K : never
}[ClientEventName<C>]

/**
 * What a handler learns besides the data.
 *
 * @example
 * client.on('score', (score, meta: EventMeta<'score'>) => { lastSeen = meta.id })
 */
export interface EventMeta<K extends string = string> {
  /** The event name. */
  readonly event: K
  /**
   * `MessageEvent.lastEventId` as the EventSource gives it. Browsers follow the HTML
   * standard: the id of this event or of the latest earlier one that had an id (what
   * they send as `Last-Event-ID` on reconnect), `''` when none had. The `eventsource`
   * package for Node gives this event's own id, `''` when it had none.
   */
  readonly lastEventId: string
  /**
   * `lastEventId`, or `undefined` when it is empty. On streams that give every event
   * an id (channels with history do) it is this event's id in every runtime; where
   * only some events have one, a browser repeats the previous id on the others.
   */
  readonly id: string | undefined
}

/**
 * A handler of event `K`.
 *
 * @example
 * const onTick: EventHandler<typeof clock, 'tick'> = (tick) => { el.textContent = tick.now }
 * client.on('tick', onTick)
 */
export type EventHandler<C extends CatalogLike, K extends ClientEventName<C>> =
  (data: ClientEventData<C, K>, meta: EventMeta<K>) => void

/**
 * A run-time check of a parsed payload: `true` when valid; `false`, or a string
 * saying what is wrong, when not. Throwing counts as invalid too. Only `true` passes,
 * so a validator that returns a message when valid fails closed, not open.
 *
 * @example
 * // TypeBox compiled checks (with a bundler), one per event:
 * const checks = { tick: TypeCompiler.Compile(clock.schemas.tick) }
 * const validate: ClientValidator<typeof clock> = (event, data) => checks[event].Check(data)
 */
export type ClientValidator<C extends CatalogLike = CatalogLike> =
  (event: ClientEventName<C>, data: unknown) => boolean | string

/**
 * The stream's URL: a string (relative ones resolve against the page in browsers) or
 * a `URL`. Typed by shape so projects without DOM or Node types can use the client.
 *
 * @example
 * const url: StreamUrl = new URL('/time', 'http://127.0.0.1:3000')
 */
export type StreamUrl = string | { readonly href: string }

/** Options shared by both ways of typing the client. */
interface BaseClientOptions<C extends CatalogLike> {
  /**
   * How the stream is received. `'fetch'`: request headers, any method and body, our
   * own reconnects (backoff with jitter, `Retry-After`, `onUnauthorized`), `sse:end`,
   * limits. `'eventsource'`: the runtime's `EventSource` and its reconnects (no
   * headers, GET only, gives up on any non-200).
   * @default 'fetch' when an option needs it (headers, method, body, credentials,
   * signal, onUnauthorized, shared...) or there is no EventSource; else 'eventsource'
   */
  transport?: 'fetch' | 'eventsource'
  /**
   * The EventSource implementation. Node 20 has none built in: pass the `eventsource`
   * package's, or use the fetch transport.
   * @default globalThis.EventSource
   */
  EventSource?: EventSourceConstructor
  /**
   * The fetch implementation (fetch transport).
   * @default globalThis.fetch
   */
  fetch?: FetchFunction
  /**
   * Send cookies on cross-origin requests (CORS with credentials); with fetch, the same as `credentials: 'include'`.
   * @default false
   */
  withCredentials?: boolean
  /**
   * Request headers, or a function that returns them, called before every connection
   * attempt so a refreshed token is used (fetch transport).
   * @default none (`Accept: text/event-stream` and `Last-Event-ID` are always set)
   */
  headers?: HeadersOption
  /**
   * The request method (fetch transport); every reconnect repeats it with the same body.
   * @default 'GET', or 'POST' when a body is given
   */
  method?: string
  /** The request body, sent again on every reconnect (fetch transport). */
  body?: RequestBody
  /**
   * `fetch`'s `credentials` (fetch transport).
   * @default 'same-origin' ('include' with withCredentials)
   */
  credentials?: 'omit' | 'same-origin' | 'include'
  /** Aborting it closes the client, as `close()` does. */
  signal?: AbortSignal
  /**
   * The first reconnection delay until the server sends `retry:`, which then sets it;
   * each reconnect waits a random time in [0, delay * 2^n], n the reconnects since the
   * last event (fetch transport).
   * @default 1000
   */
  reconnectDelayMs?: number
  /**
   * The cap on one reconnection delay; a `Retry-After` header may ask for longer (fetch transport).
   * @default 30000
   */
  maxReconnectDelayMs?: number
  /**
   * How long to wait for the response head before dropping the attempt
   * (`TYPED_SSE_CLIENT_TIMEOUT`) and reconnecting (fetch transport).
   * @default 30000
   */
  responseTimeoutMs?: number
  /**
   * The bound on one event's bytes (its lines, the line being read included). Past it
   * the connection is dropped (`TYPED_SSE_CLIENT_EVENT_TOO_LARGE`) and the client
   * reconnects with backoff: a hostile server cannot make the client hold more (fetch transport).
   * @default 1048576 (1 MiB)
   */
  maxEventBytes?: number
  /**
   * Called on 401 and 403 (fetch transport): refresh the credentials your `headers`
   * function returns, and resolve `true` to retry (the first time at once, then with
   * backoff) or `false` to close the client with `TYPED_SSE_CLIENT_UNAUTHORIZED`.
   * @default undefined (401/403 close the client)
   */
  onUnauthorized?: (info: UnauthorizedInfo) => boolean | Promise<boolean>
  /**
   * Drop the connection while the page is hidden (`document.visibilityState`), status
   * `'paused'`, and resume with `Last-Event-ID` when it is shown (fetch transport).
   * Ignored with `shared`: the one connection serves tabs that may be showing.
   * @default false
   */
  pauseWhenHidden?: boolean
  /**
   * Share one connection per stream (method, URL and string body) among the tabs of this origin: one
   * tab holds it (a Web Lock) and forwards events to the others (BroadcastChannel);
   * when it closes, another takes over with `Last-Event-ID`. Use it on streams that
   * replay by id (channels with history), so the takeover loses nothing. Browsers only;
   * uses the fetch transport.
   * @default false
   */
  shared?: boolean
  /**
   * Checks each parsed payload before any handler sees it; a failure goes to
   * `onError` as `TYPED_SSE_CLIENT_INVALID_DATA` and the event is not delivered.
   * Control events are not checked. In Node, `eventValidator(catalog)` from
   * `fastify-typed-sse` checks with the catalog's compiled schemas.
   * @default undefined (no check: the server validated every payload before sending)
   */
  validate?: ClientValidator<C>
  /**
   * Receives what goes wrong after creation: bad data, a throwing handler, a
   * connection refused for good, an event too large, a response head too late.
   * @default console.error
   */
  onError?: (error: SseClientError) => void
}

/**
 * Options when the catalog value is at hand: the client reads which events are text from it.
 *
 * @example
 * const options: CatalogClientOptions<typeof chat> = { catalog: chat, EventSource, onError: report }
 */
export interface CatalogClientOptions<C extends CatalogLike> extends BaseClientOptions<C> {
  /** The catalog (or any `{ schemas }`): types the client, tells text events apart and rejects unknown names in `on`. */
  catalog: C
  text?: undefined
}

/**
 * `text` lists the events declared with `Text()`, which arrive as raw strings. It is
 * a record rather than an array so the compiler demands every text event of `C`:
 * forgetting one would make the client parse its data as JSON.
 */
type TextOption<C extends CatalogLike> = [TextEventName<C>] extends [never]
  ? { text?: undefined }
  : { text: { readonly [K in TextEventName<C>]: true } }

/**
 * Options when only the catalog's type is given (`createClient<typeof chat>(url)`): no run-time cost.
 *
 * @example
 * const options: TypeOnlyClientOptions<typeof chat> = { text: { token: true } }
 */
export type TypeOnlyClientOptions<C extends CatalogLike> = BaseClientOptions<C> & { catalog?: undefined } & TextOption<C>

/** The options argument in type-only mode: required exactly when `text` is. */
type TypeOnlyClientArgs<C extends CatalogLike> = [TextEventName<C>] extends [never]
  ? [options?: TypeOnlyClientOptions<C>]
  : [options: TypeOnlyClientOptions<C>]

/**
 * A typed event stream client. Create one with {@link createClient}.
 *
 * @example
 * function follow (client: SseClient<typeof clock>) { return client.on('tick', (tick) => console.log(tick.now)) }
 */
export interface SseClient<C extends CatalogLike = CatalogLike> {
  /** The absolute URL of the stream. */
  readonly url: string
  /** The connection state now. */
  readonly status: ClientStatus
  /**
   * Calls `handler` with each `event`'s parsed (and, with `validate`, checked) data.
   *
   * @returns a function that removes the handler
   * @throws TYPED_SSE_CLIENT_UNKNOWN_EVENT when a catalog was given and does not declare `event`
   * @example
   * const stop = client.on('tick', (tick, meta) => { render(tick.epochMs, meta.id) })
   */
  on<K extends ClientEventName<C>> (event: K, handler: EventHandler<C, K>): () => void
  /**
   * Removes a handler added with `on`.
   *
   * @example
   * client.off('tick', render)
   */
  off<K extends ClientEventName<C>> (event: K, handler: EventHandler<C, K>): void
  /**
   * Calls `listener` on every status change (not with the current status: read `status`).
   *
   * @returns a function that removes the listener
   * @example
   * client.onStatus((status) => { badge.textContent = status })
   */
  onStatus (listener: (status: ClientStatus) => void): () => void
  /**
   * Calls `listener` when a channel with history could not replay from the id the
   * client reconnected with (unknown, or evicted): events were missed, so fetch a
   * full snapshot. Live events follow as usual.
   *
   * @returns a function that removes the listener
   * @example
   * client.onResync(async () => { render(await (await fetch('/scores/snapshot')).json()) })
   */
  onResync (listener: (info: Resync) => void): () => void
  /**
   * Calls `listener` when the server skipped events because this client read too
   * slowly (streams with the `'drop-oldest'` queue policy).
   *
   * @returns a function that removes the listener
   * @example
   * client.onMissed(({ dropped }) => { console.warn(`${dropped} events skipped`) })
   */
  onMissed (listener: (info: Missed) => void): () => void
  /**
   * Calls `listener` once when the server finished the stream for good (the
   * `sse:end` event, or HTTP 204): the status is then `'closed'` and the client
   * never reconnects.
   *
   * @returns a function that removes the listener
   * @example
   * client.onEnd(() => { spinner.hidden = true })
   */
  onEnd (listener: () => void): () => void
  /**
   * `true` while this client holds the connection itself: always, unless `shared`
   * and another tab holds it (this one then gets the events forwarded).
   *
   * @example
   * badge.title = client.isLeader ? 'connected' : 'via another tab'
   */
  readonly isLeader: boolean
  /**
   * Closes the connection for good: no reconnect, no more events; status becomes
   * `'closed'`. Calling it again does nothing.
   *
   * @example
   * window.addEventListener('pagehide', () => client.close())
   */
  close (): void
}

// Handlers are stored untyped: each is only ever called with its own event's data and name.
type AnyHandler = (data: unknown, meta: EventMeta<any>) => void

/**
 * Both option shapes as the implementation sees them. `validate` is declared as a
 * method so that a validator typed for one catalog's names is accepted here.
 */
interface ClientInit extends Omit<BaseClientOptions<CatalogLike>, 'validate'> {
  catalog?: CatalogLike
  text?: Readonly<Record<string, true>>
  validate? (event: string, data: unknown): boolean | string
}

/** The durations and sizes of the fetch transport: numbers >= 0 (Infinity allowed, NaN not). */
const NUMERIC_OPTIONS = ['reconnectDelayMs', 'maxReconnectDelayMs', 'responseTimeoutMs', 'maxEventBytes'] as const

/** The options that only the fetch transport can honour. */
const FETCH_ONLY_OPTIONS = ['headers', 'method', 'body', 'credentials', 'signal', 'onUnauthorized', 'pauseWhenHidden', 'shared'] as const

class TypedEventClient implements SseClient {
  readonly #url: string
  readonly #transport: Transport
  readonly #catalog: CatalogLike | undefined
  readonly #text: ReadonlySet<string>
  readonly #validate: ClientInit['validate']
  readonly #onError: (error: SseClientError) => void
  readonly #subscriptions = new Map<string, Set<AnyHandler>>()
  readonly #statusListeners = new Set<(status: ClientStatus) => void>()
  readonly #endListeners = new Set<() => void>()
  readonly #signal: AbortSignal | undefined
  #status: ClientStatus = 'connecting'

  constructor (url: string, options: ClientInit) {
    this.#url = url
    const catalog = options.catalog
    this.#catalog = catalog
    this.#text = new Set(catalog === undefined
      ? Object.keys(options.text ?? {})
      : Object.keys(catalog.schemas).filter((name) => isTextSchema(catalog.schemas[name])))
    this.#validate = options.validate
    this.#onError = options.onError ?? ((error) => { console.error(error) })
    this.#transport = openTransport(url, options, this.#sink)
    this.#transport.listen(END_EVENT)
    this.#signal = options.signal
    if (this.#signal?.aborted === true) this.close()
    this.#signal?.addEventListener('abort', this.#onAbort)
  }

  get url (): string {
    return this.#url
  }

  get status (): ClientStatus {
    return this.#status
  }

  get isLeader (): boolean {
    return !(this.#transport instanceof SharedTransport) || this.#transport.isLeader
  }

  on (event: string, handler: AnyHandler): () => void {
    if (this.#catalog !== undefined && !Object.hasOwn(this.#catalog.schemas, event)) {
      throw new SseClientError('TYPED_SSE_CLIENT_UNKNOWN_EVENT',
        `Event "${event}" is not in the catalog (known: ${Object.keys(this.#catalog.schemas).join(', ')}).`, { event })
    }
    return this.#subscribe(event, handler)
  }

  off (event: string, handler: AnyHandler): void {
    const handlers = this.#subscriptions.get(event)
    if (handlers === undefined) return
    handlers.delete(handler)
    if (handlers.size === 0) this.#subscriptions.delete(event)
  }

  onStatus (listener: (status: ClientStatus) => void): () => void {
    this.#statusListeners.add(listener)
    return () => { this.#statusListeners.delete(listener) }
  }

  onResync (listener: (info: Resync) => void): () => void {
    return this.#subscribe(RESYNC_EVENT_NAME, listener as AnyHandler)
  }

  onMissed (listener: (info: Missed) => void): () => void {
    return this.#subscribe(MISSED_EVENT_NAME, listener as AnyHandler)
  }

  onEnd (listener: () => void): () => void {
    this.#endListeners.add(listener)
    return () => { this.#endListeners.delete(listener) }
  }

  close (): void {
    this.#finish(undefined, false)
  }

  /** The one way to `'closed'`: stops the transport, tells the listeners, forgets them. */
  #finish (error: SseClientError | undefined, isEnd: boolean): void {
    if (this.#status === 'closed') return
    this.#transport.close()
    this.#signal?.removeEventListener('abort', this.#onAbort)
    this.#subscriptions.clear()
    this.#setStatus('closed')
    if (error !== undefined) this.#report(error)
    if (isEnd) {
      for (const listener of [...this.#endListeners]) {
        this.#call(() => { listener() }, 'An end listener threw.')
      }
    }
    this.#statusListeners.clear()
    this.#endListeners.clear()
  }

  #subscribe (event: string, handler: AnyHandler): () => void {
    let handlers = this.#subscriptions.get(event)
    if (handlers === undefined) {
      handlers = new Set()
      this.#subscriptions.set(event, handlers)
      this.#transport.listen(event)
    }
    handlers.add(handler)
    return () => { this.off(event, handler) }
  }

  #dispatch (message: StreamEvent): void {
    const event = message.type
    if (event === END_EVENT) {
      this.#finish(undefined, true)
      return
    }
    const handlers = this.#subscriptions.get(event)
    if (handlers === undefined) return
    const isControl = event === RESYNC_EVENT_NAME || event === MISSED_EVENT_NAME
    let data: unknown = message.data
    if (isControl || !this.#text.has(event)) {
      try {
        data = JSON.parse(message.data)
      } catch (cause) {
        this.#report(new SseClientError('TYPED_SSE_CLIENT_INVALID_JSON',
          `Data of event "${event}" is not JSON. If the server declares it with Text(), ` +
          `list it in the client's \`text\` option or pass the catalog.`, { event, data: message.data, cause }))
        return
      }
    }
    const validate = this.#validate
    if (!isControl && validate !== undefined && !this.#isValid(validate, event, data)) return
    const meta: EventMeta = { event, lastEventId: message.lastEventId, id: message.lastEventId === '' ? undefined : message.lastEventId }
    // A copy: a handler may remove itself (or others) while the event is dispatched.
    for (const handler of [...handlers]) {
      this.#call(() => { handler(data, meta) }, `A handler of event "${event}" threw.`, { event, data })
    }
  }

  #isValid (validate: NonNullable<ClientInit['validate']>, event: string, data: unknown): boolean {
    let verdict: boolean | string
    let cause: unknown
    try {
      verdict = validate(event, data)
    } catch (err) {
      verdict = false
      cause = err
    }
    if (verdict === true) return true
    const reason = typeof verdict === 'string' ? `: ${verdict}` : ''
    this.#report(new SseClientError('TYPED_SSE_CLIENT_INVALID_DATA',
      `Data of event "${event}" failed validation${reason}. The event was not delivered.`, { event, data, cause }))
    return false
  }

  /** What the transport reports to: bound once, so the transport holds no reference to `this` beyond it. */
  readonly #sink: TransportSink = {
    status: (status) => { if (this.#status !== 'closed') this.#setStatus(status) },
    event: (event) => { if (this.#status !== 'closed') this.#dispatch(event) },
    warn: (error) => { this.#report(error) },
    stop: (error) => { this.#finish(error, error === undefined) }
  }

  readonly #onAbort = (): void => {
    this.close()
  }

  #setStatus (status: ClientStatus): void {
    if (status === this.#status) return
    this.#status = status
    for (const listener of [...this.#statusListeners]) {
      this.#call(() => { listener(status) }, `A status listener threw on "${status}".`)
    }
  }

  #call (fn: () => void, message: string, details: { event?: string, data?: unknown } = {}): void {
    try {
      fn()
    } catch (cause) {
      this.#report(new SseClientError('TYPED_SSE_CLIENT_HANDLER_FAILED', message, { ...details, cause }))
    }
  }

  #report (error: SseClientError): void {
    try {
      this.#onError(error)
    } catch {
      // onError itself failed: nothing is left to report to, and throwing here would
      // break the transport's dispatch for the other listeners.
    }
  }
}

/** The transport the options ask for; throws for options that cannot work. */
function openTransport (url: string, options: ClientInit, sink: TransportSink): Transport {
  const globals = globalThis as { EventSource?: EventSourceConstructor, fetch?: FetchFunction }
  const Source = options.EventSource ?? globals.EventSource
  const needsFetch = FETCH_ONLY_OPTIONS.filter((name) => options[name] !== undefined && options[name] !== false)
  const kind = options.transport ?? (needsFetch.length > 0 || Source === undefined ? 'fetch' : 'eventsource')
  if (kind === 'eventsource') {
    if (needsFetch.length > 0) {
      throw new SseClientError('TYPED_SSE_CLIENT_BAD_OPTION',
        `${needsFetch.join(', ')} need the fetch transport: remove transport: 'eventsource'.`)
    }
    if (Source === undefined) {
      throw new SseClientError('TYPED_SSE_CLIENT_NO_EVENTSOURCE',
        'No EventSource in this runtime (Node 20 has none built in). Pass one: ' +
        "import { EventSource } from 'eventsource'; createClient(url, { EventSource }), or use transport: 'fetch'.")
    }
    return new EventSourceTransport(Source, url, options.withCredentials ?? false, sink)
  }
  const fetch = options.fetch ?? globals.fetch?.bind(globalThis)
  if (fetch === undefined) {
    throw new SseClientError('TYPED_SSE_CLIENT_NO_FETCH', 'No fetch in this runtime: pass one as the fetch option.')
  }
  if (typeof (options.body as { getReader?: unknown } | undefined)?.getReader === 'function') {
    throw new SseClientError('TYPED_SSE_CLIENT_BAD_OPTION',
      'body is a ReadableStream, which cannot be sent again on reconnect: pass a string, Blob, ArrayBuffer, FormData or URLSearchParams.')
  }
  for (const name of NUMERIC_OPTIONS) {
    const value = options[name]
    if (value !== undefined && !(typeof value === 'number' && value >= 0)) {
      throw new SseClientError('TYPED_SSE_CLIENT_BAD_OPTION', `${name} must be a number >= 0, got ${String(value)}.`)
    }
  }
  const settings: FetchTransportOptions = {
    url,
    fetch,
    method: options.method ?? (options.body === undefined ? 'GET' : 'POST'),
    headers: options.headers,
    body: options.body,
    credentials: options.credentials ?? (options.withCredentials === true ? 'include' : 'same-origin'),
    reconnectDelayMs: options.reconnectDelayMs ?? DEFAULT_RECONNECT_DELAY_MS,
    maxReconnectDelayMs: options.maxReconnectDelayMs ?? DEFAULT_MAX_RECONNECT_DELAY_MS,
    responseTimeoutMs: options.responseTimeoutMs ?? DEFAULT_RESPONSE_TIMEOUT_MS,
    maxEventBytes: options.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES,
    onUnauthorized: options.onUnauthorized,
    pauseWhenHidden: options.pauseWhenHidden ?? false,
    lastEventId: ''
  }
  if (options.shared !== true) return new FetchTransport(settings, sink)
  if (options.body !== undefined && typeof options.body !== 'string') {
    throw new SseClientError('TYPED_SSE_CLIENT_BAD_OPTION',
      'shared: true with a body needs a string body: tabs share a stream only when method, URL and body are the same.')
  }
  return new SharedTransport(`${settings.method} ${url} ${options.body ?? ''}`, sink,
    // The connection serves every tab, some of which may be showing: it does not pause with the leader's.
    (lastEventId, leaderSink) => new FetchTransport({ ...settings, lastEventId, pauseWhenHidden: false }, leaderSink))
}

/** The absolute URL: relative ones resolve against the page, as `EventSource` does. */
function absoluteUrl (url: StreamUrl): string {
  const href = typeof url === 'string' ? url : url.href
  const base = (globalThis as { location?: { href: string } }).location?.href
  try {
    return new URL(href, base).href
  } catch (cause) {
    throw new SseClientError('TYPED_SSE_CLIENT_BAD_OPTION', `"${href}" is not a URL${base === undefined ? ' (relative URLs need a page to resolve against)' : ''}.`, { cause })
  }
}

function isTextSchema (schema: unknown): boolean {
  return typeof schema === 'object' && schema !== null && (schema as Record<string, unknown>)[TEXT_MARK] === 'text'
}

/**
 * Opens a typed event stream: handlers get the parsed data with the type the
 * server's catalog gives it. Works in browsers as a plain ES module (no bundler)
 * and in Node (fetch transport, or the `eventsource` package).
 *
 * Type it with the catalog value (`{ catalog: clock }`: it also tells which events
 * are `Text()`) or with its type only (`createClient<typeof clock>(url)`: nothing of
 * the server is loaded; list the `Text()` events in `text`, which the compiler checks).
 *
 * JSON events are parsed with `JSON.parse`, `Text()` events arrive as strings. After
 * a dropped stream the status goes back to `'connecting'` and the client reconnects
 * with `Last-Event-ID`; a channel with history then replays what was missed or, when
 * it cannot, sends `sse:resync` (see {@link SseClient.onResync}). On `sse:end` (or a
 * 204) the client closes for good and calls {@link SseClient.onEnd}. A response that
 * cannot be a stream ends the client (`'closed'`, and a coded error to `onError`).
 *
 * @throws TYPED_SSE_CLIENT_NO_EVENTSOURCE with `transport: 'eventsource'` when the runtime has no EventSource and none was given
 * @throws TYPED_SSE_CLIENT_BAD_OPTION for options that cannot work together or here
 * @example
 * // Browser, type only: nothing but this module is loaded.
 * import { createClient } from 'fastify-typed-sse/client'
 * import type { clock } from './events.js'
 * const client = createClient<typeof clock>('/time')
 * client.on('tick', (tick) => { el.textContent = new Date(tick.epochMs).toLocaleTimeString() })
 * client.onStatus((status) => { badge.dataset.state = status })
 * @example
 * // A POST stream with a token that is refreshed when the server says 401.
 * const client = createClient('/chat', {
 *   catalog: llm,
 *   body: JSON.stringify({ prompt }),
 *   headers: () => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' }),
 *   onUnauthorized: async () => { token = await refresh(); return true }
 * })
 * client.on('token', (text) => output.append(text))
 * client.onEnd(() => { done.hidden = false })
 */
export function createClient<C extends CatalogLike> (url: StreamUrl, options: CatalogClientOptions<C>): SseClient<C>
export function createClient<C extends CatalogLike = CatalogLike> (url: StreamUrl, ...options: TypeOnlyClientArgs<C>): SseClient<C>
export function createClient (url: StreamUrl, options: ClientInit = {}): SseClient {
  return new TypedEventClient(absoluteUrl(url), options)
}
