/**
 * The adapter interface, the headers every stream sends whatever its HTTP version,
 * and the answer to a request that gets no stream.
 */

/** Header values as `writeHead()` takes them. */
export type Headers = Record<string, number | string | readonly string[]>

/** What a stream uses of Node's response (HTTP/1.1 `ServerResponse` or HTTP/2 `Http2ServerResponse`). */
export interface RawResponse {
  write (chunk: Buffer): boolean
  end (chunk?: Buffer): unknown
  destroy (): unknown
  writeHead (statusCode: number, headers?: Headers): unknown
  flushHeaders (): void
  on (event: 'error' | 'close', listener: () => void): unknown
  once (event: 'close' | 'drain', listener: () => void): unknown
  off (event: 'close' | 'drain', listener: () => void): unknown
  readonly headersSent: boolean
  /** HTTP/1.1: true once the connection is gone. */
  readonly destroyed?: boolean
  /** HTTP/2: the response's stream, and through it the session. */
  readonly stream?: { readonly destroyed: boolean, readonly session?: Http2SessionLike }
  /** HTTP/1.1: the connection (null once detached). */
  readonly socket?: CorkableSocket | null
}

/** What a stream uses of its HTTP/2 session: closing it on shutdown, gracefully then for good. */
export interface Http2SessionLike {
  readonly destroyed: boolean
  /** The session's connection (a proxy to it). */
  readonly socket?: { readonly resetAndDestroy?: () => void }
  close (): void
  destroy (): void
  once (event: 'close', listener: () => void): unknown
}

/** A connection whose writes can be batched (`cork()` ... `uncork()`). */
export interface CorkableSocket {
  readonly writableCorked: number
  cork (): void
  uncork (): void
}

/** One HTTP version's part of a stream's life. */
export interface Adapter {
  /** The response headers of a stream, from those the application set on the reply. */
  headers (given: Record<string, unknown>): Headers
  /** The socket to cork for a batch of writes, when the version has one per response. */
  socketOf (raw: RawResponse): CorkableSocket | undefined
  /** True when the client is already gone (its `close` may have come before we listened). */
  isGone (raw: RawResponse): boolean
  /**
   * Writes a frame; false when the connection's buffer is full: the response then emits
   * `drain` when it takes writes again.
   */
  write (raw: RawResponse, frame: Buffer): boolean
  /** The stream closed: lets go of what `write` set up to tell it of `drain`. */
  forgetDrain (raw: RawResponse): void
  /**
   * On shutdown: lets go of what outlives the response (an HTTP/2 session), for good
   * after `graceMs` (a client that does not read would hold it forever).
   */
  release (raw: RawResponse, graceMs: number): void
}

/** Headers no stream may pass on: the body is an endless chunked (or HTTP/2) stream. */
export const DROPPED_HEADERS = new Set(['content-length', 'transfer-encoding', 'content-encoding'])

/** The media type of every stream, set over whatever the application set. */
export const CONTENT_TYPE = 'text/event-stream; charset=utf-8'

/**
 * A stream's headers: defaults the application may override (`cache-control`, and
 * `x-accel-buffering` since nginx buffers responses unless told not to), then the
 * application's (hooks, `reply.header()`, CORS plugins) but those `isAllowed` refuses,
 * then the content type.
 *
 * @example
 * streamHeaders({ 'x-id': 'a' }, () => true)['content-type'] // 'text/event-stream; charset=utf-8'
 */
export function streamHeaders (given: Record<string, unknown>, isAllowed: (name: string) => boolean): Headers {
  const head: Headers = { 'cache-control': 'no-cache', 'x-accel-buffering': 'no' }
  for (const name in given) {
    const value = given[name]
    if (value !== undefined && !DROPPED_HEADERS.has(name) && isAllowed(name)) head[name] = value as Headers[string]
  }
  head['content-type'] = CONTENT_TYPE
  return head
}

/**
 * Answers a request that gets no stream: `204` (an ended stream's reconnect) or `500`
 * (opening failed). A response whose head already went out cannot change its status,
 * so it is cut instead, as is one that cannot be written.
 *
 * @example
 * answerWithoutStream(reply.raw, 204)
 */
export function answerWithoutStream (raw: RawResponse, statusCode: 204 | 500): void {
  if (raw.headersSent) {
    raw.destroy()
    return
  }
  try {
    raw.writeHead(statusCode, statusCode === 204 ? {} : { 'content-type': 'text/plain; charset=utf-8' })
    raw.end(statusCode === 204 ? undefined : Buffer.from('Internal Server Error'))
  } catch {
    raw.destroy()
  }
}
