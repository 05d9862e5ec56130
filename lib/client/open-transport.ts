/**
 * Picks and configures the transport from the client's options: fetch when asked for
 * or when an option needs it, else the runtime's EventSource; shared tabs on top of
 * fetch. Options that cannot work are refused here, once, with a coded error.
 */
import { DEFAULT_MAX_RECONNECT_DELAY_MS, DEFAULT_MIN_RECONNECT_DELAY_MS, DEFAULT_RECONNECT_DELAY_MS } from './backoff.js'
import { badOption, SseClientError } from './errors.js'
import { EventSourceTransport, type EventSourceConstructor } from './eventsource-transport.js'
import { DEFAULT_HEARTBEAT_TIMEOUT_MS, DEFAULT_RESPONSE_TIMEOUT_MS, type FetchFunction, type FetchTransportOptions } from './fetch-options.js'
import { FetchTransport } from './fetch-transport.js'
import { DEFAULT_MAX_EVENT_BYTES } from './parser.js'
import { SharedTransport, sharingKey } from './shared.js'
import type { Transport, TransportSink } from './transport.js'
import type { ClientInit } from './types.js'

/**
 * Every option `createClient` knows; a record so the compiler says when one is added
 * to the types and not here. Any other key is a typo, refused rather than ignored.
 */
const OPTION_NAMES: Readonly<Record<keyof ClientInit, true>> = {
  transport: true,
  EventSource: true,
  fetch: true,
  withCredentials: true,
  headers: true,
  method: true,
  body: true,
  credentials: true,
  signal: true,
  reconnectDelayMs: true,
  minReconnectDelayMs: true,
  maxReconnectDelayMs: true,
  responseTimeoutMs: true,
  heartbeatTimeoutMs: true,
  maxEventBytes: true,
  crossOriginRedirect: true,
  onUnauthorized: true,
  pauseWhenHidden: true,
  shared: true,
  validate: true,
  onError: true,
  catalog: true,
  text: true
}

/**
 * The durations and sizes of the fetch transport: numbers (Infinity allowed, NaN not),
 * above 0 but for `reconnectDelayMs` (a 0 there still waits the floor). A floor of 0
 * would let `retry: 0` storm; a response deadline or an event bound of 0 would deliver nothing.
 */
const NUMERIC_OPTIONS = { reconnectDelayMs: 0, minReconnectDelayMs: 1, maxReconnectDelayMs: 1, responseTimeoutMs: 1, maxEventBytes: 1 } as const

/**
 * The options that only the fetch transport can honour; any of them selects it. A
 * browser's EventSource reconnects on its own schedule (the server's `retry:`, even 0):
 * a reconnect bound given to it would be silently ignored.
 */
const FETCH_ONLY_OPTIONS = [
  'headers', 'method', 'body', 'credentials', 'signal', 'onUnauthorized', 'pauseWhenHidden', 'shared', 'heartbeatTimeoutMs', 'crossOriginRedirect',
  ...Object.keys(NUMERIC_OPTIONS) as Array<keyof typeof NUMERIC_OPTIONS>
] as const

/**
 * Refuses what is not an option, by name.
 *
 * @throws SseClientError TYPED_SSE_CLIENT_BAD_OPTION
 * @example
 * checkOptionNames({ reconectDelayMs: 5 }) // throws: not an option
 */
function checkOptionNames (options: unknown): asserts options is ClientInit {
  if (options === null || typeof options !== 'object') throw badOption(`options must be an object, got ${String(options)}.`)
  for (const name of Object.keys(options)) {
    if (!Object.hasOwn(OPTION_NAMES, name)) {
      throw badOption(`"${name}" is not an option of createClient (known: ${Object.keys(OPTION_NAMES).join(', ')}).`)
    }
  }
}

/**
 * The transport the options ask for, with the defaults applied.
 *
 * @throws SseClientError TYPED_SSE_CLIENT_BAD_OPTION, _NO_EVENTSOURCE or _NO_FETCH for options that cannot work here
 * @example
 * const transport = openTransport('http://127.0.0.1:3000/chat', { body: '{}' }, sink)
 */
