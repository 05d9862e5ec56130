/**
 * The typed client's errors. The client runs in browsers without a bundler, so it
 * cannot use `@fastify/error` (lib/errors.ts): its errors are this one small class,
 * matched on `code` like the server's.
 */

/**
 * The error codes of the client. Match on `error.code`, never on the message.
 *
 * | code | when |
 * |---|---|
 * | `TYPED_SSE_CLIENT_NO_EVENTSOURCE` | thrown by `createClient`: `transport: 'eventsource'` and no `EventSource` given or global (Node 20) |
 * | `TYPED_SSE_CLIENT_NO_FETCH` | thrown by `createClient`: the fetch transport is needed and there is no `fetch` |
 * | `TYPED_SSE_CLIENT_BAD_OPTION` | thrown by `createClient`: an unknown option (a typo), or one that cannot work (a stream body that cannot be sent twice, a shared client without Web Locks, headers shared without a key...); handed to `onError` (no reconnect) when the headers are not valid header values |
 * | `TYPED_SSE_CLIENT_UNKNOWN_EVENT` | thrown by `on`: the catalog given does not declare the event |
 * | `TYPED_SSE_CLIENT_INVALID_JSON` | data of a JSON event is not JSON (a `Text()` event not listed in `text`?) |
 * | `TYPED_SSE_CLIENT_INVALID_DATA` | `validate` refused the data; the event was not delivered |
 * | `TYPED_SSE_CLIENT_HANDLER_FAILED` | a handler or listener threw (the others still ran), or the `headers` function did (the client retries) |
 * | `TYPED_SSE_CLIENT_CONNECTION_FAILED` | the response was not a 200 event stream (nor a status worth retrying); no reconnect |
 * | `TYPED_SSE_CLIENT_UNAUTHORIZED` | 401/403 and no `onUnauthorized`, or it said not to retry; no reconnect |
 * | `TYPED_SSE_CLIENT_EVENT_TOO_LARGE` | a line or event passed `maxEventBytes`; the connection was dropped and the client reconnects |
 * | `TYPED_SSE_CLIENT_NETWORK_ERROR` | no response at all (connection refused, unknown host, network down): once per outage, not per attempt; the client keeps reconnecting |
 * | `TYPED_SSE_CLIENT_TIMEOUT` | no response head within `responseTimeoutMs`, or nothing at all for `heartbeatTimeoutMs` on an open stream; the client reconnects |
 * | `TYPED_SSE_CLIENT_READ_FAILED` | the response body failed mid-stream (a reset connection, a body that cannot be decoded); the client reconnects |
 * | `TYPED_SSE_CLIENT_REDIRECT` | a redirect to another origin (with `crossOriginRedirect: 'refuse'`, the default), to a scheme other than http(s), or more than 20; no reconnect (in a browser, the browser fails a refused redirect itself: a network error, retried) |
 * | `TYPED_SSE_CLIENT_UNSENDABLE_ID` | the last event id cannot be sent back exactly as `Last-Event-ID` (a control character, a space or tab at either end); no reconnect, since resuming from another id would skip or repeat events |
 *
 * @example
 * const ignored: ClientErrorCode[] = ['TYPED_SSE_CLIENT_HANDLER_FAILED']
 */
export type ClientErrorCode =
  | 'TYPED_SSE_CLIENT_NO_EVENTSOURCE'
  | 'TYPED_SSE_CLIENT_NO_FETCH'
  | 'TYPED_SSE_CLIENT_BAD_OPTION'
  | 'TYPED_SSE_CLIENT_UNKNOWN_EVENT'
  | 'TYPED_SSE_CLIENT_INVALID_JSON'
  | 'TYPED_SSE_CLIENT_INVALID_DATA'
  | 'TYPED_SSE_CLIENT_HANDLER_FAILED'
  | 'TYPED_SSE_CLIENT_CONNECTION_FAILED'
  | 'TYPED_SSE_CLIENT_UNAUTHORIZED'
  | 'TYPED_SSE_CLIENT_EVENT_TOO_LARGE'
  | 'TYPED_SSE_CLIENT_NETWORK_ERROR'
  | 'TYPED_SSE_CLIENT_TIMEOUT'
  | 'TYPED_SSE_CLIENT_READ_FAILED'
  | 'TYPED_SSE_CLIENT_REDIRECT'
  | 'TYPED_SSE_CLIENT_UNSENDABLE_ID'

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
  /** The HTTP status of the response concerned (CONNECTION_FAILED, UNAUTHORIZED with the fetch transport). */
  readonly statusCode: number | undefined

  constructor (code: ClientErrorCode, message: string, details: { event?: string, data?: unknown, statusCode?: number, cause?: unknown } = {}) {
    super(message, { cause: details.cause })
    this.code = code
    this.event = details.event
    this.data = details.data
    this.statusCode = details.statusCode
  }
}

/**
 * The error for an option that cannot work, thrown by `createClient`.
 *
 * @example
 * throw badOption('maxEventBytes must be a number >= 0, got -1.')
 */
export function badOption (message: string, cause?: unknown): SseClientError {
  return new SseClientError('TYPED_SSE_CLIENT_BAD_OPTION', message, { cause })
}
