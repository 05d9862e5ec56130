/**
 * The typed client (`fastify-typed-sse/client`): an `EventSource` wrapper whose
 * handlers are typed by the server's event catalog.
 *
 * This module is loaded by browsers as is, with no bundler, so it has no run-time
 * import at all: only `import type`, which the compiler erases. Whatever it needs
 * from the rest of the package at run time (the text keyword, the control event
 * names) is repeated here, typed by the original so the two cannot drift apart.
 *
 * Reconnects are the EventSource's own (WHATWG HTML §9.2.3): when the stream ends
 * or the network drops, it waits the server's `retry:` delay (about 3 s by default)
 * and reconnects, sending the last id it received as `Last-Event-ID`. Channels with
 * history replay what was missed after that id; when they cannot, they send the
 * `sse:resync` control event, and the application should fetch a full snapshot.
 */
import type { Static } from '@sinclair/typebox'
import type { EventSchemas, TEXT_KEYWORD } from './catalog.js'
import type { MISSED_EVENT, Missed, RESYNC_EVENT, Resync } from './control.js'

/** The schema keyword that marks raw text events (`Text()`). */
const TEXT_MARK: typeof TEXT_KEYWORD = 'x-sse-data'

/** The control events (lib/control.ts) the client has handlers for. */
const RESYNC_EVENT_NAME: typeof RESYNC_EVENT = 'sse:resync'
const MISSED_EVENT_NAME: typeof MISSED_EVENT = 'sse:missed'

/** `EventSource.CLOSED` (WHATWG HTML §9.2.2): the source gave up and will not reconnect. */
const READY_STATE_CLOSED = 2

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
 * The connection state: `'connecting'` also while reconnecting; `'closed'` is final.
 *
 * @example
 * client.onStatus((status: ClientStatus) => { badge.dataset.state = status })
 */
export type ClientStatus = 'connecting' | 'open' | 'closed'

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
 * The error codes of the client. Match on `error.code`, never on the message.
 *
 * | code | when |
 * |---|---|
 * | `TYPED_SSE_CLIENT_NO_EVENTSOURCE` | thrown by `createClient`: no `EventSource` given, none global (Node 20) |
 * | `TYPED_SSE_CLIENT_UNKNOWN_EVENT` | thrown by `on`: the catalog given does not declare the event |
 * | `TYPED_SSE_CLIENT_INVALID_JSON` | data of a JSON event is not JSON (a `Text()` event not listed in `text`?) |
 * | `TYPED_SSE_CLIENT_INVALID_DATA` | `validate` refused the data; the event was not delivered |
 * | `TYPED_SSE_CLIENT_HANDLER_FAILED` | a handler or status listener threw; the others still ran |
 * | `TYPED_SSE_CLIENT_CONNECTION_FAILED` | the response was not a 200 event stream; no reconnect |
 *
 * @example
 * const ignored: ClientErrorCode[] = ['TYPED_SSE_CLIENT_HANDLER_FAILED']
 */
export type ClientErrorCode =
  | 'TYPED_SSE_CLIENT_NO_EVENTSOURCE'
  | 'TYPED_SSE_CLIENT_UNKNOWN_EVENT'
  | 'TYPED_SSE_CLIENT_INVALID_JSON'
  | 'TYPED_SSE_CLIENT_INVALID_DATA'
  | 'TYPED_SSE_CLIENT_HANDLER_FAILED'
  | 'TYPED_SSE_CLIENT_CONNECTION_FAILED'

/**
 * An error of the typed client: thrown by `createClient` and `on` for misuse, else
 * handed to `onError`.
 *
 * @example
 * createClient(url, { onError: (error) => { if (error.code === 'TYPED_SSE_CLIENT_INVALID_DATA') report(error.event, error.data) } })
 */
export class SseClientError extends Error {
  override name = 'SseClientError'
  /** Stable code, see {@link ClientErrorCode}. */
  readonly code: ClientErrorCode
  /** The event concerned, when there is one. */
  readonly event: string | undefined
  /** The data concerned: the raw string for INVALID_JSON, the parsed value for INVALID_DATA. */
  readonly data: unknown

  constructor (code: ClientErrorCode, message: string, details: { event?: string, data?: unknown, cause?: unknown } = {}) {
    super(message, { cause: details.cause })
    this.code = code
    this.event = details.event
    this.data = details.data
  }
}

/** The message events the client reads: the standard `MessageEvent`, or a polyfill's. */
interface MessageEventLike {
  readonly data: string
  readonly lastEventId: string
}

/** The part of the `EventSource` API the client uses; the standard one and the `eventsource` package fit. */
interface EventSourceLike {
  readonly readyState: number
  readonly url: string
  addEventListener (type: string, listener: (event: MessageEventLike) => void): void
  removeEventListener (type: string, listener: (event: MessageEventLike) => void): void
  close (): void
}

