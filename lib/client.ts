/**
 * The typed client (`fastify-typed-sse/client`): event handlers typed by the
 * server's catalog, over one of two transports: `fetch` (headers, POST bodies, our
 * own reconnects with backoff, finite streams, limits; lib/client/fetch-transport.ts)
 * or the runtime's `EventSource` (lib/client/eventsource-transport.ts). With
 * `shared` the tabs of one origin share one connection (lib/client/shared.ts).
 *
 * This module and lib/client/ are loaded by browsers as they are, with no bundler,
 * so they import nothing at run time but each other: only `import type` from the
 * rest of the package, which the compiler erases. What they need from it at run time
 * (the text keyword, the control event names) is repeated in lib/client/names.ts,
 * typed by the originals so the two cannot drift apart. The core is
 * lib/client/typed-client.ts, the public types lib/client/types.ts.
 *
 * Channels with history replay what a reconnecting client missed after its
 * `Last-Event-ID`; when they cannot, they send `sse:resync`, and the application
 * should fetch a full snapshot. A stream the server finishes sends `sse:end`: the
 * client closes and never reconnects.
 */
import { SseClientError } from './client/errors.js'
import { openTransport } from './client/open-transport.js'
import { TypedEventClient } from './client/typed-client.js'
import type { CatalogClientOptions, CatalogLike, ClientInit, SseClient, StreamUrl, TypeOnlyClientArgs } from './client/types.js'

export { DEFAULT_MAX_RECONNECT_DELAY_MS, DEFAULT_MIN_RECONNECT_DELAY_MS, DEFAULT_RECONNECT_DELAY_MS, MAX_RECONNECT_DELAY_MS } from './client/backoff.js'
export { END_EVENT } from './client/names.js'
export { SseClientError, type ClientErrorCode } from './client/errors.js'
export type { EventSourceConstructor } from './client/eventsource-transport.js'
export { DEFAULT_HEARTBEAT_TIMEOUT_MS, DEFAULT_RESPONSE_TIMEOUT_MS, type FetchFunction, type HeadersOption, type RequestBody, type UnauthorizedInfo } from './client/fetch-options.js'
export { DEFAULT_MAX_EVENT_BYTES } from './client/parser.js'
export type { CrossOriginRedirect } from './client/redirects.js'
export type { SharedOptions } from './client/shared.js'
export type { ClientStatus } from './client/transport.js'
export type {
  CatalogClientOptions, CatalogLike, ClientEventData, ClientEventName, ClientValidator, EventHandler, EventMeta,
  SseClient, StreamUrl, TypeOnlyClientOptions
} from './client/types.js'

/** The absolute URL: relative ones resolve against the page, as `EventSource` does. */
function absoluteUrl (url: StreamUrl): string {
  const href = typeof url === 'string' ? url : url.href
  const base = (globalThis as { location?: { href: string } }).location?.href
  try {
    return new URL(href, base).href
  } catch (cause) {
    throw new SseClientError('TYPED_SSE_CLIENT_BAD_OPTION', `"${href}" is not a URL${base === undefined ? ': a relative URL needs a page to resolve against; outside a browser give the full URL (http://localhost:3000/time, or new URL(path, base))' : ''}.`, { cause })
  }
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
  const href = absoluteUrl(url)
  return new TypedEventClient(href, options, (sink) => openTransport(href, options, sink))
}
