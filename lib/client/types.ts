/**
 * The public types of the typed client: catalogs as the client sees them, handlers,
 * options and the client itself. Types only: nothing here exists at run time, so the
 * browser never loads this file.
 */
import type { Static } from '@sinclair/typebox'
import type { EventSchemas, TEXT_KEYWORD } from '../core/catalog.js'
import type { Missed, Resync } from '../core/control.js'
import type { SseClientError } from './errors.js'
import type { EventSourceConstructor } from './eventsource-transport.js'
import type { FetchFunction, HeadersOption, RequestBody, UnauthorizedInfo } from './fetch-options.js'
import type { CrossOriginRedirect } from './redirects.js'
import type { SharedOptions } from './shared.js'
import type { ClientStatus } from './transport.js'

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
  [K in ClientEventName<C>]: C['schemas'][K] extends { readonly [P in typeof TEXT_KEYWORD]: 'text' } ? K : never
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

/**
 * Options shared by both ways of typing the client.
 *
 * @example
 * const common: BaseClientOptions<typeof clock> = { transport: 'fetch', onError: report }
 */
export interface BaseClientOptions<C extends CatalogLike> {
  /**
   * How the stream is received. `'fetch'`: request headers, any method and body, our
   * own reconnects (backoff with jitter, `Retry-After`, `onUnauthorized`), `sse:end`,
   * limits. `'eventsource'`: the runtime's `EventSource` and its reconnects (no
   * headers, GET only, gives up on any non-200).
   * A browser's `EventSource` waits what the server's `retry:` says, even 0: prefer
   * `'fetch'` for a server you do not control.
   * @default 'fetch' when an option needs it (headers, method, body, credentials,
   * signal, onUnauthorized, shared, the reconnect and size bounds...) or there is no
   * EventSource; else 'eventsource'
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
   * The first reconnection delay until the server sends `retry:`, which then replaces
   * it. Reconnect n (n: reconnects since the last event) waits
   * `max(base, min(maxReconnectDelayMs, base * 2^n))` plus up to a quarter of that at
   * random, `base` being `max(retry, minReconnectDelayMs)` (fetch transport).
   * @default 1000
   */
  reconnectDelayMs?: number
  /**
   * The floor of every reconnection delay, even when the server says `retry: 0` or
   * `Retry-After: 0`: the growth starts from it, so no server can make the client storm
   * (fetch transport; must be > 0).
   * @default 250
   */
  minReconnectDelayMs?: number
  /**
   * The cap on the growth of reconnection delays; a larger `retry:` or `Retry-After` is
   * still honoured, up to `MAX_RECONNECT_DELAY_MS` (about 24.8 days) (fetch transport).
   * @default 30000
   */
  maxReconnectDelayMs?: number
  /**
   * How long to wait for the response head before dropping the attempt
   * (`TYPED_SSE_CLIENT_TIMEOUT`) and reconnecting (fetch transport; must be > 0).
   * @default 30000
   */
  responseTimeoutMs?: number
  /**
   * When nothing at all (no event, no heartbeat comment) arrives on an open stream for
   * this long, the connection is taken for dead (a half-open TCP connection, a proxy
   * that stopped forwarding): it is dropped (`TYPED_SSE_CLIENT_TIMEOUT`) and the client
   * reconnects with `Last-Event-ID`. `false` disables it (fetch transport).
   * @default 45000 (three times the server's default 15 s heartbeat)
   */
  heartbeatTimeoutMs?: number | false
  /**
   * A redirect to another origin: `'refuse'` closes the client with
   * `TYPED_SSE_CLIENT_REDIRECT` (in a browser, which fails the hop itself without saying
   * why, it is a network error, retried with backoff), so the headers and body go
   * nowhere but where they were meant to; `'follow'` goes there as a GET without them.
   * Same-origin redirects are always followed with both; a redirect to a scheme other
   * than http(s) never is (fetch transport).
   * @default 'refuse'
   */
  crossOriginRedirect?: CrossOriginRedirect
  /**
   * The bound on one event's bytes (its lines, the line being read included). Past it
   * the connection is dropped (`TYPED_SSE_CLIENT_EVENT_TOO_LARGE`) and the client
   * reconnects with backoff: a hostile server cannot make the client hold more (fetch
   * transport; must be > 0).
   * @default 1048576 (1 MiB)
   */
  maxEventBytes?: number
  /**
   * Called on 401 and 403 (fetch transport): refresh the credentials your `headers`
   * function returns, and resolve `true` to retry (at once, at most once per
   * `maxReconnectDelayMs`; otherwise with backoff) or `false` to close the client with `TYPED_SSE_CLIENT_UNAUTHORIZED`.
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
   * Share one connection among the tabs of this origin whose requests are the same
   * (method, URL, string body, credentials mode, headers given as values, and `key`): one
   * tab holds it (a Web Lock) and forwards events to the others (BroadcastChannel); when
   * it closes, another takes over with `Last-Event-ID`. With a `headers` function or a
   * `fetch` option, pass `{ key }` naming whose stream it is (the user id): tabs with different keys
   * never share. Use it on streams that replay by id (channels with history), so the
   * takeover loses nothing. Browsers only; uses the fetch transport.
   * @default false
   */
  shared?: boolean | SharedOptions
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

/**
 * The options argument in type-only mode: required exactly when `text` is.
 *
 * @example
 * function open (...options: TypeOnlyClientArgs<typeof chat>) { return createClient<typeof chat>('/chat', ...options) }
 */
export type TypeOnlyClientArgs<C extends CatalogLike> = [TextEventName<C>] extends [never]
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
   * The latest data of each key of `event` (a channel with keyed state, `snapshot: true`): a live
   * map filled by the snapshot and live events, a key deleted by `sse:remove`, emptied by
   * `sse:resync` (the snapshot after it fills it again). Give it the channel's key function.
   * @throws TYPED_SSE_CLIENT_UNKNOWN_EVENT when a catalog was given and does not declare `event`
   * @example const prices = client.state('price', (d) => d.symbol)
   */
  state<K extends ClientEventName<C>> (event: K, keyOf: (data: ClientEventData<C, K>) => string | number): ReadonlyMap<string, ClientEventData<C, K>>
  /**
   * The members present (`presence: { events: true }`) by id, with their `Info`: from `sse:join`
   * and `sse:leave`, emptied by `sse:resync`. @example const watching = client.presence<{ name: string }>()
   */
  presence<Info = unknown> (): ReadonlyMap<string, Info>
  /** Calls `listener` after every change of `state()` maps and `presence()`; returns its remover. @example client.onState(render) */
  onState (listener: () => void): () => void
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

/**
 * Both option shapes as the implementation sees them. `validate` is declared as a
 * method so that a validator typed for one catalog's names is accepted here.
 *
 * @example
 * const init: ClientInit = { text: { token: true }, transport: 'fetch' }
 */
export interface ClientInit extends Omit<BaseClientOptions<CatalogLike>, 'validate'> {
  catalog?: CatalogLike
  text?: Readonly<Record<string, true>>
  validate? (event: string, data: unknown): boolean | string
}