/**
 * The stream's URL: a string (relative ones resolve against the page in browsers) or
 * a `URL`. Typed by shape so projects without DOM or Node types can use the client.
 *
 * @example
 * const url: StreamUrl = new URL('/time', 'http://127.0.0.1:3000')
 */
export type StreamUrl = string | { readonly href: string }

/**
 * An `EventSource` constructor: `globalThis.EventSource`, or `EventSource` from the `eventsource` package.
 *
 * @example
 * import { EventSource } from 'eventsource'
 * // Node: a header on every (re)connect, through the package's `fetch` option.
 * const WithToken: EventSourceConstructor = class extends EventSource {
 *   constructor (url: string, init?: { withCredentials?: boolean }) {
 *     super(url, { ...init, fetch: (input, request) => fetch(input, { ...request, headers: { ...request.headers, authorization: `Bearer ${token}` } }) })
 *   }
 * }
 */
export type EventSourceConstructor = new (url: string, init?: { withCredentials?: boolean }) => EventSourceLike

/** Options shared by both ways of typing the client. */
interface BaseClientOptions<C extends CatalogLike> {
  /**
   * The EventSource implementation. Node 20 has none built in: pass the `eventsource`
   * package's. To add headers in Node, pass a subclass that gives it a `fetch`.
   * @default globalThis.EventSource
   */
  EventSource?: EventSourceConstructor
  /**
   * Send cookies on cross-origin requests (CORS with credentials).
   * @default false
   */
  withCredentials?: boolean
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
   * connection the EventSource gave up on.
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
interface ClientInit {
  catalog?: CatalogLike
  text?: Readonly<Record<string, true>>
  EventSource?: EventSourceConstructor
  withCredentials?: boolean
  validate? (event: string, data: unknown): boolean | string
  onError? (error: SseClientError): void
}

interface Subscription {
  readonly listener: (message: MessageEventLike) => void
  readonly handlers: Set<AnyHandler>
}

class TypedEventClient implements SseClient {
  readonly #source: EventSourceLike
  readonly #catalog: CatalogLike | undefined
  readonly #text: ReadonlySet<string>
  readonly #validate: ClientInit['validate']
  readonly #onError: (error: SseClientError) => void
  readonly #subscriptions = new Map<string, Subscription>()
  readonly #statusListeners = new Set<(status: ClientStatus) => void>()
  #status: ClientStatus = 'connecting'

  constructor (url: StreamUrl, options: ClientInit) {
    const Source = options.EventSource ?? (globalThis as { EventSource?: EventSourceConstructor }).EventSource
    if (Source === undefined) {
      throw new SseClientError('TYPED_SSE_CLIENT_NO_EVENTSOURCE',
        'No EventSource in this runtime (Node 20 has none built in). Pass one: ' +
        "import { EventSource } from 'eventsource'; createClient(url, { EventSource })")
    }
    const catalog = options.catalog
    this.#catalog = catalog
    this.#text = new Set(catalog === undefined
      ? Object.keys(options.text ?? {})
      : Object.keys(catalog.schemas).filter((name) => isTextSchema(catalog.schemas[name])))
    this.#validate = options.validate
    this.#onError = options.onError ?? ((error) => { console.error(error) })
    this.#source = new Source(typeof url === 'string' ? url : url.href, { withCredentials: options.withCredentials ?? false })
    this.#source.addEventListener('open', this.#onOpen)
    this.#source.addEventListener('error', this.#onSourceError)
  }

  get url (): string {
    return this.#source.url
  }

  get status (): ClientStatus {
    return this.#status
  }

  on (event: string, handler: AnyHandler): () => void {
    if (this.#catalog !== undefined && !Object.hasOwn(this.#catalog.schemas, event)) {
      throw new SseClientError('TYPED_SSE_CLIENT_UNKNOWN_EVENT',
        `Event "${event}" is not in the catalog (known: ${Object.keys(this.#catalog.schemas).join(', ')}).`, { event })
    }
    return this.#subscribe(event, handler)
  }