export function openTransport (url: string, options: ClientInit, sink: TransportSink): Transport {
  checkOptionNames(options)
  const globals = globalThis as { EventSource?: EventSourceConstructor, fetch?: FetchFunction }
  const Source = options.EventSource ?? globals.EventSource
  const needsFetch = FETCH_ONLY_OPTIONS.filter((name) => options[name] !== undefined && options[name] !== false)
  const kind = options.transport ?? (needsFetch.length > 0 || Source === undefined ? 'fetch' : 'eventsource')
  if (kind === 'eventsource') {
    if (needsFetch.length > 0) {
      throw badOption(`${needsFetch.join(', ')} need the fetch transport: remove transport: 'eventsource'.`)
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
    throw badOption('body is a ReadableStream, which cannot be sent again on reconnect: pass a string, Blob, ArrayBuffer, FormData or URLSearchParams.')
  }
  for (const [name, least] of Object.entries(NUMERIC_OPTIONS) as Array<[keyof typeof NUMERIC_OPTIONS, number]>) {
    const value = options[name]
    if (value !== undefined && !(typeof value === 'number' && value >= least)) {
      throw badOption(`${name} must be a number ${least === 0 ? '>= 0' : '> 0'}, got ${String(value)}.`)
    }
  }
  const minReconnectDelayMs = options.minReconnectDelayMs ?? DEFAULT_MIN_RECONNECT_DELAY_MS
  const maxReconnectDelayMs = options.maxReconnectDelayMs ?? DEFAULT_MAX_RECONNECT_DELAY_MS
  if (minReconnectDelayMs > maxReconnectDelayMs) {
    throw badOption(`minReconnectDelayMs (${minReconnectDelayMs}) is above maxReconnectDelayMs (${maxReconnectDelayMs}): lower the floor or raise the cap.`)
  }
  const heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS
  if (heartbeatTimeoutMs !== false && !(typeof heartbeatTimeoutMs === 'number' && heartbeatTimeoutMs > 0)) {
    throw badOption(`heartbeatTimeoutMs must be a number > 0 or false, got ${String(heartbeatTimeoutMs)}.`)
  }
  const crossOriginRedirect = options.crossOriginRedirect ?? 'refuse'
  if (crossOriginRedirect !== 'refuse' && crossOriginRedirect !== 'follow') {
    throw badOption(`crossOriginRedirect must be 'refuse' or 'follow', got ${String(crossOriginRedirect)}.`)
  }
  const settings: FetchTransportOptions = Object.freeze({
    url,
    fetch,
    method: options.method ?? (options.body === undefined ? 'GET' : 'POST'),
    headers: options.headers,
    body: options.body,
    credentials: options.credentials ?? (options.withCredentials === true ? 'include' : 'same-origin'),
    reconnectDelayMs: options.reconnectDelayMs ?? DEFAULT_RECONNECT_DELAY_MS,
    minReconnectDelayMs,
    maxReconnectDelayMs,
    responseTimeoutMs: options.responseTimeoutMs ?? DEFAULT_RESPONSE_TIMEOUT_MS,
    heartbeatTimeoutMs: heartbeatTimeoutMs === Infinity ? false : heartbeatTimeoutMs,
    crossOriginRedirect,
    maxEventBytes: options.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES,
    onUnauthorized: options.onUnauthorized,
    pauseWhenHidden: options.pauseWhenHidden ?? false,
    lastEventId: ''
  })
  if (options.shared === undefined || options.shared === false) return new FetchTransport(settings, sink)
  return new SharedTransport(sharingKey(settings, options.shared, options.fetch), sink,
    // The connection serves every tab, some of which may be showing: it does not pause with the leader's.
    (lastEventId, leaderSink) => new FetchTransport({ ...settings, lastEventId, pauseWhenHidden: false }, leaderSink))
}
