/**
 * The fetch transport's options, their types and defaults: headers, method and body,
 * the fetch to use, the 401/403 hook, and the response and liveness deadlines.
 */
import type { CrossOriginRedirect } from './redirects.js'

/**
 * Request headers: an object, or a function called before every connection attempt
 * (reconnects included), so a refreshed token is sent.
 *
 * @example
 * const headers: HeadersOption = async () => ({ authorization: `Bearer ${await token()}` })
 */
export type HeadersOption = Readonly<Record<string, string>> | (() => Readonly<Record<string, string>> | Promise<Readonly<Record<string, string>>>)

/**
 * A request body. It is sent again on every reconnect, so it must be a value that can
 * be read twice: not a `ReadableStream`.
 *
 * @example
 * const body: RequestBody = JSON.stringify({ prompt: 'Hello' })
 */
export type RequestBody = string | URLSearchParams | Blob | ArrayBuffer | Uint8Array<ArrayBuffer> | FormData

/**
 * What `onUnauthorized` learns: the status (401 or 403) and how many refusals in a row.
 *
 * @example
 * const onUnauthorized = async (info: UnauthorizedInfo) => info.attempt === 1 && await refreshToken()
 */
export interface UnauthorizedInfo {
  readonly statusCode: number
  /** 1 for the first refusal since the stream was last open, 2 for the next... */
  readonly attempt: number
}

/**
 * The `fetch` the transport calls: the global one, or any with its signature.
 *
 * @example
 * const viaProxy: FetchFunction = (url, init) => fetch(url.replace(publicOrigin, internalOrigin), init)
 */
export type FetchFunction = (url: string, init: RequestInit) => Promise<Response>

/**
 * Everything the fetch transport needs, defaults applied by the client (lib/client.ts).
 *
 * @example
 * new FetchTransport({ ...settings, lastEventId: '41' }, sink)
 */
export interface FetchTransportOptions {
  readonly url: string
  readonly fetch: FetchFunction
  readonly method: string
  readonly headers: HeadersOption | undefined
  readonly body: RequestBody | undefined
  readonly credentials: RequestCredentials
  readonly reconnectDelayMs: number
  readonly minReconnectDelayMs: number
  readonly maxReconnectDelayMs: number
  readonly responseTimeoutMs: number
  readonly heartbeatTimeoutMs: number | false
  readonly crossOriginRedirect: CrossOriginRedirect
  readonly maxEventBytes: number
  readonly onUnauthorized: ((info: UnauthorizedInfo) => boolean | Promise<boolean>) | undefined
  readonly pauseWhenHidden: boolean
  /** The id to resume after (a shared client taking over from another tab), `''` for none. */
  readonly lastEventId: string
}

/** The part of `document` the visibility pause uses (absent in Node and workers). */
export interface VisibilityDocument {
  readonly visibilityState: string
  addEventListener (type: 'visibilitychange', listener: () => void): void
  removeEventListener (type: 'visibilitychange', listener: () => void): void
}

/**
 * The default wait for a response head before the attempt is dropped and retried.
 * @default 30000
 * @example
 * createClient(url, { responseTimeoutMs: DEFAULT_RESPONSE_TIMEOUT_MS / 3 })
 */
export const DEFAULT_RESPONSE_TIMEOUT_MS = 30_000

/**
 * The default silence after which an open stream is dropped and resumed: three times
 * the server's default heartbeat (15 s), so one late heartbeat is not a drop.
 * @default 45000
 * @example
 * createClient(url, { heartbeatTimeoutMs: DEFAULT_HEARTBEAT_TIMEOUT_MS * 2 })
 */
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 45_000