  off (event: string, handler: AnyHandler): void {
    const subscription = this.#subscriptions.get(event)
    if (subscription === undefined) return
    subscription.handlers.delete(handler)
    if (subscription.handlers.size > 0) return
    this.#subscriptions.delete(event)
    this.#source.removeEventListener(event, subscription.listener)
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

  close (): void {
    if (this.#status === 'closed') return
    this.#source.close()
    this.#detach()
    this.#setStatus('closed')
    this.#statusListeners.clear()
  }

  #subscribe (event: string, handler: AnyHandler): () => void {
    let subscription = this.#subscriptions.get(event)
    if (subscription === undefined) {
      // One EventSource listener per event name, added on first use: the data is
      // parsed and checked once, whatever the number of handlers.
      const listener = (message: MessageEventLike): void => { this.#dispatch(event, message) }
      subscription = { listener, handlers: new Set() }
      this.#subscriptions.set(event, subscription)
      this.#source.addEventListener(event, listener)
    }
    subscription.handlers.add(handler)
    return () => { this.off(event, handler) }
  }

  #dispatch (event: string, message: MessageEventLike): void {
    const subscription = this.#subscriptions.get(event)
    if (subscription === undefined) return
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
    for (const handler of [...subscription.handlers]) {
      try {
        handler(data, meta)
      } catch (cause) {
        this.#report(new SseClientError('TYPED_SSE_CLIENT_HANDLER_FAILED', `A handler of event "${event}" threw.`, { event, data, cause }))
      }
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

  readonly #onOpen = (): void => {
    this.#setStatus('open')
  }

  readonly #onSourceError = (event: unknown): void => {
    if (this.#source.readyState !== READY_STATE_CLOSED) {
      // A dropped or ended stream: the EventSource reconnects by itself.
      this.#setStatus('connecting')
      return
    }
    // The EventSource "failed the connection" (§9.2.3): the response was not a 200
    // text/event-stream (a 204, 401, 404, 406, 503...). It will not retry.
    this.#detach()
    this.#setStatus('closed')
    this.#statusListeners.clear()
    this.#report(new SseClientError('TYPED_SSE_CLIENT_CONNECTION_FAILED',
      `The stream ${this.url} was refused (not a 200 text/event-stream response); the client will not reconnect. ` +
      'Check the route and its auth, then create a new client.', { cause: event }))
  }

  #detach (): void {
    this.#source.removeEventListener('open', this.#onOpen)
    this.#source.removeEventListener('error', this.#onSourceError)
    for (const [event, subscription] of this.#subscriptions) this.#source.removeEventListener(event, subscription.listener)
    this.#subscriptions.clear()
  }

  #setStatus (status: ClientStatus): void {
    if (status === this.#status) return
    this.#status = status
    for (const listener of [...this.#statusListeners]) {
      try {
        listener(status)
      } catch (cause) {
        this.#report(new SseClientError('TYPED_SSE_CLIENT_HANDLER_FAILED', `A status listener threw on "${status}".`, { cause }))
      }
    }
  }

  #report (error: SseClientError): void {
    try {
      this.#onError(error)
    } catch {
      // onError itself failed: nothing is left to report to, and throwing here would
      // break the EventSource's dispatch for the other listeners.
    }
  }
}

function isTextSchema (schema: unknown): boolean {
  return typeof schema === 'object' && schema !== null && (schema as Record<string, unknown>)[TEXT_MARK] === 'text'
}

/**
 * Opens a typed event stream: handlers get the parsed data with the type the
 * server's catalog gives it. Works in browsers as a plain ES module (no bundler)
 * and in Node with the `eventsource` package.
 *
 * Type it with the catalog value (`{ catalog: clock }`: it also tells which events
 * are `Text()`) or with its type only (`createClient<typeof clock>(url)`: nothing of
 * the server is loaded; list the `Text()` events in `text`, which the compiler checks).
 *
 * JSON events are parsed with `JSON.parse`, `Text()` events arrive as strings.
 * Reconnects are the EventSource's: after a dropped stream the status goes back to
 * `'connecting'`, and the EventSource reconnects after the server's `retry:` delay,
 * sending `Last-Event-ID`; a channel with history then replays what was missed or,
 * when it cannot, sends `sse:resync` (see {@link SseClient.onResync}): fetch a snapshot.
 * A response that is not a 200 event stream ends the client (`'closed'`, and
 * `TYPED_SSE_CLIENT_CONNECTION_FAILED` to `onError`).
 *
 * @throws TYPED_SSE_CLIENT_NO_EVENTSOURCE when the runtime has no EventSource and none was given
 * @example
 * // Browser, type only: nothing but this module is loaded.
 * import { createClient } from 'fastify-typed-sse/client'
 * import type { clock } from './events.js'
 * const client = createClient<typeof clock>('/time')
 * client.on('tick', (tick) => { el.textContent = new Date(tick.epochMs).toLocaleTimeString() })
 * client.onStatus((status) => { badge.dataset.state = status })
 * @example
 * // Node, with the catalog (text events found from it) and run-time validation.
 * import { EventSource } from 'eventsource'
 * import { eventValidator } from 'fastify-typed-sse'
 * const client = createClient('http://127.0.0.1:3000/chat', { catalog: chat, EventSource, validate: eventValidator(chat) })
 * client.on('token', (token) => process.stdout.write(token))
 */
export function createClient<C extends CatalogLike> (url: StreamUrl, options: CatalogClientOptions<C>): SseClient<C>
export function createClient<C extends CatalogLike = CatalogLike> (url: StreamUrl, ...options: TypeOnlyClientArgs<C>): SseClient<C>
export function createClient (url: StreamUrl, options: ClientInit = {}): SseClient {
  return new TypedEventClient(url, options)
}
